"""A replayable workload with known windows, for scale-out tests and benches.

Rows are in event-time order with random prediction ids (so the SDK's murmur2 partitioner
spreads every window over every partition); feature ``x0`` shifts from ``shift_window`` on,
so windows before it are not drifted and windows after it are. With ``labels``, 90% of the
predictions get a label (class ``"0"``/``"1"``) at most ``label_delay_ms`` after them,
published right after their batch: every label arrives well within the label horizon, so
a performance window's joined labels are known from the input alone
(:meth:`Workload.label_truth`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from modelwatch.baseline import publish_reference
from modelwatch.broker import create_topics
from producers.partitioner import partitions_for
from producers.sdk import ModelwatchPublisher
from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.reference.profile import build_profile

FEATURES = 5


@dataclass
class Workload:
    model: str
    start_ms: int
    window_ms: int
    lateness_ms: int
    batches: list[PredictionColumns]
    labels: list[LabelColumns] | None = None  # one label batch per prediction batch
    label_horizon_ms: int = 8_000

    @property
    def events(self) -> int:
        return sum(b.n for b in self.batches)

    def truth(self) -> dict[int, int]:
        """Events per window start."""
        c: Counter[int] = Counter()
        for b in self.batches:
            starts, counts = np.unique(
                (b.event_time_ms // self.window_ms) * self.window_ms, return_counts=True
            )
            c.update(dict(zip(starts.tolist(), counts.tolist(), strict=True)))
        return dict(c)

    def label_truth(self) -> dict[int, int]:
        """Labels per window start (by their prediction's event time)."""
        assert self.labels is not None
        when = {
            pid: t
            for b in self.batches
            for pid, t in zip(b.prediction_ids, b.event_time_ms.tolist(), strict=True)
        }
        c: Counter[int] = Counter()
        for lab in self.labels:
            c.update((when[pid] // self.window_ms) * self.window_ms for pid in lab.prediction_ids)
        return dict(c)

    def label_truth_by_partition(self, partitions: int) -> dict[tuple[int, int], int]:
        """Labels per (window start, input partition)."""
        assert self.labels is not None
        when = {
            pid: t
            for b in self.batches
            for pid, t in zip(b.prediction_ids, b.event_time_ms.tolist(), strict=True)
        }
        c: Counter[tuple[int, int]] = Counter()
        for lab in self.labels:
            parts = partitions_for(lab.prediction_ids, partitions).tolist()
            for pid, p in zip(lab.prediction_ids, parts, strict=True):
                c[((when[pid] // self.window_ms) * self.window_ms, p)] += 1
        return dict(c)

    def performance_closed(self, partitions: int) -> set[int]:
        """Window starts every partition's label clock has passed by the horizon."""
        assert self.labels is not None
        clock = [-(2**62)] * partitions
        for lab in self.labels:
            parts = partitions_for(lab.prediction_ids, partitions)
            for p in range(partitions):
                sel = lab.event_time_ms[parts == p]
                if sel.size:
                    clock[p] = max(clock[p], int(sel.max()))
        limit = min(clock) - self.label_horizon_ms
        return {s for s in self.label_truth() if s + self.window_ms <= limit}

    def closed(self, partitions: int) -> set[int]:
        """Window starts every partition has closed: ``end + lateness`` at or below the
        partition's maximum event time, for every partition."""
        clock = [-(2**62)] * partitions
        for b in self.batches:
            parts = partitions_for(b.prediction_ids, partitions)
            for p in range(partitions):
                sel = b.event_time_ms[parts == p]
                if sel.size:
                    clock[p] = max(clock[p], int(sel.max()))
        limit = min(clock) - self.lateness_ms
        return {s for s in self.truth() if s + self.window_ms <= limit}


def make_workload(
    model: str,
    start_ms: int,
    windows: int = 12,
    per_window: int = 8_000,
    window_ms: int = 10_000,
    lateness_ms: int = 2_000,
    shift_window: int = 6,
    batch: int = 2_000,
    seed: int = 7,
    labels: bool = False,
    label_delay_ms: int = 3_000,
) -> Workload:
    rng = np.random.default_rng(seed)
    n = windows * per_window
    t = start_ms + np.sort(rng.integers(0, windows * window_ms, n))
    x = {f"x{i}": rng.normal(0.0, 1.0, n) for i in range(FEATURES)}
    x["x0"] = x["x0"] + np.where(t >= start_ms + shift_window * window_ms, 1.5, 0.0)
    score = rng.random(n)
    ids = [f"{model}-{i}-{rng.integers(1 << 62)}" for i in range(n)]
    batches = []
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        batches.append(
            PredictionColumns(
                model, "v1", ids[lo:hi], t[lo:hi].astype(np.int64),
                np.full(hi - lo, 5.0), np.zeros(hi - lo, np.int8),
                numeric={k: v[lo:hi] for k, v in x.items()}, score=score[lo:hi],
            )
        )  # fmt: skip
    label_batches = None
    if labels:
        label_batches = []
        for b in batches:
            chosen = np.flatnonzero(rng.random(b.n) < 0.9)
            predicted = b.score[chosen] >= 0.5
            right = rng.random(chosen.size) < 0.8
            truth = np.where(right, predicted, ~predicted).astype("<i4")
            label_batches.append(LabelColumns(
                model=model, prediction_ids=[b.prediction_ids[i] for i in chosen.tolist()],
                event_time_ms=b.event_time_ms[chosen] + rng.integers(1, label_delay_ms,
                                                                     chosen.size),
                label_class=CategoricalArray(["0", "1"], truth),
            ))  # fmt: skip
    return Workload(model, start_ms, window_ms, lateness_ms, batches, label_batches)


def one_id_per_partition(prefix: str, partitions: int) -> list[str]:
    """Prediction ids, the i-th of which the SDK's partitioner sends to partition i."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        key = f"{prefix}-{i}"
        found.setdefault(int(partitions_for([key], partitions)[0]), key)
        i += 1
    return [found[p] for p in range(partitions)]


def reference_for(model: str, n: int = 20_000, seed: int = 99) -> dict:
    rng = np.random.default_rng(seed)
    return build_profile(
        model, "", numeric={f"x{i}": rng.normal(0.0, 1.0, n) for i in range(FEATURES)},
        prediction=rng.random(n),
    )  # fmt: skip


def prepare_topics(bootstrap: str, prefix: str, partitions: int) -> TopicNames:
    topics = TopicNames.with_prefix(prefix)
    create_topics(bootstrap, topics.specs(partitions))
    return topics


def publish(bootstrap: str, topics: TopicNames, w: Workload, batches: slice | None = None) -> None:
    """Publish the workload's prediction batches (``batches``: a slice of them), each
    followed by its labels when the workload has labels."""
    chosen = range(len(w.batches))[batches or slice(None)]
    with ModelwatchPublisher(bootstrap, w.model, "v1", topics=topics, linger_ms=20) as sdk:
        for i in chosen:
            b = w.batches[i]
            assert sdk.wait_for_room(b.n, timeout=60)
            assert sdk.publish_columns(b) == b.n
            if w.labels is not None and w.labels[i].n:
                # the predictions may have filled the buffer: wait, never drop the labels
                assert sdk.wait_for_room(w.labels[i].n, timeout=60)
                assert sdk.publish_label_columns(w.labels[i]) == w.labels[i].n
        assert sdk.flush(60) == 0


def publish_reference_to(bootstrap: str, topics: TopicNames, model: str) -> None:
    publish_reference(bootstrap, reference_for(model), topics)


def worker_env(prefix: str, w: Workload, data_dir: str) -> dict[str, str]:
    return {
        "MODELWATCH_TOPIC_PREFIX": prefix,
        "MODELWATCH_DATA_DIR": data_dir,
        "MODELWATCH_DRIFT__WINDOW_MS": str(w.window_ms),
        "MODELWATCH_DRIFT__ALLOWED_LATENESS_MS": str(w.lateness_ms),
        "MODELWATCH_DRIFT__IDLE_PARTITION_S": "300",
        "MODELWATCH_DRIFT__KSWIN": "false",
        "MODELWATCH_LABELS__WINDOW_MS": str(w.window_ms),
        "MODELWATCH_LABELS__LABEL_HORIZON_MS": str(w.label_horizon_ms),
    }
