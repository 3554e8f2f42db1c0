"""The Prometheus exporter resumes from persisted totals after a restart."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import RocksStore
from stream_jobs.performance.metrics import LabelMetrics


def _value(reg, name, labels):
    v = reg.get_sample_value(name, labels)
    return None if v is None else float(v)


def test_counters_survive_restart_and_gauges_follow_closed_windows(tmp_path):
    cfg = LabelConfig(label_horizon_ms=0)
    e = LabelEngine(cfg, RocksStore(tmp_path / "db"))
    reg = CollectorRegistry()
    lm = LabelMetrics(reg, e)
    n = 10
    ids = [f"a{i}" for i in range(n)]
    e.observe_predictions("P", 0, 0, PredictionColumns(
        model="m", model_version="7", prediction_ids=ids,
        event_time_ms=np.full(n, 1_000, dtype=np.int64), latency_ms=np.ones(n),
        status=np.zeros(n, np.int8),
        predicted_class=CategoricalArray.from_values(["x"] * n)))
    lab = LabelColumns(model="m", prediction_ids=ids[:8] + ids[:1],
                       event_time_ms=np.full(9, 90_000, dtype=np.int64),
                       label_class=CategoricalArray.from_values(["x"] * 6 + ["y"] * 3))
    r = e.observe_labels("L", 0, 0, lab)
    lm.observe_join(r)
    # a later prediction cuts the prediction stream past the window: it closes
    e.observe_predictions("P", 0, 1, PredictionColumns(
        model="m", model_version="7", prediction_ids=["later"],
        event_time_ms=np.array([90_000]), latency_ms=np.ones(1), status=np.zeros(1, np.int8),
        predicted_class=CategoricalArray.from_values(["x"])))
    e.poll(90_000)
    assert _value(reg, "modelwatch_labels_joined_total", {"model": "m"}) == 8.0
    assert _value(reg, "modelwatch_duplicate_labels_total", {"model": "m"}) == 1.0
    assert _value(reg, "modelwatch_label_delay_seconds_count", {"model": "m"}) == 8.0
    acc = _value(reg, "modelwatch_model_performance",
                 {"model": "m", "version": "7", "metric": "accuracy"})
    assert acc == 6 / 8
    assert _value(reg, "modelwatch_label_join_ratio", {"model": "m"}) == 0.8
    e.store.close()

    e2 = LabelEngine(cfg, RocksStore(tmp_path / "db"))
    reg2 = CollectorRegistry()
    LabelMetrics(reg2, e2)
    assert _value(reg2, "modelwatch_labels_joined_total", {"model": "m"}) == 8.0
    assert _value(reg2, "modelwatch_duplicate_labels_total", {"model": "m"}) == 1.0
    e2.observe_labels("L", 0, 0, lab)  # replay of the applied batch: nothing changes
    assert _value(reg2, "modelwatch_labels_joined_total", {"model": "m"}) == 8.0
    e2.store.close()
