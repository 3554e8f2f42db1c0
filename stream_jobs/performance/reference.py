"""Reference performance: the model's metrics on the labelled data it was profiled from,
and how a production window compares with them.

:func:`reference_performance` computes, from a label column and a prediction column, the
same metrics (same accumulators, same names) a joined production window reports, so that
``window - reference`` compares like with like. The prediction column may hold classes,
or — for a binary model — the positive-class score, thresholded at ``threshold``.

:func:`compare_with_reference` gives ``{metric: window - reference}`` for the metrics both
have, and :func:`performance_drops` the metrics that moved the *bad* way by more than
their tolerance (accuracy falling, log loss or MAE rising — improvements never count).

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from stream_jobs.performance.classification import ClassificationAccumulator
from stream_jobs.performance.regression import RegressionAccumulator

HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
LOWER_IS_BETTER = frozenset({"error_rate", "log_loss", "calibration_error", "mae", "rmse", "mape"})
PROPORTIONS = frozenset({"accuracy", "error_rate"})
COMPARED = HIGHER_IS_BETTER | LOWER_IS_BETTER | {"bias"}
REGRESSION_MIN_UNIQUE = 20  # task="auto": a numeric label with more values is a regression


def _class_name(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return None
        if float(v).is_integer():
            return str(int(v))
    if isinstance(v, bool | np.bool_):
        return str(int(v))
    return str(v)


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
        many = y_num is not None and np.unique(y_num[np.isfinite(y_num)]).size > (
            REGRESSION_MIN_UNIQUE
        )
        task = "regression" if many and p_num is not None else "classification"
    if task == "regression":
        if y_num is None or p_num is None:
            raise ValueError("a regression reference needs numeric labels and predictions")
        acc = RegressionAccumulator()
        acc.update(y_num, p_num)
        return acc.metrics()
    if task != "classification":
        raise ValueError(f"unknown task {task!r}")
    truth = [_class_name(v) for v in labels]
    finite = p_num[np.isfinite(p_num)] if p_num is not None else np.empty(0)
    scores = (
        p_num
        if p_num is not None
        and finite.size
        and finite.min() >= 0.0
        and finite.max() <= 1.0
        and not np.all(np.mod(finite, 1.0) == 0)
        else None
    )
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


def performance_drops(
    delta: Mapping[str, float],
    tolerance: Mapping[str, float],
    *,
    accuracy: float | None = None,
    n: float = 0.0,
    z: float = 1.645,
) -> dict[str, float]:
    """Metrics of ``delta`` that worsened by more than their ``tolerance`` (absolute).

    Given the window's ``accuracy`` and label count ``n``, an accuracy or error-rate drop
    must also clear the tolerance significantly: ``drop - tolerance > z * se`` with
    ``se = sqrt(p (1 - p) / n)`` (one-sided, p < 0.05 at the default ``z``), so a small
    window's noise does not page anyone.
    """
    out = {}
    for metric, bound in tolerance.items():
        d = delta.get(metric)
        if d is None:
            continue
        worse = -d if metric in HIGHER_IS_BETTER else abs(d) if metric == "bias" else d
        margin = 0.0
        if metric in PROPORTIONS and accuracy is not None and n > 0:
            p = min(max(float(accuracy), 0.0), 1.0)
            margin = z * math.sqrt(max(p * (1.0 - p), 1.0 / n) / n)
        if worse - bound > margin:
            out[metric] = d
    return out
