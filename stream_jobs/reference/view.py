"""Parsed, query-ready view of a ``ReferenceProfile`` record (sketches deserialized once).

>>> import numpy as np
>>> from stream_jobs.reference.profile import build_profile
>>> ref = ReferenceView(build_profile("m", "", numeric={"x": np.arange(1000.0)},
...                                   categorical={"c": ["a", "b"]}))
>>> ref.columns["x"].kind, round(float(ref.columns["x"].cdf(np.array([499.5]))[0]), 2)
('numeric', 0.5)
>>> spec = ref.partial_spec(kll_k=200, category_cap=100)
>>> spec.ranges["x"], sorted(spec.known["c"]), spec.expected["c"]
((0.0, 999.0), ['a', 'b'], 'categorical')
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np
from datasketches import kll_doubles_sketch

from stream_jobs.reference.kll_check import check_kll
from stream_jobs.reference.kll_view import SortedView
from stream_jobs.windows.categorical import OTHER
from stream_jobs.windows.spec import PREDICTION, PartialSpec


class ReferenceColumn:
    """One column of a reference profile."""

    def __init__(self, rec: Mapping[str, Any]) -> None:
        self.record = rec
        self.name: str = rec["name"]
        self.kind: str = str(rec["kind"])
        self.count: int = int(rec["count"])
        self.missing: int = int(rec["missing"])
        self.mean: float | None = rec.get("mean")
        self.std: float | None = rec.get("std")
        self.min: float | None = rec.get("min")
        self.max: float | None = rec.get("max")
        self.unique: int = int(rec.get("unique") or 0)
        raw = rec.get("kll_sketch")
        if raw:
            check_kll(raw)  # deserialize trusts its input: corrupt bytes can crash the process
        self.sketch = kll_doubles_sketch.deserialize(raw) if raw else None
        self.categories: dict[str, int] = dict(rec.get("categories") or {})

    @property
    def n(self) -> int:
        """Non-missing values."""
        return self.count - self.missing

    @property
    def missing_ratio(self) -> float:
        return self.missing / self.count if self.count else 0.0

    @property
    def capped(self) -> bool:
        """True when rare categories were folded into ``__other__`` (unseen is unknowable)."""
        return OTHER in self.categories

    @cached_property
    def view(self) -> SortedView | None:
        """The sketch's sorted items and cumulative weights, built once per reference."""
        return None if self.sketch is None else SortedView(self.sketch)

    @property
    def support(self) -> np.ndarray:
        """Sorted distinct items retained by the sketch (the points where its CDF steps)."""
        return np.empty(0) if self.view is None else self.view.support

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """P(X <= x) at sorted distinct ``points``."""
        if self.view is None:
            return np.zeros(points.size)
        return self.view.cdf(points)


class ReferenceView:
    """A whole reference: ``columns`` by name, plus ``prediction`` and ``label``."""

    def __init__(self, rec: Mapping[str, Any]) -> None:
        self.record = rec
        self.model: str = rec["model"]
        self.model_version: str = rec.get("model_version", "")
        self.source: str = rec.get("source", "")
        self.columns: dict[str, ReferenceColumn] = {
            c["name"]: ReferenceColumn(c) for c in rec.get("features") or []
        }
        self.prediction = ReferenceColumn(rec["prediction"]) if rec.get("prediction") else None
        self.label = ReferenceColumn(rec["label"]) if rec.get("label") else None
        self.performance: dict[str, float] = dict(rec.get("performance") or {})

    def partial_spec(self, kll_k: int, category_cap: int) -> PartialSpec:
        ranges: dict[str, tuple[float, float]] = {}
        known: dict[str, frozenset[str]] = {}
        items = list(self.columns.items())
        if self.prediction is not None:
            items.append((PREDICTION, self.prediction))
        for name, col in items:
            if col.kind == "numeric" and col.min is not None and col.max is not None:
                ranges[name] = (float(col.min), float(col.max))
            elif col.kind == "categorical" and not col.capped:
                known[name] = frozenset(col.categories)
        return PartialSpec(
            kll_k=kll_k,
            category_cap=category_cap,
            ranges=ranges,
            known=known,
            expected={n: c.kind for n, c in self.columns.items()},
        )
