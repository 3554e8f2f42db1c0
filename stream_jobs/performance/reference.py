"""Reference performance: the model's metrics on the labelled data it was profiled from,
and how a production window compares with them.

:func:`reference_performance` computes, from a label column and a prediction column, the
same metrics (same accumulators, same names) a joined production window reports, so that
``window - reference`` compares like with like. The prediction column may hold classes,
or — for a binary model — the positive-class score, thresholded at ``threshold``.

:func:`compare_with_reference` gives ``{metric: window - reference}`` for the metrics both
have, and :func:`performance_drops` the metrics that moved the *bad* way (accuracy
falling, log loss or MAE rising — improvements never count) by more than chance allows.

**Thresholds from data.** A window of ``n`` labels estimates a proportion (accuracy,
error rate) with a binomial sampling error. If the window were as good as the reference
(accuracy ``p`` over ``N`` labels), ``window - reference`` would have the standard error
``se = sqrt(p (1 - p) (1/n + 1/N))``; a drop counts when it exceeds ``z * se`` (one-sided;
``z = 3``: p < 0.0014 per judged window) **and** the metric's absolute tolerance (an
optional floor, default 0: "any drop the data can prove"). So the bar follows the
window's label count — at a reference accuracy of 0.90 over 10,000 labels a drop must
exceed 3.0 points at 1,000 labels, 2.2 at 2,000, 9.0 at 100:

=============  ======  ======  ======  ======  ======
labels         100     200     1,000   2,000   10,000
z x se (p=.9)  0.090   0.064   0.030   0.022   0.013
=============  ======  ======  ======  ======  ======

Metrics without a sampling model here (F1, ROC AUC, log loss, MAE, …) are judged by their
absolute tolerance alone; give them one to watch them.

>>> import numpy as np
>>> ref = reference_performance(np.array([1, 0, 1, 1]), np.array([0.9, 0.2, 0.4, 0.8]))
>>> ref["accuracy"], ref["roc_auc"]
(0.75, 1.0)
>>> reference_performance([3.0, 5.0], [2.0, 6.0], task="regression")["mae"]
1.0
>>> delta = compare_with_reference({"accuracy": 0.6, "mae": 2.0}, ref)
>>> round(delta["accuracy"], 2)
-0.15
>>> performance_drops(delta, {"accuracy": 0.05})
{'accuracy': -0.15000000000000002}
>>> d = compare_with_reference({"accuracy": 0.87}, {"accuracy": 0.90})
>>> performance_drops(d, {"accuracy": 0.0}, accuracy=0.87, n=1_000, reference_n=10_000)
{'accuracy': -0.030000000000000027}
>>> performance_drops(d, {"accuracy": 0.0}, accuracy=0.87, n=100, reference_n=10_000)
{}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from schemas import column_types as ct
from stream_jobs.performance.classification import ClassificationAccumulator
from stream_jobs.performance.regression import RegressionAccumulator

HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
LOWER_IS_BETTER = frozenset({"error_rate", "log_loss", "calibration_error", "mae", "rmse", "mape"})
PROPORTIONS = frozenset({"accuracy", "error_rate"})
COMPARED = HIGHER_IS_BETTER | LOWER_IS_BETTER | {"bias"}
DROP_Z = 3.0  # one-sided: a proportion's drop beyond 3 standard errors (p < 0.0014)
_class_name = ct.class_name


def _as_float(values: Sequence[Any] | np.ndarray) -> np.ndarray | None:
    try:
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None


def reference_performance(
    labels: Sequence[Any] | np.ndarray,
    predictions: Sequence[Any] | np.ndarray,
    *,
    task: str = "auto",
    positive: str = "1",
    negative: str = "0",
    threshold: float = 0.5,
) -> dict[str, float]:
    """Metrics of ``predictions`` against ``labels`` (rows with a missing side skipped)."""
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    y_num, p_num = _as_float(labels), _as_float(predictions)
    if task == "auto":
        task = ct.infer_task(labels) if y_num is not None else ct.CLASSIFICATION
    if task == "regression":
        if y_num is None or p_num is None:
            raise ValueError("a regression reference needs numeric labels and predictions")
        acc = RegressionAccumulator()
        acc.update(y_num, p_num)
        return acc.metrics()
    if task != "classification":
        raise ValueError(f"unknown task {task!r}")
    truth = [_class_name(v) for v in labels]
    scores = p_num if p_num is not None and ct.is_score(p_num) else None
    if scores is not None:
        predicted = [
            None if not np.isfinite(s) else positive if s >= threshold else negative
            for s in scores.tolist()
        ]
    else:
        predicted = [_class_name(v) for v in predictions]
    classes = sorted({c for c in truth + predicted if c is not None} | {positive, negative})
    code = {c: i for i, c in enumerate(classes)}
    y_true = np.array([-1 if c is None else code[c] for c in truth], dtype=np.int64)
    y_pred = np.array([-1 if c is None else code[c] for c in predicted], dtype=np.int64)
    ok = (y_true >= 0) & (y_pred >= 0)
    binary = len(classes) == 2
    acc_c = ClassificationAccumulator(positive=code[positive] if binary else -1)
    if scores is not None and binary:
        s = scores[ok]
        is_pos = y_true[ok] == code[positive]
        acc_c.update(
            y_true[ok],
            y_pred[ok],
            pos_score=s,
            p_true=np.where(is_pos, s, 1.0 - s),
            confidence=np.maximum(s, 1.0 - s),
        )
    else:
        acc_c.update(y_true[ok], y_pred[ok])
    return acc_c.metrics(classes)


def compare_with_reference(
    window: Mapping[str, float], reference: Mapping[str, float]
) -> dict[str, float]:
    """``{metric: window - reference}`` for the comparable metrics both sides have."""
    out = {}
    for metric in sorted(COMPARED & set(window) & set(reference)):
        a, b = float(window[metric]), float(reference[metric])
        if math.isfinite(a) and math.isfinite(b):
            out[metric] = a - b
    return out


def drop_margin(p: float, n: float, reference_n: float = 0.0, z: float = DROP_Z) -> float:
    """``z`` standard errors of ``window - reference`` for a proportion ``p`` (the
    reference's) at ``n`` window labels and ``reference_n`` reference labels (0: exact).

    >>> round(drop_margin(0.9, 1_000), 4), round(drop_margin(0.9, 1_000, 1_000), 4)
    (0.0285, 0.0402)
    """
    if n <= 0:
        return math.inf
    p = min(max(float(p), 0.0), 1.0)
    var = max(p * (1.0 - p), 1.0 / n)  # never a zero bar at p = 0 or 1
    inv = 1.0 / n + (1.0 / reference_n if reference_n > 0 else 0.0)
    return z * math.sqrt(var * inv)


def drop_bar(
    metric: str,
    delta: Mapping[str, float],
    floor: float,
    *,
    accuracy: float | None = None,
    n: float = 0.0,
    reference_n: float = 0.0,
    z: float = DROP_Z,
) -> float:
    """How much worse than the reference ``metric`` may be in this window: its ``floor``
    (the absolute tolerance) or, for accuracy and error rate with a label count ``n``,
    :func:`drop_margin` at the *reference's* accuracy (``accuracy - delta["accuracy"]``;
    ``accuracy`` is the window's), whichever is larger."""
    bar = float(floor)
    if metric in PROPORTIONS and n > 0:
        if accuracy is None:
            p_ref = 0.5  # the widest binomial bar
        elif "accuracy" in delta:
            p_ref = float(accuracy) - float(delta["accuracy"])
        else:
            p_ref = float(accuracy)
        bar = max(bar, drop_margin(p_ref, n, reference_n, z))
    return bar


def performance_drops(
    delta: Mapping[str, float],
    tolerance: Mapping[str, float],
    *,
    accuracy: float | None = None,
    n: float = 0.0,
    reference_n: float = 0.0,
    z: float = DROP_Z,
) -> dict[str, float]:
    """Metrics of ``delta`` (those named in ``tolerance``) that worsened beyond their
    :func:`drop_bar`."""
    out = {}
    for metric, floor in tolerance.items():
        d = delta.get(metric)
        if d is None:
            continue
        worse = -d if metric in HIGHER_IS_BETTER else abs(d) if metric == "bias" else d
        bar = drop_bar(metric, delta, floor, accuracy=accuracy, n=n, reference_n=reference_n, z=z)
        if worse > bar:
            out[metric] = d
    return out
