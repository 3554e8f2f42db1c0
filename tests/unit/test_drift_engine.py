"""DriftEngine end to end on synthetic PredictionColumns (no broker)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.detection import DetectionKind
from stream_jobs.drift import DriftConfig, DriftEngine
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.drift.synthetic import SyntheticStream

MIN = 60_000


def _feed(engine, stream, t0, t1, partitions=4, batch=2_000, offsets=None):
    """Feed [t0, t1) as batches split at random over partitions; returns late count."""
    offsets = offsets if offsets is not None else {}
    late = 0
    n_per_ms = stream.rate / 1000
    t = t0
    while t < t1:
        n = int(min(batch, (t1 - t) * n_per_ms))
        cols = stream.batch(t, n)
        part = stream.rng.integers(0, partitions, n)
        for p in range(partitions):
            idx = np.flatnonzero(part == p)
            if idx.size:
                offsets[p] = offsets.get(p, -1) + 1
                late += engine.observe(p, offsets[p], _take(cols, idx))
        t += int(n / n_per_ms)
    return late


def _take(cols, idx):
    from schemas.columnar import PredictionColumns

    return PredictionColumns(
        cols.model, cols.model_version, [cols.prediction_ids[i] for i in idx.tolist()],
        cols.event_time_ms[idx], cols.latency_ms[idx], cols.status[idx],
        numeric={k: v[idx] for k, v in cols.numeric.items()},
        categorical={k: v.take(idx) for k, v in cols.categorical.items()},
        score=None if cols.score is None else cols.score[idx],
    )  # fmt: skip


def _drifted(w):
    return {v["column"] for v in w.stats["drift"] if v["drifted"]}


@pytest.fixture(scope="module")
def shifted_run():
    """20 numeric + 5 categorical features, 4 partitions, 200 events/s; f7 moves by 0.5σ
    at 5 min 20 s (a third into window 5)."""
    s = SyntheticStream(rate_per_s=200, seed=42)
    engine = DriftEngine(DriftConfig())
    engine.set_reference(s.reference())
    change = 5 * MIN + 20_000
    offsets: dict[int, int] = {}
    _feed(engine, s, 0, change, offsets=offsets)
    closed = engine.poll_closed()
    s.shift["f7"] = 0.5
    _feed(engine, s, change, 9 * MIN, offsets=offsets)
    closed += engine.poll_closed()
    return engine, closed, change


def test_shift_in_one_of_twenty_features_is_found_on_that_feature_only(shifted_run) -> None:
    engine, closed, change = shifted_run
    starts = [w.window_start_ms for w in closed]
    assert starts == [i * MIN for i in range(8)]  # window 8 is still open (lateness)
    for w in closed:
        assert w.stats["count"] == pytest.approx(12_000, abs=2)
        assert len(w.stats["drift"]) == 26  # 25 features + prediction
        if w.window_end_ms <= change:
            assert _drifted(w) == set(), w.window_start_ms
            assert w.stats["drift_share"] == 0.0
    after = [w for w in closed if w.window_end_ms > change]
    first = next(i for i, w in enumerate(after) if "f7" in _drifted(w))
    assert first <= 1  # within two windows of the change
    for w in after[first:]:
        assert _drifted(w) == {"f7"}
        assert w.stats["drift_share"] == pytest.approx(1 / 25)
        assert not w.stats["dataset_drift"]
        verdict = next(v for v in w.stats["drift"] if v["column"] == "f7")
        assert verdict["test"] == "wasserstein" and verdict["statistic"] >= 0.1


def test_window_records_encode_and_carry_active_and_inactive_detections(shifted_run) -> None:
    _, closed, _ = shifted_run
    codec = default_codec()
    for w in closed:
        back = codec.decode(codec.encode("WindowStats", w.stats)).record
        assert back["count"] == w.stats["count"] and len(back["features"]) == 25
        drift = [d for d in w.detections if d.kind == DetectionKind.FEATURE_DRIFT]
        assert len(drift) == 25  # one per evaluated feature, active or not
        assert {d.subject for d in drift if d.active} == _drifted(w) - {"__prediction__"}
        kinds = {d.kind for d in w.detections}
        assert {DetectionKind.DATASET_DRIFT, DetectionKind.PREDICTION_DRIFT,
                DetectionKind.MISSING_RATE, DetectionKind.OUT_OF_RANGE,
                DetectionKind.UNSEEN_CATEGORY, DetectionKind.TYPE_VIOLATION} <= kinds  # fmt: skip
        assert not any(d.active for d in w.detections if d.kind != DetectionKind.FEATURE_DRIFT)
        for d in w.detections:
            assert (d.window_start_ms, d.window_end_ms) == (w.window_start_ms, w.window_end_ms)
            codec.encode("Detection", d.to_record())


def test_online_detectors_fire_on_the_shifted_feature_after_the_change() -> None:
    s = SyntheticStream(n_numeric=6, n_categorical=1, rate_per_s=400, seed=7)
    engine = DriftEngine(DriftConfig())
    engine.set_reference(s.reference())
    change = 4 * MIN
    offsets: dict[int, int] = {}
    _feed(engine, s, 0, change, offsets=offsets)
    assert engine.poll_detector_firings() == []
    s.shift["f3"] = 1.0
    _feed(engine, s, change, 6 * MIN, offsets=offsets)
    fired = engine.poll_detector_firings()
    assert fired and {d.subject for d in fired} == {"f3"}
    for d in fired:
        assert d.event_time_ms >= change and d.partition is not None and d.offset is not None
        assert d.value >= 2 and d.details["mode"] == "online"
    assert {d.detector for d in fired} >= {"adwin", "page_hinkley"}


def test_replayed_offsets_are_not_double_counted_and_state_restores() -> None:
    s = SyntheticStream(n_numeric=3, n_categorical=1, rate_per_s=100, seed=3)
    batches = [s.batch(i * 5_000, 500) for i in range(30)]  # 150 s of events
    cfg = DriftConfig(window_ms=30_000, allowed_lateness_ms=0)

    once = DriftEngine(cfg)
    once.set_reference(s.reference())
    for i, b in enumerate(batches):
        once.observe(i % 2, i // 2, b)
    ref_counts = [w.stats["count"] for w in once.flush()]

    twice = DriftEngine(cfg)
    twice.set_reference(s.reference())
    for i, b in enumerate(batches[:20]):
        twice.observe(i % 2, i // 2, b)
    restored = DriftEngine.from_state_bytes(twice.state_bytes())
    for i, b in enumerate(batches):  # at-least-once: replay everything from the start
        assert restored.observe(i % 2, i // 2, b) == 0
    closed = twice.poll_closed() and restored.poll_closed()
    closed += restored.flush()
    assert [w.stats["count"] for w in closed] == ref_counts == [3_000] * 5
    assert restored.last_offset(0) == 14 and restored.last_offset(1) == 14


def test_late_events_are_counted_not_applied() -> None:
    s = SyntheticStream(n_numeric=2, n_categorical=0, rate_per_s=100, seed=5)
    engine = DriftEngine(DriftConfig(window_ms=10_000, allowed_lateness_ms=2_000))
    assert engine.observe(0, 0, s.batch(0, 1_000)) == 0  # 0 .. 10 s
    assert engine.observe(1, 0, s.batch(11_000, 50)) == 0  # watermark -> 11.49 s - 2 s
    assert engine.observe(1, 1, s.batch(9_000, 50)) == 0  # inside lateness: applied
    assert engine.observe(0, 1, s.batch(13_000, 100)) == 0  # p0 at 13.99 s, p1 at 11.49 s
    assert engine.observe(1, 2, s.batch(13_000, 50)) == 0  # both past 12 s: window 0 closes
    closed = engine.poll_closed()
    assert [(w.window_start_ms, w.stats["count"], w.stats["late_events"]) for w in closed] == [
        (0, 1_050, 0)
    ]
    assert engine.observe(0, 2, s.batch(5_000, 100)) == 100  # its window is closed: late
    assert engine.late_total == {"m": 100}
    engine.observe(0, 3, s.batch(30_000, 100))
    engine.observe(1, 3, s.batch(30_000, 100))
    late_reported = [w.stats["late_events"] for w in engine.poll_closed()]
    assert late_reported == [100]  # reported with the next closed window


def test_without_reference_stats_but_no_verdicts() -> None:
    s = SyntheticStream(n_numeric=2, n_categorical=1, rate_per_s=100, seed=6)
    engine = DriftEngine(DriftConfig(window_ms=10_000))
    engine.observe(0, 0, s.batch(0, 1_000))
    (w,) = engine.flush()
    assert w.stats["count"] == 1_000 and len(w.stats["features"]) == 3
    assert w.stats["drift"] == [] and w.stats["drift_share"] is None and w.detections == []
    assert engine.poll_detector_firings() == []


def test_min_sample_guard_withholds_verdicts() -> None:
    s = SyntheticStream(n_numeric=2, n_categorical=1, rate_per_s=100, seed=8)
    engine = DriftEngine(DriftConfig(window_ms=10_000, min_sample=100))
    engine.set_reference(s.reference())
    s.shift["f0"] = 3.0
    engine.observe(0, 0, s.batch(0, 99))
    engine.observe(0, 1, s.batch(10_000, 100))
    small, enough = engine.flush()
    assert small.stats["drift"] == [] and small.stats["drift_share"] is None
    assert not any(d.kind == DetectionKind.FEATURE_DRIFT for d in small.detections)
    assert "f0" in _drifted(enough)
    assert enough.stats["drift"][0]["test"] == "ks"


def test_data_quality_detections() -> None:
    s = SyntheticStream(n_numeric=3, n_categorical=2, rate_per_s=100, seed=9)
    engine = DriftEngine(DriftConfig(window_ms=10_000))
    engine.set_reference(s.reference())
    cols = s.batch(0, 1_000)
    cols.numeric["f0"][:300] = np.nan  # missing-rate rise
    cols.numeric["f1"][:50] = 1e6  # out of the reference range
    cols.categorical["c0"].dictionary[0] = "brand-new"  # unseen category
    cols.categorical["f2"] = cols.categorical.pop("c1")  # numeric arrives as categorical
    del cols.numeric["f2"]
    engine.observe(0, 0, cols)
    (w,) = engine.flush()
    active = {(str(d.kind), d.subject) for d in w.detections if d.active}
    assert {("missing_rate", "f0"), ("out_of_range", "f1"), ("unseen_category", "c0"),
            ("type_violation", "f2"), ("type_violation", "c1")} <= active  # fmt: skip
    feats = {(c["name"], c["kind"]): c for c in w.stats["features"]}
    assert feats[("f1", "numeric")]["out_of_range"] == 50
    assert feats[("c0", "categorical")]["unseen_categories"] > 0
    assert feats[("f2", "numeric")]["missing"] == 1_000 and ("f2", "categorical") in feats
    reg = CollectorRegistry()
    DriftMetrics(reg).record_window(w)
    labels = {"model": "m", "feature": "f2"}
    assert reg.get_sample_value("modelwatch_feature_missing_ratio", labels) == 1.0


def test_hopping_windows_and_versions() -> None:
    s = SyntheticStream(n_numeric=1, n_categorical=0, rate_per_s=100, seed=10)
    engine = DriftEngine(DriftConfig(window_ms=20_000, hop_ms=10_000, allowed_lateness_ms=0))
    engine.observe(0, 0, s.batch(0, 4_000))  # 0 .. 40 s
    s.version = "2"
    engine.observe(0, 1, s.batch(40_000, 100))
    got = [(w.model_version, w.window_start_ms, w.stats["count"]) for w in engine.poll_closed()]
    assert got == [("1", -10_000, 1_000), ("1", 0, 2_000), ("1", 10_000, 2_000),
                   ("1", 20_000, 2_000)]  # fmt: skip


def test_metrics_exporter_sets_series_and_caps_features(shifted_run) -> None:
    _, closed, _ = shifted_run
    reg = CollectorRegistry()
    m = DriftMetrics(reg, max_features=30)
    capped_reg = CollectorRegistry()
    capped = DriftMetrics(capped_reg, max_features=10)
    for w in closed:
        m.record_window(w)
        capped.record_window(w)
    m.record_late("m", 3)
    last = closed[-1]

    def val(name, **labels):
        return reg.get_sample_value(name, labels)

    assert val("modelwatch_windows_closed_total", model="m") == len(closed)
    assert val("modelwatch_window_events", model="m") == last.stats["count"]
    assert val("modelwatch_feature_drift_detected", model="m", feature="f7") == 1.0
    assert val("modelwatch_feature_drift_detected", model="m", feature="f1") == 0.0
    assert val("modelwatch_feature_drift_score", model="m", feature="f7", test="wasserstein") >= 0.1
    assert val("modelwatch_drift_share_ratio", model="m") == pytest.approx(1 / 25)
    assert val("modelwatch_dataset_drift_detected", model="m") == 0.0
    assert val("modelwatch_prediction_drift_score", model="m", test="wasserstein") < 0.1
    assert val("modelwatch_feature_missing_ratio", model="m", feature="f0") == 0.0
    assert val("modelwatch_late_events_total", model="m") == 3.0
    assert val("modelwatch_features_not_exported", model="m") == 0
    assert capped_reg.get_sample_value("modelwatch_features_not_exported", {"model": "m"}) == 15
    names = {s.labels.get("feature") for mf in capped_reg.collect() for s in mf.samples}
    assert len(names - {None}) == 10


def test_idle_model_windows_close_on_processing_time_and_partitions_can_be_dropped() -> None:
    s = SyntheticStream(n_numeric=1, n_categorical=0, rate_per_s=100, seed=11)
    engine = DriftEngine(DriftConfig(window_ms=10_000, allowed_lateness_ms=1_000))
    engine.observe(0, 0, s.batch(0, 500))  # 0 .. 5 s, then the traffic stops
    engine.observe(1, 0, s.batch(1_000, 100))
    assert engine.poll_closed() == [] and engine.open_windows() == [("m", "1", 0)]
    assert engine.poll_closed(now_ms=10_999) == []
    (w,) = engine.poll_closed(now_ms=11_000)
    assert w.stats["count"] == 600 and engine.open_windows() == []
    engine.observe(1, 1, s.batch(20_000, 100))
    engine.drop_partitions([1])
    assert engine.partitions == [0] and engine.flush() == []


def test_new_reference_restarts_detectors_and_judges_next_window() -> None:
    s = SyntheticStream(n_numeric=2, n_categorical=0, rate_per_s=100, seed=12)
    engine = DriftEngine(DriftConfig(window_ms=10_000))
    engine.set_reference(s.reference())
    engine.observe(0, 0, s.batch(0, 1_000))
    assert engine._parts[0].detectors  # built from the first reference
    moved = s.reference()
    moved["features"][0]["mean"] = 5.0
    engine.set_reference(moved)
    assert engine._parts[0].detectors == {}
    assert engine.reference("m", "1").columns["f0"].mean == 5.0


def test_a_partition_read_ahead_does_not_close_windows_the_others_still_feed() -> None:
    """A backlog read partition by partition: p0 runs far ahead; windows wait for p1 until
    p1 catches up, or until p1 has been idle for ``idle_partition_s`` of clock time."""
    now = [0.0]
    s = SyntheticStream(n_numeric=2, n_categorical=0, rate_per_s=100, seed=8)
    engine = DriftEngine(DriftConfig(window_ms=10_000, allowed_lateness_ms=1_000,
                                     idle_partition_s=30), clock=lambda: now[0])
    engine.observe(0, 0, s.batch(0, 5_000))  # p0: 0 .. 50 s
    engine.observe(1, 0, s.batch(0, 500))  # p1: 0 .. 5 s
    assert engine.poll_closed() == []  # the clock is p1's 5 s, not p0's 50 s
    assert engine.observe(1, 1, s.batch(5_000, 1_000)) == 0  # p1's rows are not late
    closed = engine.poll_closed()  # p1 now at 15 s: window 0 closes with both partitions
    assert [(w.window_start_ms, w.stats["count"]) for w in closed] == [(0, 1_000 + 1_000)]
    now[0] = 31.0  # p1 idle for 31 s: it no longer holds the clock back
    engine.observe(0, 1, s.batch(50_000, 100))
    starts = [w.window_start_ms for w in engine.poll_closed()]
    assert starts == [10_000, 20_000, 30_000]  # 40-50 s ends at 50 s + 1 s > 50.99 s
