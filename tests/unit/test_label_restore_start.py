"""Restoring a partition's label join from its restore points gives the live join state a
re-read from offset 0 gives, and the owner's own, on a workload with ten TTLs of history
(most of the topic cannot join any more), while reading a fraction of the records.

The owner is a real :class:`LabelEngine` processing one prediction and one label record per
20 s of simulated wall time (event times up to ``max_ahead`` ahead of its clock, labels
before and after their predictions, predictions never labelled, labels whose prediction
never comes, repeated labels), expiring every step and sampling its restore points as the
worker's restore stage does; the topics are lists, read through ``read_partition``."""

from __future__ import annotations

import functools
import threading
from types import SimpleNamespace

import numpy as np

import stream_jobs.label_restore as label_restore
from schemas.codec import default_codec
from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.join.codec import unseal
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.restore_points import RestorePoints, horizon_ms
from stream_jobs.join.store import MemoryStore
from stream_jobs.label_restore import LabelRestore

TOPICS = TopicNames()
CODEC = default_codec()
CONFIG = LabelConfig(ttl_ms=600_000, expiry_bucket_ms=60_000)
MAX_AHEAD_MS = 60_000
H = horizon_ms(CONFIG.ttl_ms, CONFIG.expiry_bucket_ms, MAX_AHEAD_MS)  # 780 s
STEP_MS = 20_000
STEPS = 400  # 8,000 s: about ten H
T0 = 1_800_000_000_000
MODEL = "restore-start"


def workload(seed: int) -> dict[int, tuple[list, list]]:
    """step -> (predictions [(pid, event ms)], labels [(pid, event ms, class)])."""
    rng = np.random.default_rng(seed)
    steps: dict[int, tuple[list, list]] = {s: ([], []) for s in range(STEPS)}
    for i in range(STEPS * 8):
        pid = f"p{i}"
        s = int(rng.integers(0, STEPS))
        now = T0 + s * STEP_MS
        t = now + int(rng.integers(-300_000, MAX_AHEAD_MS))
        steps[s][0].append((pid, t))
        alive_steps = (t + CONFIG.ttl_ms - now) // STEP_MS - 1  # steps it stays alive
        kind = rng.random()
        if kind < 0.15:
            continue  # never labelled: expires as an orphan prediction
        # the label comes later (never after its prediction expired: then any re-read
        # would find the prediction and call it joined, where the owner has an early label),
        # or up to 400 s before it (it waits as an early label)
        lag = int(rng.integers(0, alive_steps)) if kind < 0.8 else -int(rng.integers(1, 20))
        ls = min(max(s + lag, 0), STEPS - 1)
        label = (pid, T0 + ls * STEP_MS, str(int(rng.integers(0, 2))))
        steps[ls][1].append(label)
        if rng.random() < 0.05:  # repeated later
            steps[min(ls + int(rng.integers(1, 10)), STEPS - 1)][1].append(label)
    for i in range(STEPS):  # labels whose prediction never comes
        s = int(rng.integers(0, STEPS))
        steps[s][1].append((f"nobody{i}", T0 + s * STEP_MS, "1"))
    return steps


def encode_predictions(rows: list) -> bytes:
    n = len(rows)
    score = np.linspace(0.0, 1.0, n)
    cols = PredictionColumns(
        model=MODEL, model_version="v1", prediction_ids=[r[0] for r in rows],
        event_time_ms=np.array([r[1] for r in rows], "<i8"), latency_ms=np.ones(n),
        status=np.zeros(n, "i1"), score=score,
        predicted_class=CategoricalArray(["0", "1"], (score > 0.5).astype("<i4")),
    )  # fmt: skip
    return CODEC.encode("PredictionBatch", cols.to_record())


def encode_labels(rows: list) -> bytes:
    classes = np.array([int(r[2]) for r in rows], "<i4")
    cols = LabelColumns(
        model=MODEL, prediction_ids=[r[0] for r in rows],
        event_time_ms=np.array([r[1] for r in rows], "<i8"),
        label_class=CategoricalArray(["0", "1"], classes), label_value=classes.astype("<f8"),
    )  # fmt: skip
    return CODEC.encode("LabelBatch", cols.to_record())


