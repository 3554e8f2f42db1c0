"""Window metrics against scikit-learn on the same arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.performance.classification import ClassificationAccumulator
from stream_jobs.performance.regression import RegressionAccumulator
from stream_jobs.performance.slices import SliceTable, rank_segments
from stream_jobs.performance.window import WindowPerformance


def split_merge(n, parts, rng):
    """Random partition of row indexes: accumulators built per part then merged."""
    cut = np.sort(rng.choice(np.arange(1, n), parts - 1, replace=False))
    return np.split(rng.permutation(n), cut)


@pytest.mark.parametrize("seed", range(5))
def test_binary_counts_exact_and_auc_within_bound(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    y = (rng.random(n) < 0.3).astype(int)
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    pred = (score >= 0.5).astype(int)
    acc = ClassificationAccumulator(positive=1)
    for part in split_merge(n, 4, rng):
        a = ClassificationAccumulator(positive=1)
        s = score[part]
        a.update(y[part], pred[part], pos_score=s, p_true=np.where(y[part] == 1, s, 1 - s),
                 confidence=np.where(pred[part] == 1, s, 1 - s))
        acc.merge(ClassificationAccumulator.from_bytes(a.to_bytes()))
    m = acc.metrics()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score), rel=1e-9)
    exact = skm.roc_auc_score(y, score)
    bound = acc.auc_error_bound()
    assert abs(m["roc_auc"] - exact) <= bound + 1e-12
    assert bound < 0.005  # 200 bins, spread scores: stated tolerance
    # calibration error against a direct computation with the same 15 bins
    conf = np.where(pred == 1, score, 1 - score)
    b = np.clip((conf * 15).astype(int), 0, 14)
    ece = sum(
        (b == i).mean() * abs((pred == y)[b == i].mean() - conf[b == i].mean())
        for i in range(15) if (b == i).any()
    )
    assert m["calibration_error"] == pytest.approx(ece, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_multiclass_macro_and_log_loss(seed):
    rng = np.random.default_rng(seed)
    n, k = 3000, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y] * rng.random((n, 1))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    pred[:50] = 3  # make class 3 over-predicted
    acc = ClassificationAccumulator()
    for part in split_merge(n, 3, rng):
        acc.update(y[part], pred[part], p_true=probs[part, y[part]])
    m = acc.metrics()
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                     ("f1", skm.f1_score)):
        assert m[name] == pytest.approx(fn(y, pred, average="macro", zero_division=0),
                                        abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs), rel=1e-9)
    assert "roc_auc" not in m


def test_macro_over_classes_absent_from_truth():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])  # class 2 only predicted: precision 0 counts in macro
    acc = ClassificationAccumulator()
    acc.update(y, pred)
    assert acc.metrics()["precision"] == pytest.approx(
        skm.precision_score(y, pred, average="macro", zero_division=0))


@pytest.mark.parametrize("seed", range(3))
def test_regression_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(10, 3, 4000)
    y[:5] = 0.0  # zero labels: skipped by MAPE (scikit-learn divides by eps: ~1e12)
    p = y + rng.normal(0.5, 1.0, y.size)
    r = RegressionAccumulator()
    for part in split_merge(y.size, 5, rng):
        a = RegressionAccumulator()
        a.update(y[part], p[part])
        r.merge(RegressionAccumulator.from_bytes(a.to_bytes()))
    m = r.metrics()
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)), rel=1e-12)
    nz = y != 0
    assert m["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(y[nz], p[nz]), rel=1e-9
    )
    assert m["mape_skipped_zero_labels"] == 5.0
    assert m["bias"] == pytest.approx(np.mean(p - y), rel=1e-12)


def test_engine_end_to_end_matches_sklearn_with_probabilities():
    """Through the engine (packing, float32 probabilities, joins out of order)."""
    rng = np.random.default_rng(11)
    n = 2000
    ids = [f"p{i}" for i in range(n)]
    y = rng.integers(0, 3, n)
    raw = rng.random((n, 3)) + np.eye(3)[y]
    probs = raw / raw.sum(axis=1, keepdims=True)
    names = ["cat", "dog", "eel"]
    cols = PredictionColumns(
        model="zoo", model_version="2", prediction_ids=ids,
        event_time_ms=np.full(n, 5_000, dtype=np.int64), latency_ms=np.ones(n),
        status=np.zeros(n, np.int8), class_names=names, class_probabilities=probs,
    )
    e = LabelEngine(LabelConfig(), MemoryStore())
    e.observe_predictions("p", 0, 0, cols)
    order = rng.permutation(n)
    for k, chunk in enumerate(np.array_split(order, 7)):
        e.observe_labels("l", 0, k, LabelColumns(
            model="zoo", prediction_ids=[ids[i] for i in chunk],
            event_time_ms=np.full(chunk.size, 9_000, dtype=np.int64),
            label_class=CategoricalArray.from_values([names[y[i]] for i in chunk])))
    [w] = e.open_windows()
    perf = w["performance"]
    pred = probs.argmax(axis=1)
    assert perf["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert perf["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    assert perf["log_loss"] == pytest.approx(skm.log_loss(y, probs), rel=1e-6)  # float32
    assert perf["join_rate"] == 1.0 and perf["label_delay_p50_s"] == 5.0


def test_binary_score_model_through_engine_auc():
    rng = np.random.default_rng(5)
    n = 3000
    ids = [str(i) for i in range(n)]
    y = (rng.random(n) < 0.4).astype(int)
    score = np.clip(rng.normal(0.4 + 0.25 * y, 0.2), 0, 1)
    cols = PredictionColumns(
        model="fraud", model_version="1", prediction_ids=ids,
        event_time_ms=np.arange(n, dtype=np.int64), latency_ms=np.ones(n),
        status=np.zeros(n, np.int8), score=score)
    e = LabelEngine(LabelConfig(), MemoryStore())
    e.observe_predictions("p", 0, 0, cols)
    e.observe_labels("l", 0, 0, LabelColumns(
        model="fraud", prediction_ids=ids, event_time_ms=np.full(n, 10_000, dtype=np.int64),
        label_value=y.astype(float)))
    [w] = e.open_windows()
    perf = w["performance"]
    pred = (score >= 0.5).astype(int)
    assert w["task"] == "regression"  # numeric labels default to regression ...
    e2 = LabelEngine(LabelConfig(tasks={"fraud": "classification"}), MemoryStore())
    e2.observe_predictions("p", 0, 0, cols)
    e2.observe_labels("l", 0, 0, LabelColumns(
        model="fraud", prediction_ids=ids, event_time_ms=np.full(n, 10_000, dtype=np.int64),
        label_value=y.astype(float)))
    [w] = e2.open_windows()  # ... unless the model is declared a classifier
    perf = w["performance"]
    assert perf["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert perf["log_loss"] == pytest.approx(skm.log_loss(y, score), rel=1e-9)
    assert abs(perf["roc_auc"] - skm.roc_auc_score(y, score)) <= w["auc_error_bound"] + 1e-12


def test_window_partials_merge_like_one_window():
    a = WindowPerformance("m", "1", 0, 60_000, positive=1)
    b = WindowPerformance("m", "1", 0, 60_000, positive=1)
    a.n_predictions, b.n_predictions = 10, 10
    a.add_delays(np.array([1.0, 2.0]))
    b.add_delays(np.array([100.0]))
    a.cls.update(np.array([1, 0]), np.array([1, 1]))
    b.cls.update(np.array([1]), np.array([1]))
    a.merge(WindowPerformance.from_bytes(b.to_bytes()))
    s = a.summary()
    assert s["join_rate"] == 3 / 20 and s["accuracy"] == pytest.approx(2 / 3)
    assert s["label_delay_max_s"] == 100.0


def test_rank_segments_finds_the_segment_that_broke():
    rng = np.random.default_rng(2)
    before, after = SliceTable(), SliceTable()
    names = ["eu", "us", "apac"]
    for table, err_us in ((before, 0.1), (after, 0.6)):
        codes = rng.integers(0, 3, 6000)
        err = rng.random(6000) < np.where(codes == 1, err_us, 0.1)
        table.add("region", names, codes, labels=np.ones(6000), errors=err.astype(float))
    ranked = rank_segments(before, after)
    assert ranked[0]["value"] == "us"
    total_change = (
        sum(r["contribution"] for r in ranked)
    )
    def overall(t):
        rows = t.tags["region"].values()
        return sum(r[2] for r in rows) / sum(r[1] for r in rows)
    assert total_change == pytest.approx(overall(after) - overall(before), abs=1e-12)
    assert ranked[0]["performance_part"] > 10 * abs(ranked[0]["mix_part"])


def test_label_drift_through_engine_against_reference():
    from stream_jobs.reference.profile import build_profile
    from stream_jobs.reference.view import ReferenceView

    rng = np.random.default_rng(8)
    e = LabelEngine(LabelConfig(label_horizon_ms=0), MemoryStore())
    e.set_reference("m", "", ReferenceView(build_profile(
        "m", "", numeric={}, label=list(rng.choice(["0", "1"], 5000, p=[0.9, 0.1])))))
    n = 4000
    ids = [str(i) for i in range(n)]
    t = np.where(np.arange(n) < n // 2, 1_000, 61_000).astype(np.int64)
    e.observe_predictions("p", 0, 0, PredictionColumns(
        model="m", model_version="1", prediction_ids=ids, event_time_ms=t,
        latency_ms=np.ones(n), status=np.zeros(n, np.int8),
        predicted_class=CategoricalArray.from_values(["0"] * n)))
    # first window: 10% positives like the reference; second: 40%
    pos = rng.random(n) < np.where(np.arange(n) < n // 2, 0.1, 0.4)
    e.observe_labels("l", 0, 0, LabelColumns(
        model="m", prediction_ids=ids, event_time_ms=np.full(n, 500_000, dtype=np.int64),
        label_class=CategoricalArray.from_values(["1" if p else "0" for p in pos])))
    e.observe_predictions("p", 0, 1, PredictionColumns(  # cuts the predictions past both
        model="m", model_version="1", prediction_ids=["later"],
        event_time_ms=np.array([500_000]), latency_ms=np.ones(1), status=np.zeros(1, np.int8),
        predicted_class=CategoricalArray.from_values(["0"])))
    out = e.poll(500_000)
    drift = [d for d in out.detections if d.kind == "label_drift"]
    assert [d.active for d in drift] == [False, True]
    assert out.windows[1]["label"]["categories"]["1"] == int(pos[n // 2:].sum())


def test_binary_by_predicted_class_names_is_not_forced_onto_positive_class():
    """Labels 'cat'/'dog' without scores: macro metrics, no phantom positive class '1'."""
    e = LabelEngine(LabelConfig(), MemoryStore())
    y = ["cat", "cat", "dog", "dog", "dog"]
    p = ["cat", "dog", "dog", "dog", "cat"]
    ids = [str(i) for i in range(5)]
    e.observe_predictions("p", 0, 0, PredictionColumns(
        model="m", model_version="1", prediction_ids=ids,
        event_time_ms=np.zeros(5, np.int64), latency_ms=np.ones(5),
        status=np.zeros(5, np.int8), predicted_class=CategoricalArray.from_values(p)))
    e.observe_labels("l", 0, 0, LabelColumns(
        model="m", prediction_ids=ids, event_time_ms=np.ones(5, np.int64),
        label_class=CategoricalArray.from_values(y)))
    perf = e.open_windows()[0]["performance"]
    assert perf["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert perf["precision"] == pytest.approx(skm.precision_score(y, p, average="macro"))
