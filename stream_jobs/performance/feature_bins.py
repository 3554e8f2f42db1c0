"""Feature bins as segments: which range of which feature explains a performance drop.

The join store keeps, per pending prediction, the codes of its segment tags; performance
windows add joined rows per tag value (:class:`~stream_jobs.performance.slices.SliceTable`)
and :func:`~stream_jobs.performance.slices.rank_segments` ranks the values by how much of
an error increase they explain. :class:`FeatureBinner` turns features into such tags, so
the same machinery ranks feature ranges as well as segment tags: a numeric feature maps to
the reference decile it falls in (``"[31.2, 35.9)"``; ``"missing"``), a categorical
feature to its own value. Tags are named ``feature:<name>``.

Numeric bins need the reference's quantiles: without a reference (or a column missing
from it) the rows get code -1 (not counted), so a reference that arrives later starts
filling the bins without changing the record layout.

>>> import numpy as np
>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> ref = ReferenceView(build_profile("m", numeric={"x": np.arange(200.0)}))
>>> arr = FeatureBinner(ref, bins=4).numeric("x", np.array([10.0, 120.0, 190.0, np.nan]))
>>> arr.values()
['< 50', '[100, 150)', '≥ 150', 'missing']
>>> FeatureBinner(None).numeric("x", np.array([1.0])).codes.tolist()
[-1]
"""

from __future__ import annotations

import numpy as np

from schemas.columnar import CategoricalArray, PredictionColumns
from stream_jobs.drift.distributions import quantile_bins
from stream_jobs.reference.view import ReferenceView

FEATURE_TAG = "feature:"
MISSING = "missing"
_I4 = np.dtype("<i4")


def feature_tag(name: str) -> str:
    return FEATURE_TAG + name


def _bin_names(edges: np.ndarray) -> list[str]:
    if edges.size == 0:
        return ["all"]
    e = [f"{v:.4g}" for v in edges.tolist()]
    inner = [f"[{a}, {b})" for a, b in zip(e[:-1], e[1:], strict=True)]
    return [f"< {e[0]}", *inner, f"≥ {e[-1]}"]


class FeatureBinner:
    """Bins the features of a batch against one reference (None: numeric rows unbinned)."""

    def __init__(self, reference: ReferenceView | None, bins: int = 10) -> None:
        self.reference = reference
        self.bins = bins
        self._edges: dict[str, tuple[np.ndarray, list[str]] | None] = {}

    def _numeric_bins(self, name: str) -> tuple[np.ndarray, list[str]] | None:
        if name not in self._edges:
            col = None if self.reference is None else self.reference.columns.get(name)
            if col is None or col.kind != "numeric" or col.sketch is None or col.n == 0:
                self._edges[name] = None
            else:
                edges = quantile_bins(col, self.bins)
                self._edges[name] = (edges, [*_bin_names(edges), MISSING])
        return self._edges[name]

    def numeric(self, name: str, values: np.ndarray) -> CategoricalArray:
        found = self._numeric_bins(name)
        if found is None:
            return CategoricalArray([], np.full(values.size, -1, dtype=_I4))
        edges, names = found
        codes = edges.searchsorted(values, side="right").astype(_I4)  # (no numpy wrapper)
        codes[~np.isfinite(values)] = len(names) - 1
        return CategoricalArray(names, codes)

    def segments(self, cols: PredictionColumns, names: list[str]) -> dict[str, CategoricalArray]:
        """``{feature:<name>: bins}`` for the features ``names`` (absent ones: no rows)."""
        out: dict[str, CategoricalArray] = {}
        for name in names:
            if name in cols.numeric:
                out[feature_tag(name)] = self.numeric(name, cols.numeric[name])
            elif name in cols.categorical:
                out[feature_tag(name)] = cols.categorical[name]
            else:
                out[feature_tag(name)] = CategoricalArray([], np.full(cols.n, -1, dtype=_I4))
        return out
