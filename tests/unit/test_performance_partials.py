"""Performance windows per input partition (stage 1) and their merge (stage 2): a partition's
window closes once that partition's label and prediction streams are both cut past it, what
it holds does not depend on how the two streams interleave, partitions without data send
progress markers, and workers owning different partitions give, through the merge stage, the window
one engine computes over all labels — once per window."""

from __future__ import annotations

import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.columnar import CategoricalArray
from schemas.topics import TopicNames
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.label_stage import LabelStage
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink
from stream_jobs.performance.merger import PerformanceMerger, decode_payload
from stream_jobs.performance.metrics import LabelMetrics
from stream_jobs.state.metrics import StateMetrics
from tests.unit.test_join_engine import LT, PT, labels, preds

W = 60_000
CFG = LabelConfig(window_ms=W, label_horizon_ms=10_000, concept_scope="partition")


def engine(store: MemoryStore | None = None) -> LabelEngine:
    return LabelEngine(CFG, store if store is not None else MemoryStore())


def data_partials(e: LabelEngine) -> list:
    return [r for r in e.drain_partials() if not r.is_marker]


def test_a_window_closes_per_partition_once_both_its_streams_are_cut() -> None:
    e = engine()
    e.input_partitions = 2
    e.observe_predictions(PT, 0, 0, preds(["a", "b"], [1_000, 2_000], [0.9, 0.1]))
    e.observe_predictions(PT, 1, 0, preds(["c"], [3_000], [0.9]))
    e.observe_labels(LT, 0, 0, labels(["a", "b"], [5_000, 5_000], ["1", "1"]))
    e.observe_labels(LT, 1, 0, labels(["c"], [5_000], ["1"]))
    assert data_partials(e) == []  # 5 s: no clock passed 60 s + 10 s
    # partition 1's labels reach 70 s (window end + horizon): cut on the label side only
    e.observe_labels(LT, 1, 1, labels(["zz"], [70_000], ["1"]))
    assert e.drain_partials() == []
    # ... and its predictions reach 70 s (end + allowed lateness): the window closes there,
    # partition 0's stays open
    e.observe_predictions(PT, 1, 1, preds(["e"], [70_000], [0.9]))
    [p1] = e.drain_partials()
    assert (p1.partition, p1.partitions, p1.window_start_ms, p1.progress_ms) == (1, 2, 0, 60_000)
    assert p1.input_offset == 1 and p1.kind == "performance"
    w, _ = decode_payload(p1.payload)
    assert (w.n_predictions, w.n_joined) == (1, 1)
    assert e.window_partial("m", "1", 0, partition=0).n_joined == 2
    # a prediction of partition 1's closed window is late there: it joins its label, and
    # changes nothing
    e.observe_predictions(PT, 1, 2, preds(["d"], [4_000], [0.9]))
    r = e.observe_labels(LT, 1, 2, labels(["d"], [71_000], ["1"]))
    assert r.joined == 1 and r.late == 1 and e.drain_partials() == []
    # partition 0's clocks pass: its own partial, with both of its labels
    e.observe_labels(LT, 0, 1, labels(["yy"], [75_000], ["1"]))
    e.observe_predictions(PT, 0, 1, preds(["f"], [75_000], [0.9]))
    [p0] = e.drain_partials()
    assert (p0.partition, p0.window_start_ms) == (0, 0)
    assert decode_payload(p0.payload)[0].n_joined == 2


