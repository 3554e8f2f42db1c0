"""Build ``ReferenceProfile`` records (Avro dicts) from training data or a pinned window.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> prof = build_profile("churn", "1", numeric={"age": rng.normal(40, 10, 5_000)},
...                      categorical={"plan": ["a", "b", None, "a"]},
...                      prediction=rng.random(5_000), source="train.csv")
>>> [(c["name"], c["kind"], c["count"]) for c in prof["features"]]
[('age', 'numeric', 5000), ('plan', 'categorical', 4)]
>>> age, plan = prof["features"]
>>> round(age["mean"]), plan["categories"], plan["missing"]
(40, {'a': 2, 'b': 1}, 1)
>>> flag = build_profile("m", numeric={"flag": np.array([True, False, True])})["features"][0]
>>> flag["kind"], flag["categories"]
('categorical', {'true': 2, 'false': 1})
>>> stats = {"model": "m", "model_version": "1", "window_start_ms": 60_000, "count": 3,
...          "features": [{"name": "c", "kind": "categorical", "count": 3, "missing": 0,
...                        "categories": {"a": 3}}]}
>>> pinned = profile_from_window(stats)
>>> pinned["source"], pinned["features"][0]["unique"]
('window:60000', 1)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from datasketches import kll_doubles_sketch

from schemas.column_types import python_text
from schemas.columnar import CategoricalArray
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial

LOW_CARDINALITY = 20  # numeric columns with at most this many values also keep value counts

Values = np.ndarray | Sequence[Any] | CategoricalArray


def _num_key(v: float) -> str:
    return repr(float(v))


def numeric_column_profile(name: str, values: Any, k: int = 400) -> dict[str, Any]:
    """ColumnProfile of a numeric column (NaN / None = missing)."""
    if not isinstance(values, np.ndarray):
        values = [np.nan if v is None else v for v in values]
    x = np.asarray(values, dtype=np.float64)
    p = NumericPartial(k)
    p.update(x)
    finite = x[np.isfinite(x)]
    uniq, counts = np.unique(finite, return_counts=True)
    cats = (
        {_num_key(u): int(c) for u, c in zip(uniq.tolist(), counts.tolist(), strict=True)}
        if uniq.size <= LOW_CARDINALITY
        else {}
    )
    return {
        "name": name,
        "kind": "numeric",
        "count": p.count,
        "missing": p.missing,
        "mean": p.mean if p.n else None,
        "std": p.std,
        "min": p.min if p.n else None,
        "max": p.max if p.n else None,
        "unique": int(uniq.size),
        "kll_sketch": p.sketch.serialize() if p.n else None,
        "categories": cats,
    }


def categorical_column_profile(name: str, values: Values, cap: int = 100) -> dict[str, Any]:
    """ColumnProfile of a categorical column (None = missing), categories capped."""
    if not isinstance(values, CategoricalArray):
        values = CategoricalArray.from_values(
            [None if v is None or v != v else python_text(v) for v in values]
        )
    p = CategoricalPartial(cap)
    p.update(values)
    return {
        "name": name,
        "kind": "categorical",
        "count": p.count,
        "missing": p.missing,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "unique": int(np.unique(values.codes[values.codes >= 0]).size),
        "kll_sketch": None,
        "categories": dict(p.counts),
    }


def _is_numeric(values: Values) -> bool:
    """Numbers are numeric; booleans are categorical (:mod:`schemas.column_types`)."""
    if isinstance(values, CategoricalArray):
        return False
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "fiu"
    return all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
    )


def column_profile(name: str, values: Values, k: int = 400, cap: int = 100) -> dict[str, Any]:
    """Numeric or categorical profile, by the values' type."""
    if _is_numeric(values):
        return numeric_column_profile(name, values, k)
    return categorical_column_profile(name, values, cap)


def build_profile(
    model: str,
    version: str = "",
    numeric: Mapping[str, Any] | None = None,
    categorical: Mapping[str, Values] | None = None,
    prediction: Values | None = None,
    label: Values | None = None,
    source: str = "",
    k: int = 400,
    cap: int = 100,
    created_at_ms: int | None = None,
    performance: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A ``ReferenceProfile`` record; ``version=""`` applies to every version of the model.

    ``performance``: the model's metrics on this data (see
    :func:`stream_jobs.performance.reference.reference_performance`), which production
    windows are compared with once their labels join.
    """
    numeric = dict(numeric or {})
    categorical = dict(categorical or {})
    for n in [n for n, v in numeric.items() if not _is_numeric(v)]:  # booleans
        categorical[n] = numeric.pop(n)
    features = [numeric_column_profile(n, v, k) for n, v in numeric.items()]
    features += [categorical_column_profile(n, v, cap) for n, v in categorical.items()]
    return {
        "model": model,
        "model_version": version,
        "created_at_ms": int(time.time() * 1000) if created_at_ms is None else created_at_ms,
        "source": source,
        "features": features,
        "prediction": None
        if prediction is None
        else column_profile("prediction", prediction, k, cap),
        "label": None if label is None else column_profile("label", label, k, cap),
        "performance": {k_: float(v) for k_, v in (performance or {}).items()},
    }


def _from_column_window(cw: Mapping[str, Any]) -> dict[str, Any]:
    sk = cw.get("kll_sketch")
    unique = len(cw.get("categories") or {})
    if cw["kind"] == "numeric" and sk:
        # distinct retained sketch items: a lower bound of the distinct values
        unique = len({v for v, _ in kll_doubles_sketch.deserialize(sk)})
    return {
        "name": cw["name"],
        "kind": "numeric" if cw["kind"] == "numeric" else "categorical",
        "count": cw["count"],
        "missing": cw["missing"],
        "mean": cw.get("mean"),
        "std": cw.get("std"),
        "min": cw.get("min"),
        "max": cw.get("max"),
        "unique": unique,
        "kll_sketch": sk,
        "categories": dict(cw.get("categories") or {}),
    }


def profile_from_window(
    stats: Mapping[str, Any], created_at_ms: int | None = None
) -> dict[str, Any]:
    """Pin a closed production window (a ``WindowStats`` record) as the reference.

    Columns that arrived with an unexpected kind appear twice in a window; the first
    entry of each name wins.
    """
    seen: dict[str, dict[str, Any]] = {}
    for cw in stats["features"]:
        seen.setdefault(cw["name"], _from_column_window(cw))
    return {
        "model": stats["model"],
        "model_version": stats["model_version"],
        "created_at_ms": int(time.time() * 1000) if created_at_ms is None else created_at_ms,
        "source": f"window:{stats['window_start_ms']}",
        "features": list(seen.values()),
        "prediction": _from_column_window(stats["prediction"]) if stats.get("prediction") else None,
        "label": None if not stats.get("label") else _from_column_window(stats["label"]),
        "performance": dict(stats.get("performance") or {}),
    }