@functools.cache
def run_owner(seed: int) -> tuple[LabelEngine, RestorePoints, dict[str, list[bytes]], int]:
    """The owner processes everything as the worker would; returns its engine, the restore
    points it sampled, the two topics' records, and the wall clock at the end."""
    engine = LabelEngine(CONFIG, MemoryStore())
    topics: dict[str, list[bytes]] = {TOPICS.predictions: [], TOPICS.labels: []}
    points = RestorePoints()
    p = TOPICS.predictions
    for s, (preds, labels) in sorted(workload(seed).items()):
        now = T0 + s * STEP_MS
        if preds:
            topics[p].append(encode_predictions(preds))
            cols = label_restore.decode_predictions(CODEC, topics[p][-1])
            engine.observe_predictions(p, 0, len(topics[p]) - 1, cols)
        if labels:
            topics[TOPICS.labels].append(encode_labels(labels))
            cols = label_restore.decode_labels(CODEC, topics[TOPICS.labels][-1])
            engine.observe_labels(TOPICS.labels, 0, len(topics[TOPICS.labels]) - 1, cols)
        engine.poll(now + 1_000)
        points.add(
            now + 2_000,
            engine.applied_offset(p, 0),
            engine.applied_offset(TOPICS.labels, 0),
            H,
        )
    return engine, points, topics, T0 + STEPS * STEP_MS


def restored(
    topics: dict[str, list[bytes]], points: RestorePoints | None, now_ms: int, monkeypatch
) -> tuple[LabelEngine, int]:
    def read_partition(kafka, topic, partition, end, start=0, timeout_s=60.0):
        for offset in range(start, end + 1):
            yield offset, topics[topic][offset]

    monkeypatch.setattr(label_restore, "read_partition", read_partition)
    engine = LabelEngine(CONFIG, MemoryStore())
    stage = SimpleNamespace(engine=engine, lock=threading.Lock())
    restore = LabelRestore(stage, "unused:9092", TOPICS, CODEC, max_ahead_ms=MAX_AHEAD_MS)
    if points is not None:
        restore.points[0] = points
    n = restore.restore(
        0, len(topics[TOPICS.predictions]) - 1, len(topics[TOPICS.labels]) - 1, now_ms=now_ms
    )
    out = engine.poll(now_ms)  # what expired by now goes, in every engine alike
    engine.orphaned = {(o.prediction_id, o.reason) for o in out.orphans}  # type: ignore[attr-defined]
    return engine, n


def live_state(engine: LabelEngine) -> dict[bytes, bytes]:
    """Pending predictions, joined markers and early labels (not the expiry index: its
    entries are keyed by the batch that wrote them)."""
    data = engine.raw_store.data  # type: ignore[attr-defined]
    return {k: unseal(v) for k, v in data.items() if k[:1] in (b"p", b"l")}


def test_restore_from_points_equals_a_restore_from_offset_zero(monkeypatch) -> None:
    owner, points, topics, now = run_owner(1)
    owner.poll(now)
    full, n_full = restored(topics, None, now, monkeypatch)
    fast, n_fast = restored(topics, points, now, monkeypatch)
    expected = live_state(full)
    kinds = {(k[:1], v == b"\x00") for k, v in expected.items()}
    assert kinds == {(b"p", True), (b"p", False), (b"l", False)}  # all three kinds live
    assert live_state(fast) == expected
    assert fast.early == full.early
    assert live_state(owner) == expected  # and it is the owner's, too
    # expiring what it restored, it dead-letters nothing a full re-read would not (a label
    # that joined a prediction before both expired is no orphan)
    assert fast.orphaned <= full.orphaned  # type: ignore[attr-defined]
    total = len(topics[TOPICS.predictions]) + len(topics[TOPICS.labels])
    assert n_full == total
    assert n_fast < 0.5 * total, (n_fast, total)  # proportional to H, not to history


def test_a_restore_without_points_reads_from_offset_zero(monkeypatch) -> None:
    owner, points, topics, now = run_owner(1)
    young = RestorePoints([s for s in points.samples if s[0] > now - H])  # none old enough
    _, n = restored(topics, young, now, monkeypatch)
    assert n == len(topics[TOPICS.predictions]) + len(topics[TOPICS.labels])