def test_a_partition_without_data_for_a_window_sends_progress_markers() -> None:
    e = engine()
    e.input_partitions = 2
    e.observe_predictions(PT, 0, 0, preds(["a"], [1_000], [0.9]))  # window 0: partition 0 only
    e.observe_labels(LT, 0, 0, labels(["a"], [71_000], ["1"]))
    e.observe_predictions(PT, 0, 1, preds(["a2"], [70_000], [0.9]))
    # partition 1 has data for a later window only: its clocks passing 60 s say "nothing
    # for window 0 here"
    e.observe_predictions(PT, 1, 0, preds(["b"], [70_000], [0.9]))
    e.observe_labels(LT, 1, 0, labels(["b"], [72_000], ["1"]))
    recs = e.drain_partials()
    # (partition 0's first step: labels cut at 60 s, predictions only at -60 s)
    assert [(r.partition, r.is_marker, r.progress_ms) for r in recs] == [
        (0, True, -60_000), (0, False, 60_000), (1, True, 60_000)
    ]  # fmt: skip
    book = MergeBook(wait_s=1e9)
    for r in recs:
        book.add(r)
    [(key, parts, complete)] = book.ready(0.0)  # complete at once: no timeout involved
    assert complete and key == ("m", "1", "performance", 0) and [p.partition for p in parts] == [0]


