"""performance_drop thresholds from the data: the bar follows the window's label count."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.columnar import CategoricalArray, PredictionColumns
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.performance.reference import drop_margin, performance_drops
from stream_jobs.reference.profile import build_profile
from stream_jobs.reference.view import ReferenceView
from tests.support.labelled import class_labels

PT, LT = "modelwatch.predictions", "modelwatch.labels"


def _window(e: LabelEngine, k: int, n: int, accuracy: float, seed: int) -> list:
    """``n`` 0/1 class predictions in window ``k``, labelled, exactly ``accuracy`` right."""
    rng = np.random.default_rng(seed)
    ids = [f"w{k}-{i}" for i in range(n)]
    truth = rng.integers(0, 2, n)
    right = np.zeros(n, bool)
    right[rng.permutation(n)[: round(accuracy * n)]] = True
    pred = np.where(right, truth, 1 - truth)
    t = k * 60_000 + 1_000
    e.observe_predictions(
        PT,
        0,
        2 * k,
        PredictionColumns(
            model="m",
            model_version="1",
            prediction_ids=ids,
            event_time_ms=np.full(n, t, dtype=np.int64),
            latency_ms=np.ones(n),
            status=np.zeros(n, dtype=np.int8),
            predicted_class=CategoricalArray(["0", "1"], pred.astype(np.int32)),
        ),
    )
    e.observe_labels(LT, 0, 2 * k, class_labels(ids, t + 60_000, truth))
    tick(e, 2 * k + 1, (k + 1) * 60_000 + 10_000)
    return e.poll(t + 60_000).detections


def tick(e: LabelEngine, offset: int, t: int) -> None:
    """One unlabelled prediction at ``t``: the prediction stream is cut past the window
    before (its end + the allowed lateness), so that window closes now."""
    e.observe_predictions(PT, 0, offset, PredictionColumns(
        model="m", model_version="1", prediction_ids=[f"tick-{offset}"],
        event_time_ms=np.array([t]), latency_ms=np.ones(1), status=np.zeros(1, np.int8),
        predicted_class=CategoricalArray(["0", "1"], np.zeros(1, np.int32)),
    ))  # fmt: skip


def _engine(**config) -> LabelEngine:
    e = LabelEngine(
        LabelConfig(label_horizon_ms=0, min_labels_for_comparison=50, **config), MemoryStore()
    )
    ref = build_profile("m", performance={"accuracy": 0.90, "labels": 10_000.0})
    e.set_reference("m", "", ReferenceView(ref))
    return e


def _drop(dets: list) -> bool:
    (d,) = [d for d in dets if d.kind == "performance_drop" and d.subject == "accuracy"]
    return d.active


@pytest.mark.parametrize("n", [1_000, 1_500, 4_000])
def test_a_three_point_drop_on_a_thousand_labels_or_more_fires(n: int) -> None:
    assert _drop(_window(_engine(), 1, n, 0.87, seed=n))


def test_the_same_drop_on_a_hundred_labels_does_not() -> None:
    assert not _drop(_window(_engine(), 1, 100, 0.87, seed=1))


@pytest.mark.parametrize(("n", "bar"), [(100, 0.0905), (1_000, 0.0298)])
def test_the_detection_reports_the_bar_it_applied(n: int, bar: float) -> None:
    dets = _window(_engine(), 1, n, 0.87, seed=n)
    (d,) = [d for d in dets if d.kind == "performance_drop"]
    assert d.threshold == pytest.approx(bar, abs=5e-4)
    assert d.value == pytest.approx(-0.03)


def test_an_equal_window_does_not_fire_and_the_floor_still_applies() -> None:
    assert not _drop(_window(_engine(), 1, 5_000, 0.90, seed=2))
    # an absolute tolerance is a floor: 3 points at 4,000 labels is not 5
    e = _engine(performance_tolerance={"accuracy": 0.05})
    assert not _drop(_window(e, 1, 4_000, 0.87, seed=3))


def test_false_alarms_on_stationary_windows_match_the_z_bar() -> None:
    """Windows drawn from the reference's own accuracy: at z=3 about 0.13% fire."""
    rng = np.random.default_rng(7)
    n, windows, p = 1_000, 20_000, 0.9
    acc = rng.binomial(n, p, windows) / n
    fired = sum(
        bool(performance_drops({"accuracy": a - p}, {"accuracy": 0.0}, accuracy=a, n=n))
        for a in acc
    )
    assert fired / windows < 0.004
    # and the 3-point drop clears the bar at 1,000 labels, not at 100
    assert drop_margin(p, 1_000, 10_000) < 0.03 < drop_margin(p, 100, 10_000)
