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

Booleans are categorical features ``"true"``/``"false"`` (:mod:`schemas.column_types`),
wherever the caller put them: a ``bool`` in the numeric map moves to the categorical one
(decided on the batch's first row, so no per-value check slows the common case).

>>> rows = [("a", 1, {"x": 1.0, "vip": True}, {"c": False}, None, None, None, 1.0, "ok",
...          None, 0, 0, None)]
>>> cols = prediction_rows_to_columns("m", "1", rows)
>>> sorted(cols.numeric), cols.categorical["vip"].values(), cols.categorical["c"].values()
(['x'], ['true'], ['false'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from schemas.column_types import python_text
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


def _union(dicts: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(d))
    return list(seen)


def _value_tuples(dicts: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Key names and one value tuple per dict (None where a dict lacks a key).

    Fast path: every dict has exactly the first dict's keys (any order) — one C-level
    ``itemgetter`` call per row. Otherwise the union of keys with ``get``.
    """
    keys = list(dicts[0])
    k = len(keys)
    if k and all(len(d) == k for d in dicts):
        getter = itemgetter(*keys)
        try:
            values = [getter(d) for d in dicts]
        except KeyError:
            pass
        else:
            return keys, values if k > 1 else [(v,) for v in values]
    keys = _union(dicts)
    return keys, [tuple(d.get(key) for key in keys) for d in dicts]


def _float_block(dicts: Sequence[Mapping[str, Any]]) -> tuple[list[str], np.ndarray]:
    """Names and an (n, k) float matrix (None → NaN) from dicts of numbers."""
    if not dicts or not any(dicts):
        return [], np.empty((len(dicts), 0), dtype=F8)
    keys, values = _value_tuples(dicts)
    return keys, np.array(values, dtype=F8).reshape(len(dicts), len(keys))


def _cat_columns(dicts: Sequence[Mapping[str, Any]]) -> dict[str, CategoricalArray]:
    """Dictionary-encoded columns from dicts of strings.

    Whole rows are encoded first (one dict lookup per row, rows repeat a lot), then each
    distinct row is split into its columns' codes with numpy.
    """
    if not dicts or not any(dicts):
        return {}
    keys, values = _value_tuples(dicts)
    combos: dict[tuple[Any, ...], int] = {}
    row_codes = np.fromiter(
        (combos.setdefault(v, len(combos)) for v in values), dtype=np.int64, count=len(values)
    )
    distinct = list(combos)
    out: dict[str, CategoricalArray] = {}
    for j, key in enumerate(keys):
        column = CategoricalArray.from_values(
            [python_text(c[j]) for c in distinct]  # distinct rows only: True/"True" → "true"
        )
        out[key] = CategoricalArray(column.dictionary, column.codes[row_codes])
    return out


def event_features(
    numeric: Mapping[str, Any] | None, categorical: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The feature maps of one ``PredictionEvent`` under the same rules as a batch:
    booleans (wherever given) become categorical ``"true"``/``"false"``.

    >>> event_features({"x": 1.5, "vip": True}, {"c": "a", "flag": "False"})
    ({'x': 1.5}, {'c': 'a', 'flag': 'false', 'vip': 'true'})
    """
    num = dict(numeric or {})
    cat = {k: python_text(v) for k, v in (categorical or {}).items()}
    for k in [k for k, v in num.items() if isinstance(v, bool | np.bool_)]:
        cat[k] = python_text(num.pop(k))
    return num, cat


def _split_booleans(
    nums: Sequence[Mapping[str, Any]], cats: Sequence[Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Move numeric-map keys holding a ``bool`` in the first row to the categorical maps."""
    first = nums[0] if nums else _EMPTY
    moved = [k for k, v in first.items() if isinstance(v, bool | np.bool_)]
    if not moved:
        return list(nums), list(cats)
    new_nums = [{k: v for k, v in d.items() if k not in moved} for d in nums]
    new_cats = [{**c, **{k: d.get(k) for k in moved}} for d, c in zip(nums, cats, strict=True)]
    return new_nums, new_cats


def prediction_rows_to_columns(
    model: str, version: str, rows: Sequence[PredRow]
) -> PredictionColumns:
    """Columns from rows; raises ``ValueError``/``TypeError`` on malformed values."""
    ids, times, nums, cats, scores, classes, probs, lat, status, errs, req, resp, segs = zip(
        *rows, strict=True
    )
    num_maps, cat_maps = _split_booleans([d or _EMPTY for d in nums], [d or _EMPTY for d in cats])
    num_names, num_block = _float_block(num_maps)
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
        categorical=_cat_columns(cat_maps),
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