def test_partials_depend_on_the_partitions_records_only_not_their_interleaving() -> None:
    """Any interleaving of the six streams (three partitions' predictions and labels, each
    in its own order): labels far ahead of their predictions or far behind, partitions
    ahead of each other. The windows' contents are the same every time (which record
    closed a window, and the progress markers on the way, may differ)."""
    rng = np.random.default_rng(4)
    n, parts = 3_000, 3
    t = np.sort(rng.integers(0, 5 * W, n))
    ids = [f"p{i}" for i in range(n)]
    part = rng.integers(0, parts, n)
    delay = rng.integers(1_000, 9_000, n)
    truth = rng.choice(["0", "1"], n).tolist()
    score = rng.random(n)

    def content(payload: bytes) -> tuple:
        w, names = decode_payload(payload)
        conf = sorted((names[x], names[y], int(w.cls.confusion[x, y]))
                      for x, y in zip(*np.nonzero(w.cls.confusion), strict=True))  # fmt: skip
        return w.n_predictions, w.n_joined, conf, w.delay_counts.tolist(), round(w.delay_sum, 6)

    def run(order_seed: int) -> list[tuple]:
        e = engine()
        e.input_partitions = parts
        queues: dict[tuple[int, str], list] = {}
        for p in range(parts):
            rows = np.flatnonzero(part == p)
            for k, chunk in enumerate(np.array_split(rows, 10)):
                queues.setdefault((p, "p"), []).append((k, chunk))
                by_label = chunk[np.argsort(t[chunk] + delay[chunk], kind="stable")]
                queues.setdefault((p, "l"), []).append((k, by_label))
        order = np.random.default_rng(order_seed)
        while queues:
            names = sorted(queues)
            key = names[order.integers(len(names))]
            k, rows = queues[key].pop(0)
            if not queues[key]:
                del queues[key]
            p, side = key
            if side == "p":
                e.observe_predictions(PT, p, k, preds([ids[i] for i in rows], t[rows],
                                                      score[rows]))  # fmt: skip
            else:
                e.observe_labels(LT, p, k, labels([ids[i] for i in rows], t[rows] + delay[rows],
                                                  [truth[i] for i in rows]))  # fmt: skip
        return sorted((r.partition, r.window_start_ms, content(r.payload))
                      for r in e.drain_partials() if not r.is_marker)  # fmt: skip

    runs = [run(seed) for seed in range(1, 9)]
    assert all(r == runs[0] for r in runs[1:])
    joined = sum(c[1] for _, _, c in runs[0])
    closed_rows = sum(1 for i in range(n) if (t[i] // W + 1) * W <= 4 * W)  # 4 windows closed
    assert joined == closed_rows


def test_windows_and_clocks_of_each_partition_survive_a_restart() -> None:
    store = MemoryStore()
    e = engine(store)
    e.observe_predictions(PT, 3, 0, preds(["a"], [1_000], [0.9]))
    e.observe_labels(LT, 3, 0, labels(["a"], [2_000], ["1"]))
    again = engine(store)
    assert again.window_partial("m", "1", 0, partition=3).n_joined == 1
    assert again.label_clock[("m", 3)] == 2_000 and again.pred_clock[("m", 3)] == 1_000
    again.observe_labels(LT, 3, 0, labels(["a"], [90_000], ["1"]))  # a replay: skipped
    again.observe_labels(LT, 3, 1, labels(["x"], [90_000], ["1"]))
    assert again.drain_partials() == []
    again.observe_predictions(PT, 3, 1, preds(["y"], [90_000], [0.9]))
    [p] = again.drain_partials()
    assert p.partition == 3 and decode_payload(p.payload)[0].n_joined == 1


def _label_stage(reg: CollectorRegistry, codec, topics) -> LabelStage:
    e = engine()
    return LabelStage(e, LabelMetrics(reg, e), DetectionSink(codec, topics, reg), codec, topics)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_workers_owning_different_partitions_give_one_window_through_the_merge_stage(
    workers: int,
) -> None:
    """1, 2 or 3 label stages (separate stores: workers) own the 6 partitions between them;
    the merge stage emits each window's performance part once, with every label, equal to
    what one engine computes over all of them, and the accuracy floor judged on it."""
    codec, topics = default_codec(), TopicNames()
    rng = np.random.default_rng(11)
    n, parts = 6_000, 6
    t = np.sort(rng.integers(0, 4 * W, n))
    ids = [f"q{i}" for i in range(n)]
    part = rng.integers(0, parts, n)
    pred_cls = rng.choice(["0", "1"], n)
    truth = np.where(rng.random(n) < 0.8, pred_cls, rng.choice(["0", "1"], n)).tolist()
    stages = [_label_stage(CollectorRegistry(), codec, topics) for _ in range(workers)]
    for s in stages:
        s.on_assign(topics.labels, [], {}, parts)
    reg = CollectorRegistry()
    perf = PerformanceMerger(LabelConfig(**{**CFG.model_dump(),
                                            "performance_floors": {"accuracy": 0.99}}))  # fmt: skip
    sink = DetectionSink(codec, topics, reg)
    merge = MergeStage(DriftConfig(), DriftMetrics(reg), StateMetrics(reg), sink, codec, topics,
                       mergers=[perf])  # fmt: skip
    outs = []
    for p in range(parts):
        stage = stages[p % workers]
        rows = np.flatnonzero(part == p)
        for k, chunk in enumerate(np.array_split(rows, 8)):
            cols = preds([ids[i] for i in chunk], t[chunk], np.full(chunk.size, 0.5))
            cols.predicted_class = CategoricalArray.from_values(pred_cls[chunk].tolist())
            stage.observe(p, k, cols)
            stage.observe_labels(p, k, labels([ids[i] for i in chunk], t[chunk] + 2_000,
                                              [truth[i] for i in chunk]))  # fmt: skip
        # the partition's clocks run past every window: a last label and prediction far ahead
        stage.observe_labels(p, 99, labels([f"end{p}"], [10 * W], ["1"]))
        stage.observe(p, 99, preds([f"end{p}"], [10 * W], [0.5]))
    for s in stages:
        outs += s.poll(0.0)
    partials = [o for o in outs if o.topic == topics.window_partials]
    assert partials and all(o.key == b"m" for o in partials)
    for off, o in enumerate(partials):
        merge.observe_partial(0, off, o.value)
    final = merge.poll(0.0)
    stats = [codec.decode(o.value).record for o in final if o.topic == topics.window_stats]
    assert sorted(s["window_start_ms"] for s in stats) == [0, W, 2 * W, 3 * W]  # once each
    starts = (t // W) * W
    for s in stats:
        in_window = starts == s["window_start_ms"]
        assert s["performance"]["labels_joined"] == in_window.sum()
        assert s["performance"]["predictions"] == in_window.sum()
        right = sum(1 for i in np.flatnonzero(in_window) if truth[i] == pred_cls[i])
        assert s["performance"]["accuracy"] == pytest.approx(right / in_window.sum())
    dets = [codec.decode(o.value).record for o in final if o.topic == topics.detections]
    floors = [d for d in dets if d["kind"] == "performance_collapse"]
    assert len(floors) == 4 and all(d["active"] for d in floors)
    assert set(perf.latest_closed) == {("m", "1")}  # the gauges' source: merged windows
    assert perf.latest_closed[("m", "1")]["window_start_ms"] == 3 * W


@pytest.mark.parametrize("off_loop", [False, True])
def test_the_ranking_baseline_moves_with_the_merge_stages_snapshot(off_loop: bool) -> None:
    """Both snapshot paths (encoded on the loop, or on the stage's thread) carry it."""
    codec, topics = default_codec(), TopicNames()

    def stage() -> tuple[MergeStage, PerformanceMerger]:
        reg = CollectorRegistry()
        perf = PerformanceMerger(CFG)
        sink = DetectionSink(codec, topics, reg)
        return MergeStage(DriftConfig(), DriftMetrics(reg), StateMetrics(reg), sink, codec,
                          topics, mergers=[perf], snapshot_off_loop=off_loop), perf  # fmt: skip

    e = engine()
    e.input_partitions = 1
    seg = {"region": ["eu", "us"]}
    e.observe_predictions(PT, 0, 0, preds(["a", "b"], [1_000, 2_000], [0.9, 0.1], segments=seg))
    e.observe_labels(LT, 0, 0, labels(["a", "b", "z"], [3_000, 3_000, 80_000], ["1", "0", "1"]))
    e.observe_predictions(PT, 0, 1, preds(["y"], [80_000], [0.5], segments={"region": ["eu"]}))
    a, perf_a = stage()
    for off, rec in enumerate(e.drain_partials()):
        a.observe_partial(0, off, codec.encode("WindowPartial", rec.to_record()))
    out = a.poll(0.0)
    assert [o for o in out if o.topic == topics.window_stats]
    assert not perf_a.baselines[("m", "1")].empty  # a healthy window fed the baseline
    deadline = time.monotonic() + 30
    while not [o for o in out if o.topic == topics.worker_state]:  # encoded off the loop
        assert time.monotonic() < deadline, "no snapshot"
        time.sleep(0.01)
        out += a.poll(0.0)
    snapshot = [o.value for o in out if o.topic == topics.worker_state][-1]
    b, perf_b = stage()
    b.on_assign(topics.window_partials, [0], {"merge/0": snapshot}, 1)
    assert perf_b.baselines[("m", "1")].to_bytes() == perf_a.baselines[("m", "1")].to_bytes()


def test_a_partition_moved_after_a_crash_keeps_every_label_in_its_windows() -> None:
    """Worker A processes partition 0, stores a snapshot, goes on a little and dies
    (SIGKILL: its store and unsent work are lost to the group); the group's committed
    offsets lag behind the snapshot. Worker B rebuilds the join from the topics up to the
    committed offsets (label_restore), restores the snapshot and replays from the committed
    offsets: every window's partial holds exactly the labels of its predictions, and the
    windows A had closed too come out identical."""
    codec, topics = default_codec(), TopicNames()
    rng = np.random.default_rng(5)
    batches, per = 12, 200
    t = np.arange(batches * per, dtype=np.int64) * 50  # 10 s of event time per batch
    ids = [f"r{i}" for i in range(t.size)]
    truth = rng.choice(["0", "1"], t.size).tolist()
    score = rng.random(t.size)

    def pred_batch(k: int):
        rows = np.arange(k * per, (k + 1) * per)
        return preds([ids[i] for i in rows], t[rows], score[rows])

    # label batch k: most labels of prediction batch k, the last 10 of batch k - 1 (late),
    # the first 20 of batch k + 1 (early: read before their predictions)
    i = np.arange(t.size)
    lb = i // per + np.where(i % per >= per - 10, 1, 0)
    lb -= np.where((i % per < 20) & (i >= per), 1, 0)

    def label_batch(k: int):
        rows = np.flatnonzero(lb == k)
        return labels([ids[i] for i in rows], t[rows] + 5_000, [truth[i] for i in rows])

    def stage(store: MemoryStore) -> LabelStage:
        # a window closes 30 s of label time after its end: after all its labels, whichever
        # of the two topics runs a batch ahead (the pacer keeps them closer than that)
        e = LabelEngine(LabelConfig(window_ms=W, label_horizon_ms=30_000), store)
        reg = CollectorRegistry()
        st = LabelStage(e, LabelMetrics(reg, e), DetectionSink(codec, topics, reg), codec, topics)
        st.on_assign(topics.labels, [0], {"labels/0": b""}, 1)
        return st

    a = stage(MemoryStore())
    sent = []
    for k in range(6):
        a.observe(0, k, pred_batch(k))
        a.observe_labels(0, k, label_batch(k))
    sent += a.poll(100.0)
    a.acknowledge()
    snapshot = [o.value for o in sent if o.topic == topics.worker_state][-1]
    assert a.durable_offset(topics.predictions, 0) == 5 == a.durable_offset(topics.labels, 0)
    for k in (6, 7, 8):  # applied, partials sent, never snapshotted: then SIGKILL
        a.observe(0, k, pred_batch(k))
        a.observe_labels(0, k, label_batch(k))
    sent += a.poll(101.0)

    committed_p, committed_l = 4, 3  # the group committed less than the snapshot holds
    b = stage(MemoryStore())
    for k in range(committed_p):  # label_restore: the join, from the topics, uncounted
        b.engine.observe_predictions(topics.predictions, 0, k, pred_batch(k), restore=True)
    for k in range(committed_l):
        b.engine.restore_labels(topics.labels, 0, k, label_batch(k))
    b.on_assign(topics.labels, [0], {"labels/0": snapshot}, 1)
    b.on_assign(topics.predictions, [0], {"labels/0": snapshot}, 1)
    assert b.durable_offset(topics.predictions, 0) == 5
    # the replay from the committed offsets, labels a batch ahead this time: label batch 6
    # (after the snapshot) brings late labels of prediction batch 5 (before it), which
    # the worker that made the snapshot never joined: they count when batch 5 replays
    for k in range(committed_l, batches + 1):
        b.observe_labels(0, k, label_batch(k))
        if k - 1 >= committed_p:
            b.observe(0, k - 1, pred_batch(k - 1))
    b.observe_labels(0, batches + 1, labels(["end"], [10**7], ["1"]))
    b.observe(0, batches, preds(["end-p"], [10**7], [0.5]))
    out_b = b.poll(200.0)
    # B counts only the joins the snapshot does not hold
    assert b.engine.totals("m")["joined"] == t.size - int((lb[: 6 * per] <= 5).sum())

    def partials(out: list) -> dict[int, tuple]:
        got = {}
        for o in out:
            if o.topic == topics.window_partials:
                r = codec.decode(o.value).record
                if r["payload"] and r["kind"] == "performance":
                    w, names = decode_payload(bytes(r["payload"]))
                    conf = {(names[x], names[y]): int(w.cls.confusion[x, y])
                            for x, y in zip(*np.nonzero(w.cls.confusion), strict=True)}  # fmt: skip
                    # (not the input offset: which stream's record closed it depends on
                    # their interleaving, what it holds does not)
                    got[r["window_start_ms"]] = (w.n_joined, w.n_predictions, conf)
        return got

    from_a, from_b = partials(sent), partials(out_b)
    assert from_a and set(from_a) < set(from_b)
    assert all(from_a[s] == from_b[s] for s in from_a)  # closed again, the same
    starts = (t // W) * W
    for start, (joined, predicted, conf) in from_b.items():
        in_window = np.flatnonzero(starts == start)
        assert joined == predicted == in_window.size, start
        assert sum(conf.values()) == joined
