"""Label join without a broker: orders, duplicates, TTL, replay, restart from RocksDB."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore, RocksStore

PT, LT = "modelwatch.predictions", "modelwatch.labels"


def preds(ids, times, scores, model="m", version="1", segments=None):
    n = len(ids)
    return PredictionColumns(
        model=model, model_version=version, prediction_ids=list(ids),
        event_time_ms=np.asarray(times, dtype=np.int64), latency_ms=np.ones(n),
        status=np.zeros(n, dtype=np.int8), score=np.asarray(scores, dtype=float),
        segments={k: CategoricalArray.from_values(v) for k, v in (segments or {}).items()},
    )


def labels(ids, times, classes, model="m"):
    return LabelColumns(model=model, prediction_ids=list(ids),
                        event_time_ms=np.asarray(times, dtype=np.int64),
                        label_class=CategoricalArray.from_values(classes))


def engine(store=None, **kw):
    cfg = LabelConfig(**{"label_horizon_ms": 0, **kw})
    return LabelEngine(cfg, store if store is not None else MemoryStore())


def test_prediction_first_then_label_joins_and_scores():
    e = engine()
    e.observe_predictions(PT, 0, 0, preds(["a", "b", "c"], [1_000, 2_000, 3_000], [0.9, 0.1, 0.8]))
    r = e.observe_labels(LT, 0, 0, labels(["a", "b", "c"], [5_000, 6_000, 9_000], ["1", "0", "0"]))
    assert (r.joined, r.duplicates, r.early) == (3, 0, 0)
    assert r.delays_s["m"].tolist() == [4.0, 4.0, 6.0]
    out = e.poll(now_event_ms=200_000)
    assert e.totals("m")["joined"] == 3
    # a window closes once both streams are cut past it (label clock past its end + the
    # horizon, prediction clock past its end + the allowed lateness)
    e.observe_labels(LT, 0, 1, labels(["zz"], [70_000], ["1"]))  # advances the label clock
    assert e.poll(now_event_ms=200_000).windows == []  # the predictions are not cut yet
    e.observe_predictions(PT, 0, 1, preds(["later"], [70_000], [0.5]))
    out = e.poll(now_event_ms=200_000)
    [w] = out.windows
    assert w["window_start_ms"] == 0 and w["closed"]
    assert w["performance"]["accuracy"] == pytest.approx(2 / 3)
    assert w["performance"]["join_rate"] == 1.0
    assert w["label_counts"] == {"1": 1, "0": 2}


def test_label_first_waits_then_joins_when_prediction_arrives():
    e = engine()
    r = e.observe_labels(LT, 0, 0, labels(["a", "b"], [5_000, 5_000], ["1", "0"]))
    assert (r.joined, r.early) == (0, 2)
    assert e.totals("m")["early"] == 2
    r2 = e.observe_predictions(PT, 0, 0, preds(["a", "x"], [1_000, 1_500], [0.7, 0.2]))
    assert r2.joined == 1 and r2.delays_s["m"].tolist() == [4.0]
    assert e.waiting_labels() == {("m", "b")}
    assert e.totals("m")["joined"] == 1
    [w] = e.open_windows("m")
    assert w["performance"]["accuracy"] == 1.0 and w["performance"]["predictions"] == 2.0


def test_duplicate_label_counted_once():
    e = engine()
    e.observe_predictions(PT, 0, 0, preds(["a", "b"], [1_000, 1_000], [0.9, 0.2]))
    r = e.observe_labels(LT, 0, 0, labels(["a", "a"], [2_000, 2_000], ["1", "0"]))
    assert (r.joined, r.duplicates) == (1, 1)
    r = e.observe_labels(LT, 0, 1, labels(["a", "b"], [3_000, 3_000], ["0", "0"]))
    assert (r.joined, r.duplicates) == (1, 1)
    # two early labels for the same id: one waits, the other is a duplicate
    r = e.observe_labels(LT, 0, 2, labels(["q"], [3_000], ["1"]))
    r = e.observe_labels(LT, 0, 3, labels(["q"], [3_000], ["1"]))
    assert r.duplicates == 1 and r.early == 0
    t = e.totals("m")
    assert (t["joined"], t["duplicates"], t["early"]) == (2, 3, 1)
    [w] = e.open_windows()
    assert w["performance"]["labels_joined"] == 2.0 and w["performance"]["accuracy"] == 1.0


def test_ttl_expires_on_the_other_streams_event_clock_whatever_the_wall_clock():
    """History older than the TTL (a backtest of last quarter): polls on today's wall clock
    in between expire nothing; a prediction expires once the label stream passes its time
    + TTL, an early label once the prediction stream passes its own."""
    e = engine(ttl_ms=10_000, expiry_bucket_ms=1_000)
    e.observe_predictions(PT, 0, 0, preds(["a", "b"], [1_000, 1_500], [0.9, 0.2]))
    e.observe_labels(LT, 0, 0, labels(["ghost"], [2_500], ["1"]))
    wall = 1_800_000_000_000
    assert e.poll(wall).orphans == []
    r = e.observe_labels(LT, 0, 1, labels(["a"], [12_000], ["1"]))  # b is due at 12,000
    assert r.joined == 1 and [(o.prediction_id, o.reason) for o in r.orphans] == [
        ("b", "no_label")
    ]
    assert e.poll(wall + 1).orphans == []
    r2 = e.observe_predictions(PT, 0, 1, preds(["c"], [13_000], [0.5]))  # ghost due at 13,000
    assert [(o.prediction_id, o.reason) for o in r2.orphans] == [("ghost", "no_prediction")]
    t = e.totals("m")
    assert (t["orphan_predictions"], t["orphan_labels"], t["joined"]) == (1, 1, 1)


def test_ttl_expiry_reports_orphans_both_ways_once_a_stream_stalls():
    """The backstop: streams that stop move no clock; what waits on them expires once the
    clock has not moved for a TTL of wall time."""
    e = engine(ttl_ms=10_000, expiry_bucket_ms=1_000)
    e.observe_predictions(PT, 0, 0, preds(["a", "b"], [1_000, 1_500], [0.9, 0.2]))
    e.observe_labels(LT, 0, 0, labels(["a", "ghost"], [2_000, 2_500], ["1", "1"]))
    assert e.poll(5_000).orphans == []
    out = e.poll(20_000)
    got = sorted((o.prediction_id, o.model, o.reason) for o in out.orphans)
    assert got == [("b", "m", "no_label"), ("ghost", "m", "no_prediction")]
    assert e.poll(30_000).orphans == []  # reported once
    t = e.totals("m")
    assert (t["orphan_predictions"], t["orphan_labels"]) == (1, 1)
    assert e.waiting_labels() == set()
    # the joined marker expired too: store holds no p/l keys any more
    assert not [k for k in e.store.data if k[:1] in (b"p", b"l", b"t")]


def test_early_labels_are_never_dropped_however_many_wait():
    e = engine()
    ids = [f"id{i}" for i in range(250_000)]
    r = e.observe_labels(LT, 0, 0, labels(ids, [1] * len(ids), ["1"] * len(ids)))
    assert r.early == len(ids) and r.orphans == []
    assert e.totals("m")["orphan_labels"] == 0
    r = e.observe_predictions(PT, 0, 0, preds(ids, [0] * len(ids), [0.9] * len(ids)))
    assert r.joined == len(ids) and e.waiting_labels() == set()


def test_join_key_is_model_and_prediction_id():
    e = engine()
    e.observe_predictions(PT, 0, 0, preds(["a"], [1_000], [0.9], model="A"))
    r = e.observe_labels(LT, 0, 0, labels(["a"], [2_000], ["1"], model="B"))
    assert (r.joined, r.early) == (0, 1)  # model B's label waits for model B's prediction
    r = e.observe_labels(LT, 0, 1, labels(["a"], [2_000], ["0"], model="A"))
    assert r.joined == 1
    assert e.totals("A")["joined"] == 1 and e.totals("B")["joined"] == 0
    assert e.waiting_labels() == {("B", "a")}


def test_duplicate_prediction_never_lets_a_label_join_twice():
    e = engine()
    e.observe_predictions(PT, 0, 0, preds(["a", "a"], [1_000, 1_000], [0.9, 0.1]))
    assert e.totals("m")["duplicate_predictions"] == 1
    assert e.observe_labels(LT, 0, 0, labels(["a"], [2_000], ["1"])).joined == 1
    # the same prediction again after it joined: ignored (first write wins)
    e.observe_predictions(PT, 0, 1, preds(["a"], [1_000], [0.1]))
    r = e.observe_labels(LT, 0, 1, labels(["a"], [3_000], ["1"]))
    assert (r.joined, r.duplicates) == (0, 1)
    t = e.totals("m")
    assert (t["joined"], t["duplicate_predictions"], t["predictions"]) == (1, 2, 1)
    [w] = e.open_windows("m")
    assert w["performance"]["predictions"] == 1.0 and w["performance"]["accuracy"] == 1.0


def test_valueless_label_is_dead_lettered_and_leaves_the_prediction_free():
    e = engine()
    e.observe_predictions(PT, 0, 0, preds(["a"], [1_000], [0.9]))
    empty = LabelColumns(model="m", prediction_ids=["a"], event_time_ms=np.array([2_000]),
                         label_value=np.array([np.nan]))
    r = e.observe_labels(LT, 0, 0, empty)
    assert r.joined == 0 and [o.reason for o in r.orphans] == ["no_value"]
    assert e.totals("m")["valueless_labels"] == 1
    r = e.observe_labels(LT, 0, 1, labels(["a"], [3_000], ["1"]))
    assert (r.joined, r.duplicates) == (1, 0)


def test_classes_are_bounded_and_never_wrap():
    e = engine(max_classes=50)
    n = 40_000
    ids = [f"p{i}" for i in range(n)]
    cols = preds(ids, [1_000] * n, [0.5] * n)
    cols.score = None
    cols.predicted_class = CategoricalArray.from_values([f"c{i}" for i in range(n)])
    e.observe_predictions(PT, 0, 0, cols)
    r = e.observe_labels(LT, 0, 0, labels(ids, [2_000] * n, [f"c{i}" for i in range(n)]))
    assert r.joined == n
    [cat] = e.catalogs.values()
    assert len(cat.classes) == 51 and cat.classes[-1] == "__other__"
    [w] = e.open_windows("m")
    assert w["performance"]["accuracy"] == 1.0  # no wrapped code mismatches a class


def test_catalog_ids_beyond_65535_still_join():
    e = engine()
    for v in range(65_540):
        e._catalog("m", str(v), None)
    e.observe_predictions(PT, 0, 0, preds(["a"], [1_000], [0.9], version="new"))
    assert e.observe_labels(LT, 0, 0, labels(["a"], [2_000], ["1"])).joined == 1
    e2 = engine(store=e.raw_store)  # reloads the wide catalog ids
    assert e2.catalogs[65_541].version == "new"


def test_store_of_another_layout_starts_clean():
    store = MemoryStore()
    store.write({b"p" + b"old-layout-id": b"\x01junk", b"c" + b"m": b"short"}, [])
    e = engine(store=store)
    assert e.totals("m")["predictions"] == 0
    assert set(store.data) == {b"#format"}


def test_replay_of_an_applied_offset_is_skipped():
    e = engine()
    p = preds(["a", "b"], [1_000, 1_000], [0.9, 0.2])
    e.observe_predictions(PT, 3, 7, p)
    assert e.observe_predictions(PT, 3, 7, p).skipped
    assert e.observe_predictions(PT, 3, 5, p).skipped
    lab = labels(["a", "b"], [2_000, 2_000], ["1", "1"])
    e.observe_labels(LT, 3, 9, lab)
    r = e.observe_labels(LT, 3, 9, lab)
    assert r.skipped and r.joined == 0 and r.duplicates == 0
    t = e.totals("m")
    assert (t["predictions"], t["joined"], t["duplicates"]) == (2, 2, 0)
    assert not e.observe_predictions(PT, 4, 7, preds(["c"], [1_000], [0.5])).skipped


def _stream(rng, n=3000, batch=100, seed_labels=0.9):
    ids = [f"id{i}" for i in range(n)]
    t = np.sort(rng.integers(0, 300_000, n))
    score = rng.random(n)
    truth = np.where(rng.random(n) < np.clip(score + 0.1, 0, 1), "1", "0")
    keep = rng.random(n) < seed_labels
    lab_t = t + rng.integers(1_000, 120_000, n)
    order = np.flatnonzero(keep)
    rng.shuffle(order)
    pbatches = [(ids[i:i + batch], t[i:i + batch], score[i:i + batch])
                for i in range(0, n, batch)]
    lbatches = [order[i:i + batch] for i in range(0, order.size, batch)]
    return ids, t, score, truth, lab_t, pbatches, lbatches, keep


def test_restart_from_disk_store_resumes_exactly(tmp_path):
    """Apply a stream, 'crash' mid-way (drop the engine, reopen RocksDB), replay from an
    older committed offset: counts and window performance equal an uninterrupted run."""
    rng = np.random.default_rng(3)
    ids, t, score, truth, lab_t, pb, lb, keep = _stream(rng)

    def feed(e, start_p, start_l, stop_p=None, stop_l=None):
        steps = []
        for k, (i, tt, s) in enumerate(pb):
            steps.append(("p", k, preds(i, tt, s)))
        for k, idx in enumerate(lb):
            steps.append(("l", k, labels([ids[j] for j in idx], lab_t[idx], truth[idx].tolist())))
        # interleave: predictions run ahead of labels
        order = sorted(steps, key=lambda s: (s[1] + (0 if s[0] == "p" else 5), s[0]))
        for kind, k, cols in order:
            if kind == "p" and start_p <= k < (stop_p or 10**9):
                e.observe_predictions(PT, 0, k, cols)
            if kind == "l" and start_l <= k < (stop_l or 10**9):
                e.observe_labels(LT, 0, k, cols)

    ref = engine(ttl_ms=10**9)
    feed(ref, 0, 0)
    expected = {w["window_start_ms"]: w["performance"] for w in ref.open_windows()}

    path = tmp_path / "join.db"
    e1 = engine(RocksStore(path), ttl_ms=10**9)
    feed(e1, 0, 0, stop_p=20, stop_l=15)
    e1.store.close()
    del e1
    e2 = engine(RocksStore(path), ttl_ms=10**9)
    feed(e2, 10, 5)  # re-read from older 'committed' offsets: the overlap is skipped
    got = {w["window_start_ms"]: w["performance"] for w in e2.open_windows()}
    assert got.keys() == expected.keys()
    for k in expected:
        assert got[k] == pytest.approx(expected[k], nan_ok=True)
    assert e2.totals("m") == ref.totals("m")
    assert e2.totals("m")["joined"] == int(keep.sum())
    assert e2.totals("m")["duplicates"] == 0
    e2.store.close()


def test_segments_capped_and_ranked():
    e = engine(segment_cardinality=2)
    regions = ["eu", "us", "apac", "latam"]
    n = 400
    rng = np.random.default_rng(0)
    reg = [regions[i % 4] for i in range(n)]
    ids = [f"x{i}" for i in range(n)]
    e.observe_predictions(PT, 0, 0, preds(ids, np.full(n, 1_000), rng.random(n),
                                          segments={"region": reg}))
    [w] = e.open_windows()
    assert set(w["slices"]["region"]) == {"eu", "us", "__other__"}
    assert w["slices"]["region"]["__other__"]["predictions"] == 200.0


def test_regression_labels_give_regression_metrics():
    e = engine()
    p = preds(["a", "b", "c"], [1_000, 2_000, 3_000], [1.0, 2.0, 5.0])
    e.observe_predictions(PT, 0, 0, p)
    e.observe_labels(LT, 0, 0, LabelColumns(model="m", prediction_ids=["a", "b", "c"],
                                            event_time_ms=np.array([9, 9, 9]) * 1000,
                                            label_value=np.array([2.0, 2.0, 4.0])))
    [w] = e.open_windows()
    assert w["task"] == "regression"
    perf = w["performance"]
    assert perf["mae"] == pytest.approx(2 / 3) and perf["bias"] == pytest.approx(0.0)


def test_performance_floor_detection():
    e = engine(performance_floors={"accuracy": 0.9}, min_labels_for_performance=2)
    e.observe_predictions(PT, 0, 0, preds(["a", "b"], [1_000, 1_000], [0.9, 0.9]))
    e.observe_labels(LT, 0, 0, labels(["a", "b"], [61_000, 61_000], ["1", "0"]))
    e.observe_predictions(PT, 0, 1, preds(["later"], [71_000], [0.5]))  # cuts the predictions
    out = e.poll(61_000)
    [d] = [d for d in out.detections if d.kind == "performance_collapse"]
    assert d.active and d.value == 0.5 and d.threshold == 0.9 and d.subject == "accuracy"


def _stage(store):
    from prometheus_client import CollectorRegistry

    from schemas.codec import default_codec
    from schemas.topics import TopicNames
    from stream_jobs.label_stage import LabelStage
    from stream_jobs.outputs import DetectionSink
    from stream_jobs.performance.metrics import LabelMetrics

    reg = CollectorRegistry()
    e = engine(store, ttl_ms=60_000, expiry_bucket_ms=1_000)
    codec, topics = default_codec(), TopicNames()
    return LabelStage(e, LabelMetrics(reg, e), DetectionSink(codec, topics, reg), codec, topics)


def test_outbox_resends_after_a_crash_until_acknowledged():
    store = MemoryStore()
    stage = _stage(store)
    stage.observe(0, 0, preds(["a", "b"], [1_000, 1_000], [0.9, 0.1]))
    # the label clock passes b's TTL (in event time): an orphan dead letter
    stage.observe_labels(0, 0, labels(["a"], [63_000], ["1"]))
    # the prediction clock passes the window too: the partition closes it; its partial
    # goes to the merge stage (window-partials), never window-stats
    stage.observe(0, 1, preds(["c"], [70_000], [0.5]))
    sent = stage.poll(120.0)
    topics = {r.topic for r in sent}
    assert {"modelwatch.dead-letter", "modelwatch.window-partials"} <= topics, topics
    assert "modelwatch.window-stats" not in topics
    assert sent[-1].topic == "modelwatch.worker-state"  # the partition's snapshot comes last
    assert stage.poll(121.0) == []  # handed out once per process

    def outputs(recs: list) -> list:
        return sorted((r.topic, r.key, r.value) for r in recs
                      if r.topic != "modelwatch.worker-state")  # fmt: skip

    # crash before the broker acknowledged: a restarted stage on the same store re-sends
    again = _stage(store).poll(122.0)
    assert outputs(again) == outputs(sent) and len(outputs(sent)) == len(sent) - 1
    restarted = _stage(store)
    restarted.poll(123.0)
    restarted.acknowledge()
    assert outputs(_stage(store).poll(124.0)) == []
    assert store.data and not list(store.scan(b"x"))


def test_a_store_from_an_earlier_life_of_the_topic_is_reported(caplog):
    store = MemoryStore()
    stage = _stage(store)
    stage.observe(0, 5_000, preds(["a"], [1_000], [0.9]))
    restarted = _stage(store)
    with caplog.at_level("ERROR"):
        restarted.observe(0, 4_990, preds(["b"], [1_000], [0.9]))  # a replay: quiet
        assert not caplog.records
        restarted.observe(0, 0, preds(["c"], [1_000], [0.9]))  # a new topic: loud, once
        restarted.observe(0, 1, preds(["d"], [1_000], [0.9]))
    [rec] = caplog.records
    assert "earlier life of the topic" in rec.getMessage()


def test_every_stored_value_carries_the_state_codec_version():
    store = MemoryStore()
    e = engine(store=store)
    e.observe_predictions(PT, 0, 0, preds(["a", "b"], [1_000, 1_000], [0.9, 0.2]))
    e.observe_labels(LT, 0, 0, labels(["a", "q"], [2_000, 2_000], ["1", "0"]))
    values = {k: v for k, v in store.data.items() if k != b"#format"}
    assert values and all(v[0] == 1 for v in values.values())
    # a record of a version this build does not know: start clean, loudly
    key = next(k for k in store.data if k.startswith(b"w"))
    store.data[key] = b"\x09" + store.data[key][1:]
    e2 = engine(store=store)
    assert e2.open_windows() == [] and set(store.data) == {b"#format"}


def test_restore_rebuilds_a_partition_processed_elsewhere_without_counting():
    ids = [f"id{i}" for i in range(10)]
    p = preds(ids, [1_000] * 10, [0.9] * 10)
    first = labels(ids[:4], [2_000] * 4, ["1"] * 4)
    early = labels(["late-pred"], [2_000], ["1"])
    old = engine()  # the worker that processed the partition, then left
    old.observe_predictions(PT, 3, 0, p)
    old.observe_labels(LT, 3, 0, first)
    old.observe_labels(LT, 3, 1, early)
    new = engine()  # the next owner rebuilds from the topics
    new.observe_predictions(PT, 3, 0, p, restore=True)
    assert new.restore_labels(LT, 3, 0, first) == 4
    assert new.restore_labels(LT, 3, 1, early) == 0
    assert new.totals("m") == engine().totals("m")  # nothing counted
    assert new.open_windows() == [] and new.applied_offset(PT, 3) == -1
    assert new.waiting_labels() == {("m", "late-pred")}
    # then it reads on from the committed offsets: the rest join, the first four are repeats
    r = new.observe_labels(LT, 3, 2, labels(ids, [3_000] * 10, ["1"] * 10))
    assert (r.joined, r.duplicates) == (6, 4)
    r = new.observe_predictions(PT, 3, 1, preds(["late-pred"], [1_500], [0.9]))
    assert r.joined == 1
