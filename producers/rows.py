"""Turn buffered per-call rows into columnar batches (vectorised where the rows agree).

A row is what :meth:`producers.sdk.ModelwatchPublisher.publish_prediction` stores: a tuple
in :data:`PRED_FIELDS` order. The common case — every row has the same feature names in the
same order — converts with one ``np.array`` call per block of columns.

>>> rows = [
...     ("a", 1, {"x": 1.0, "y": None}, {"c": "red"}, 0.9, "yes", {"no": 0.1, "yes": 0.9},
...      12.0, "ok", None, 10, 20, {"region": "eu"}),
...     ("b", 2, {"x": 3.0, "y": 4.0}, {"c": None}, 0.2, "no", {"no": 0.8, "yes": 0.2},
...      30.0, "error", "Timeout", 11, 21, {"region": "us"}),
... ]
>>> cols = prediction_rows_to_columns("m", "1", rows)
>>> cols.numeric["y"].tolist(), cols.categorical["c"].values(), cols.status.tolist()
([nan, 4.0], ['red', None], [0, 1])
>>> cols.class_names, cols.class_probabilities[:, 1].tolist(), cols.error_type.values()
(['no', 'yes'], [0.9, 0.2], [None, 'Timeout'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from schemas.columnar import STATUS_CODES, CategoricalArray, LabelColumns, PredictionColumns

F8 = np.dtype("<f8")
I4 = np.dtype("<i4")
I1 = np.dtype("i1")
I8 = np.dtype("<i8")

PRED_FIELDS = (
    "prediction_id",
    "event_time_ms",
    "numeric",
    "categorical",
    "score",
    "predicted_class",
    "class_probabilities",
    "latency_ms",
    "status",
    "error_type",
    "request_bytes",
    "response_bytes",
    "segments",
)
PredRow = tuple[
    str,
    int,
    Mapping[str, float | None] | None,
    Mapping[str, str | None] | None,
    float | None,
    str | None,
    Mapping[str, float] | None,
    float,
    str,
    str | None,
    int,
    int,
    Mapping[str, str] | None,
]
LabelRow = tuple[str, int, float | None, str | None]

_EMPTY: Mapping[str, Any] = {}


def _same_keys(dicts: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The shared key list when every dict has the same keys in the same order, else None."""
    first = tuple(dicts[0])
    for d in dicts:
        if tuple(d) != first:
            return None
    return list(first)


def _float_block(dicts: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Names and an (n, k) float matrix (None → NaN) from dicts of numbers."""
    if not dicts:
        return [], np.empty((0, 0), dtype=F8)
    keys = _same_keys(dicts)
    if keys is not None:
        if not keys:
            return [], np.empty((len(dicts), 0), dtype=F8)
        return keys, np.array([tuple(d.values()) for d in dicts], dtype=F8).reshape(
            len(dicts), len(keys)
        )
    union: dict[str, None] = {}
    for d in dicts:
        union.update(dict.fromkeys(d))
    names = list(union)
    return names, np.array([[d.get(k) for k in names] for d in dicts], dtype=F8).reshape(
        len(dicts), len(names)
    )


def _cat_columns(dicts: Sequence[Mapping[str, Any]]) -> dict[str, CategoricalArray]:
    union: dict[str, None] = {}
    keys = _same_keys(dicts) if dicts else []
    if keys is None:
        for d in dicts:
            union.update(dict.fromkeys(d))
        keys = list(union)
    return {k: CategoricalArray.from_values([d.get(k) for d in dicts]) for k in keys}


def prediction_rows_to_columns(
    model: str, version: str, rows: Sequence[PredRow]
) -> PredictionColumns:
    """Columns from rows; raises ``ValueError``/``TypeError`` on malformed values."""
    ids, times, nums, cats, scores, classes, probs, lat, status, errs, req, resp, segs = zip(
        *rows, strict=True
    )
    num_names, num_block = _float_block([d or _EMPTY for d in nums])
    prob_dicts = [d or _EMPTY for d in probs]
    class_names, prob_block = _float_block(prob_dicts)
    has_score = any(s is not None for s in scores)
    has_class = any(c is not None for c in classes)
    has_err = any(e is not None for e in errs)
    return PredictionColumns(
        model=model,
        model_version=version,
        prediction_ids=list(ids),
        event_time_ms=np.array(times, dtype=I8),
        latency_ms=np.array(lat, dtype=F8),
        status=np.array([STATUS_CODES[s] for s in status], dtype=I1),
        numeric={k: np.ascontiguousarray(num_block[:, j]) for j, k in enumerate(num_names)},
        categorical=_cat_columns([d or _EMPTY for d in cats]),
        score=np.array(scores, dtype=F8) if has_score else None,
        predicted_class=CategoricalArray.from_values(classes) if has_class else None,
        class_names=class_names,
        class_probabilities=prob_block if class_names else None,
        error_type=CategoricalArray.from_values(errs) if has_err else None,
        request_bytes=np.array(req, dtype=I4),
        response_bytes=np.array(resp, dtype=I4),
        segments=_cat_columns([d or _EMPTY for d in segs]),
    )


def label_rows_to_columns(model: str, rows: Sequence[LabelRow]) -> LabelColumns:
    """Label columns from ``(prediction_id, event_time_ms, label_value, label_class)`` rows.

    >>> label_rows_to_columns("m", [("a", 1, 1.0, "yes"), ("b", 2, None, "no")]).label_value
    array([ 1., nan])
    """
    ids, times, values, classes = zip(*rows, strict=True)
    has_value = any(v is not None for v in values)
    has_class = any(c is not None for c in classes)
    return LabelColumns(
        model=model,
        prediction_ids=list(ids),
        event_time_ms=np.array(times, dtype=I8),
        label_value=np.array(values, dtype=F8) if has_value else None,
        label_class=CategoricalArray.from_values(classes) if has_class else None,
    )
