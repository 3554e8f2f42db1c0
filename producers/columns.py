"""Vectorised slicing and concatenation of columnar batches (no Kafka).

The SDK routes a columnar chunk to partitions with :func:`take_predictions` and joins the
pieces bound for one partition with :func:`concat_predictions`. Categorical dictionaries
are merged by remapping codes, never by touching values one by one.

>>> import numpy as np
>>> from schemas.columnar import CategoricalArray, PredictionColumns
>>> a = PredictionColumns("m", "1", ["a", "b"], np.array([1, 2]), np.array([5.0, 6.0]),
...     np.zeros(2, dtype="i1"), numeric={"x": np.array([1.0, 2.0])},
...     categorical={"c": CategoricalArray(["red"], np.array([0, -1], dtype="i4"))})
>>> b = PredictionColumns("m", "1", ["c"], np.array([3]), np.array([7.0]),
...     np.zeros(1, dtype="i1"), numeric={"y": np.array([9.0])},
...     categorical={"c": CategoricalArray(["blue"], np.array([0], dtype="i4"))})
>>> both = concat_predictions([a, b])
>>> both.prediction_ids, both.categorical["c"].values(), both.numeric["y"].tolist()
(['a', 'b', 'c'], ['red', None, 'blue'], [nan, nan, 9.0])
>>> take_predictions(both, np.array([2, 0])).prediction_ids
['c', 'a']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns

F8 = np.dtype("<f8")
I4 = np.dtype("<i4")
I1 = np.dtype("i1")
I8 = np.dtype("<i8")

T = TypeVar("T")


def _take_ids(ids: list[str], index: np.ndarray) -> list[str]:
    return [ids[i] for i in index.tolist()]


def take_predictions(cols: PredictionColumns, index: np.ndarray) -> PredictionColumns:
    """Rows ``index`` of ``cols`` (a new object; arrays are copies)."""

    def opt(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[index]

    return PredictionColumns(
        model=cols.model,
        model_version=cols.model_version,
        prediction_ids=_take_ids(cols.prediction_ids, index),
        event_time_ms=cols.event_time_ms[index],
        latency_ms=cols.latency_ms[index],
        status=cols.status[index],
        numeric={k: v[index] for k, v in cols.numeric.items()},
        categorical={k: v.take(index) for k, v in cols.categorical.items()},
        score=opt(cols.score),
        predicted_class=None if cols.predicted_class is None else cols.predicted_class.take(index),
        class_names=list(cols.class_names),
        class_probabilities=opt(cols.class_probabilities),
        error_type=None if cols.error_type is None else cols.error_type.take(index),
        request_bytes=opt(cols.request_bytes),
        response_bytes=opt(cols.response_bytes),
        segments={k: v.take(index) for k, v in cols.segments.items()},
    )


def take_labels(cols: LabelColumns, index: np.ndarray) -> LabelColumns:
    """Rows ``index`` of label columns."""
    return LabelColumns(
        model=cols.model,
        prediction_ids=_take_ids(cols.prediction_ids, index),
        event_time_ms=cols.event_time_ms[index],
        label_value=None if cols.label_value is None else cols.label_value[index],
        label_class=None if cols.label_class is None else cols.label_class.take(index),
    )


def concat_categorical(
    parts: Sequence[CategoricalArray | None], sizes: Sequence[int]
) -> CategoricalArray:
    """Concatenate dictionary-encoded columns (None = all missing), merging dictionaries.

    >>> a = CategoricalArray(["x", "y"], np.array([1, 0], dtype="i4"))
    >>> b = CategoricalArray(["y", "z"], np.array([1, -1, 0], dtype="i4"))
    >>> concat_categorical([a, None, b], [2, 1, 3]).values()
    ['y', 'x', None, 'z', None, 'y']
    """
    present = [p for p in parts if p is not None]
    first = present[0].dictionary if present else []
    if all(p.dictionary == first for p in present):
        codes = [
            np.full(n, -1, dtype=I4) if p is None else p.codes.astype(I4, copy=False)
            for p, n in zip(parts, sizes, strict=True)
        ]
        return CategoricalArray(list(first), np.concatenate(codes) if codes else np.empty(0, I4))
    index: dict[str, int] = {}
    out: list[np.ndarray] = []
    for p, n in zip(parts, sizes, strict=True):
        if p is None:
            out.append(np.full(n, -1, dtype=I4))
            continue
        # remap[-1] (the last slot) stays -1 for missing values
        remap = np.array([index.setdefault(v, len(index)) for v in p.dictionary] + [-1], dtype=I4)
        out.append(remap[p.codes])
    return CategoricalArray(list(index), np.concatenate(out))


def _union_keys(dicts: Sequence[dict[str, T]]) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(d))
    return list(seen)


def _concat_opt(
    parts: Sequence[np.ndarray | None], sizes: Sequence[int], fill: Callable[[int], np.ndarray]
) -> np.ndarray | None:
    if all(p is None for p in parts):
        return None
    return np.concatenate([fill(n) if p is None else p for p, n in zip(parts, sizes, strict=True)])


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan, dtype=F8)


def _zeros_i4(n: int) -> np.ndarray:
    return np.zeros(n, dtype=I4)


def concat_predictions(parts: Sequence[PredictionColumns]) -> PredictionColumns:
    """One column set from several of the same model version (missing columns filled)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    sizes = [p.n for p in parts]
    numeric_keys = _union_keys([p.numeric for p in parts])
    cat_keys = _union_keys([p.categorical for p in parts])
    seg_keys = _union_keys([p.segments for p in parts])
    class_names = _union_keys([dict.fromkeys(p.class_names) for p in parts])
    probs: np.ndarray | None = None
    if class_names:
        blocks = []
        for p in parts:
            block = np.full((p.n, len(class_names)), np.nan, dtype=F8)
            if p.class_probabilities is not None:
                cols_at = [class_names.index(c) for c in p.class_names]
                block[:, cols_at] = p.class_probabilities
            blocks.append(block)
        probs = np.concatenate(blocks)
    pcs = [p.predicted_class for p in parts]
    ets = [p.error_type for p in parts]
    ids: list[str] = []
    for p in parts:
        ids.extend(p.prediction_ids)
    return PredictionColumns(
        model=first.model,
        model_version=first.model_version,
        prediction_ids=ids,
        event_time_ms=np.concatenate([p.event_time_ms for p in parts]).astype(I8, copy=False),
        latency_ms=np.concatenate([p.latency_ms for p in parts]).astype(F8, copy=False),
        status=np.concatenate([p.status for p in parts]).astype(I1, copy=False),
        numeric={
            k: np.concatenate([p.numeric.get(k, _nan(p.n)) for p in parts]) for k in numeric_keys
        },
        categorical={
            k: concat_categorical([p.categorical.get(k) for p in parts], sizes) for k in cat_keys
        },
        score=_concat_opt([p.score for p in parts], sizes, _nan),
        predicted_class=None if all(c is None for c in pcs) else concat_categorical(pcs, sizes),
        class_names=class_names,
        class_probabilities=probs,
        error_type=None if all(e is None for e in ets) else concat_categorical(ets, sizes),
        request_bytes=_concat_opt([p.request_bytes for p in parts], sizes, _zeros_i4),
        response_bytes=_concat_opt([p.response_bytes for p in parts], sizes, _zeros_i4),
        segments={
            k: concat_categorical([p.segments.get(k) for p in parts], sizes) for k in seg_keys
        },
    )


def concat_labels(parts: Sequence[LabelColumns]) -> LabelColumns:
    """One label column set from several (label_value / label_class filled when absent)."""
    if len(parts) == 1:
        return parts[0]
    sizes = [p.n for p in parts]
    ids: list[str] = []
    for p in parts:
        ids.extend(p.prediction_ids)
    classes = [p.label_class for p in parts]
    return LabelColumns(
        model=parts[0].model,
        prediction_ids=ids,
        event_time_ms=np.concatenate([p.event_time_ms for p in parts]).astype(I8, copy=False),
        label_value=_concat_opt([p.label_value for p in parts], sizes, _nan),
        label_class=None if all(c is None for c in classes) else concat_categorical(classes, sizes),
    )


def split_by_partition(partition: np.ndarray, partitions: int) -> list[np.ndarray]:
    """Row indices per partition, in input order: ``result[p]`` are rows bound for ``p``.

    >>> [a.tolist() for a in split_by_partition(np.array([1, 0, 1, 3]), 4)]
    [[1], [0, 2], [], [3]]
    """
    order = np.argsort(partition, kind="stable")
    bounds = np.searchsorted(partition[order], np.arange(partitions + 1))
    return [order[bounds[p] : bounds[p + 1]] for p in range(partitions)]
