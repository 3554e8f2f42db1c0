"""Reference performance (against scikit-learn), drops against it, and the ranking that names
the feature range or segment behind a drop."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn import metrics as skm

from schemas.columnar import CategoricalArray, PredictionColumns
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.performance.reference import (
    compare_with_reference,
    performance_drops,
    reference_performance,
)
from stream_jobs.reference.profile import build_profile
from stream_jobs.reference.view import ReferenceView
from tests.support.labelled import class_labels

PT, LT = "modelwatch.predictions", "modelwatch.labels"


def test_binary_scores_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5_000)
    s = np.clip(0.35 * y + rng.random(5_000) * 0.65, 0, 1)
    got = reference_performance(y, s)
    pred = (s >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, s), rel=1e-9)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=0.01)


def test_string_classes_and_missing_rows() -> None:
    labels = ["churn", "no_churn", None, "churn", "no_churn"]
    scores = [0.8, 0.3, 0.9, 0.4, np.nan]
    got = reference_performance(labels, scores, positive="churn", negative="no_churn")
    assert got["labels"] == 3.0  # the row without a label and the one without a score skipped
    assert got["accuracy"] == pytest.approx(2 / 3)


def test_multiclass_classes_macro_like_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], 3_000)
    p = np.where(rng.random(3_000) < 0.7, y, rng.choice(["a", "b", "c"], 3_000))
    got = reference_performance(list(y), list(p))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert got["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))


def test_regression_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 2_000)
    p = y + rng.normal(0.5, 1, 2_000)
    got = reference_performance(y, p)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    with pytest.raises(ValueError, match="labels but"):
        reference_performance(y, p[:-1])


def test_drops_need_tolerance_and_significance_and_ignore_improvements() -> None:
    ref = {"accuracy": 0.90, "mae": 1.0, "log_loss": 0.3}
    tol = {"accuracy": 0.05, "mae": 0.2}
    small = compare_with_reference({"accuracy": 0.83}, ref)  # 0.07 worse, 100 labels: noise
    assert performance_drops(small, tol, accuracy=0.83, n=100) == {}
    assert set(performance_drops(small, tol, accuracy=0.83, n=5_000)) == {"accuracy"}
    better = compare_with_reference({"accuracy": 0.99, "mae": 0.1}, ref)
    assert performance_drops(better, tol, accuracy=0.99, n=5_000) == {}
    worse = compare_with_reference({"mae": 1.5, "log_loss": 0.9}, ref)
    assert performance_drops(worse, tol) == {"mae": 0.5}  # log_loss has no tolerance


def ids_hash(ids: list[str]) -> np.ndarray:
    return np.array([int(i.rsplit("-", 1)[1]) for i in ids])


def _preds(ids: list[str], t: int, x: np.ndarray, score: np.ndarray) -> PredictionColumns:
    n = len(ids)
    return PredictionColumns(
        model="m",
        model_version="1",
        prediction_ids=ids,
        event_time_ms=np.full(n, t, dtype=np.int64),
        latency_ms=np.ones(n),
        status=np.zeros(n, dtype=np.int8),
        score=score,
        numeric={"x": x},
        segments={"region": CategoricalArray(["eu", "us"], (ids_hash(ids) % 2).astype(np.int32))},
    )


def _window(e: LabelEngine, k: int, rng: np.random.Generator, broken_above: float | None):
    """2,000 predictions in window ``k``, all labelled: right 90 % of the time, and always
    wrong where ``x >= broken_above``."""
    n = 2_000
    ids = [f"w{k}-{i}" for i in range(n)]
    x = rng.random(n)
    truth = rng.integers(0, 2, n)
    right = rng.random(n) < 0.9
    if broken_above is not None:
        right &= x < broken_above
    score = np.where(right, truth, 1 - truth).astype(float) * 0.8 + 0.1
    t = k * 60_000 + 1_000
    e.observe_predictions(PT, 0, 2 * k, _preds(ids, t, x, score))
    e.observe_labels(LT, 0, 2 * k, class_labels(ids, t + 60_000, truth))
    # one unlabelled prediction past the window's end + the allowed lateness: the
    # prediction stream is cut past it, so it closes now
    e.observe_predictions(PT, 0, 2 * k + 1, _preds([f"tick{k}-0"], t + 69_000, x[:1], score[:1]))
    return e.poll(t + 60_000)


def test_drop_against_reference_names_the_feature_range_behind_it() -> None:
    rng = np.random.default_rng(3)
    e = LabelEngine(LabelConfig(label_horizon_ms=0), MemoryStore())
    ref = build_profile("m", numeric={"x": rng.random(20_000)}, performance={"accuracy": 0.9})
    e.set_reference("m", "", ReferenceView(ref))
    healthy = [_window(e, k, rng, None) for k in range(3)]
    for out in healthy:
        [d] = [d for d in out.detections if d.kind == "performance_drop"]
        assert not d.active and "explained_by" not in d.details
        [w] = out.windows
        assert w["performance_reference"] == {"accuracy": 0.9}
        assert abs(w["performance_delta"]["accuracy"]) < 0.03
    out = _window(e, 3, rng, broken_above=0.8)
    [d] = [d for d in out.detections if d.kind == "performance_drop"]
    assert d.active and d.value == pytest.approx(-0.18, abs=0.03)
    # region is independent of x: each region carries its traffic share of the rise (excess
    # about 0), while the two top deciles of x hold all of it
    first, second = d.details["explained_by"].split("; ")[:2]
    assert first.startswith("feature:x=") and second.startswith("feature:x="), first
    for part in (first, second):  # error ~0.1 -> ~1 on ~10 % of the labels each
        before, after, share = re.search(r"error ([\d.]+)→([\d.]+) on (\d+)%", part).groups()
        assert float(before) < 0.15 and float(after) > 0.9 and 8 <= int(share) <= 12, part
    [w] = out.windows
    assert [r["tag"] for r in w["ranking"][:2]] == ["feature:x", "feature:x"]
    edges = sorted(float(str(r["value"]).strip("[≥ ").split(",")[0]) for r in w["ranking"][:2])
    assert edges == pytest.approx([0.8, 0.9], abs=0.02)  # the two top deciles of x
