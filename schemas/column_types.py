"""One column-type inference for every producer of features, labels and predictions.

The reference build (``modelwatch reference build``), dataset replay (``modelwatch
replay``), the backtest and the publishing SDK all type a column with these rules, so a
column is the same kind of feature in the reference profile and in the traffic:

=====================================================  ===========================  ==========
column (Arrow type, or Python values for the SDK)      feature                      values
=====================================================  ===========================  ==========
integer, float, decimal                                numeric                      float64
boolean (``True/False``, ``true/false`` in a CSV,      categorical                  ``"true"``
bool dtypes, Python ``bool``)                                                       ``"false"``
string holding only true/false spellings               categorical                  same
any other string, dictionary, date, …                  categorical                  ``str(v)``
=====================================================  ===========================  ==========

**0/1 integer columns stay numeric features** (mean, quantiles and the numeric drift tests
describe a binary column well, and a 0/1 column cannot be told from a count on one
chunk); a column of booleans is categorical. What decides is the column's *type*, never
the values one chunk happens to hold, so every chunk of a file types alike.

**Labels and predictions** (:func:`infer_task`): a label column is a *classification*
target when it is boolean or text, or numeric with at most two distinct values (0/1),
or integer-valued with at most :data:`MAX_CLASSES` distinct values; a *regression* target
needs a continuous one (non-integer values, or more distinct integers). In a
classification, class names are :func:`class_names`: numbers print as integers where
they are (``1.0`` → ``"1"``), booleans and true/false spellings are ``"1"`` / ``"0"``
(so the default positive class ``"1"`` works for all three), other text is kept.

>>> import pyarrow as pa
>>> feature_values(pa.array([True, False, None]))
['true', 'false', None]
>>> feature_values(pa.array(["True", "false", None]))
['true', 'false', None]
>>> feature_values(pa.array([0, 1, None])).tolist()
[0.0, 1.0, nan]
>>> infer_task(pa.array([0, 1, 1])), infer_task(pa.array([1.5, 2.25, 3.0]))
('classification', 'regression')
>>> infer_task(pa.array(["yes", "no"])), class_names(pa.array([1.0, 0.0, None, True]))
('classification', ['1', '0', None, '1'])
>>> python_kind(True), python_kind(3), python_kind("a")
('categorical', 'numeric', 'categorical')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pyarrow loads on first use: the worker needs only the Python rules
    import pyarrow as pa

NUMERIC, CATEGORICAL = "numeric", "categorical"
CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = ("auto", CLASSIFICATION, REGRESSION)
MAX_CLASSES = 20  # an integer-valued label with more distinct values is a regression target
TRUE_TEXT = frozenset({"true", "True", "TRUE"})
FALSE_TEXT = frozenset({"false", "False", "FALSE"})
BOOL_TEXT = TRUE_TEXT | FALSE_TEXT


def _is_arrow(x: Any) -> bool:
    return type(x).__module__.startswith("pyarrow")


def _plain(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col


def is_numeric_type(t: pa.DataType) -> bool:
    """Integers, floats and decimals — *not* booleans."""
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _is_text(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _bool_text(col: pa.Array) -> bool:
    """A text column whose non-null values are all true/false spellings."""
    import pyarrow.compute as pc

    if not _is_text(col.type) or col.null_count == len(col):
        return False
    return set(pc.unique(col.drop_null()).to_pylist()) <= BOOL_TEXT


def feature_kind(col: pa.Array | pa.ChunkedArray) -> str:
    """``"numeric"`` or ``"categorical"`` by the column's type."""
    return NUMERIC if is_numeric_type(_plain(col).type) else CATEGORICAL


def floats(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric (or boolean) column as float64, null → NaN."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = _plain(col)
    as_float = pc.cast(col, pa.float64())
    out = np.asarray(pc.fill_null(as_float, np.nan).to_numpy(zero_copy_only=False), dtype="<f8")
    return out if out.flags.writeable else out.copy()  # sketches reject read-only buffers


def _text(col: pa.Array) -> pa.Array:
    """Strings of a categorical column: booleans and true/false spellings lower-cased."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_boolean(col.type):
        return pc.if_else(col, "true", "false")
    if _bool_text(col):
        return pc.utf8_lower(col)
    return col if _is_text(col.type) else pc.cast(col, pa.string())


def categorical_array(col: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    """A categorical feature column, dictionary-encoded (nulls stay null)."""
    import pyarrow.compute as pc

    return pc.dictionary_encode(_text(_plain(col)))


def feature_values(col: pa.Array | pa.ChunkedArray) -> np.ndarray | list[str | None]:
    """A feature column typed by the rules above: float64 array or list of strings."""
    col = _plain(col)
    if is_numeric_type(col.type):
        return floats(col)
    return _text(col).to_pylist()


def python_kind(value: Any) -> str:
    """Kind of one Python value an SDK caller passed (``bool`` is categorical)."""
    if isinstance(value, bool | np.bool_):
        return CATEGORICAL
    if isinstance(value, int | float | np.integer | np.floating):
        return NUMERIC
    return CATEGORICAL


def python_text(value: Any) -> str | None:
    """A categorical value as text (``True`` → ``"true"``)."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, str):
        return value.lower() if value in BOOL_TEXT else value
    return str(value)


def class_name(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return None
        if float(v).is_integer():
            return str(int(v))
    if isinstance(v, str):
        if v in TRUE_TEXT:
            return "1"
        if v in FALSE_TEXT:
            return "0"
    return str(v)


def class_names(values: pa.Array | pa.ChunkedArray | Iterable[Any]) -> list[str | None]:
    """Class names of a label or class-prediction column (see the module doc)."""

    if _is_arrow(values):
        values = _plain(values).to_pylist()
    return [class_name(v) for v in values]


def _task_of_numbers(x: np.ndarray) -> str:
    finite = x[np.isfinite(x)]
    distinct = np.unique(finite)
    if distinct.size <= 2:
        return CLASSIFICATION
    integral = bool(np.all(np.mod(distinct, 1.0) == 0))
    return CLASSIFICATION if integral and distinct.size <= MAX_CLASSES else REGRESSION


def infer_task(labels: pa.Array | pa.ChunkedArray | np.ndarray | Iterable[Any]) -> str:
    """``"classification"`` or ``"regression"`` from a label column (rules above)."""

    if _is_arrow(labels):
        col = _plain(labels)
        if is_numeric_type(col.type):
            return _task_of_numbers(floats(col))
        return CLASSIFICATION
    if isinstance(labels, np.ndarray) and labels.dtype.kind in "fiu":
        return _task_of_numbers(labels.astype(np.float64))
    items = list(labels)
    if all(
        v is None
        or (
            isinstance(v, int | float | np.integer | np.floating)
            and not isinstance(v, bool | np.bool_)
        )
        for v in items
    ):
        return _task_of_numbers(np.array([np.nan if v is None else v for v in items], float))
    return CLASSIFICATION


def is_score(values: np.ndarray) -> bool:
    """A numeric prediction column of a classifier holds scores (not class numbers) when
    its values lie in [0, 1] and are not all integers."""
    finite = values[np.isfinite(values)]
    return bool(
        finite.size
        and finite.min() >= 0.0
        and finite.max() <= 1.0
        and not np.all(np.mod(finite, 1.0) == 0)
    )


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    return task
