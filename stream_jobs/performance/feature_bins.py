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
_F8 = np.dtype("<f8")


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
        # numeric_many's padded edge matrix and missing codes, per tuple of column names
        self._grids: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}

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

    def numeric_many(
        self, names: list[str], columns: dict[str, np.ndarray]
    ) -> dict[str, CategoricalArray]:
        """:meth:`numeric` of the columns ``names`` that have bins, float64 rows of one
        length, all at once (the rest: not in the result): a value's bin is the number of
        its column's edges at or below it (``searchsorted(side="right")`` of the sorted
        edges, which ``np.unique`` made them), counted over an edge matrix padded with
        +inf (at or below no finite value)."""
        rows = []
        for name in names:
            found = self._numeric_bins(name)
            v = columns[name]
            if found is not None and v.dtype == _F8 and v.ndim == 1:
                rows.append((name, v, found))
        if len(rows) < 2 or len({v.size for _, v, _ in rows}) != 1:
            return {}
        key = tuple(name for name, _, _ in rows)
        grid = self._grids.get(key)
        if grid is None:
            width = max(edges.size for _, _, (edges, _) in rows)
            edge_matrix = np.full((len(rows), width), np.inf)
            for i, (_, _, (edges, _)) in enumerate(rows):
                edge_matrix[i, : edges.size] = edges
            missing = np.array([[len(bins) - 1] for _, _, (_, bins) in rows], dtype=_I4)
            grid = self._grids[key] = (edge_matrix, missing)
        edge_matrix, missing = grid
        values = np.stack([v for _, v, _ in rows])
        codes = np.zeros(values.shape, dtype=_I4)
        at_or_below = np.empty(values.shape, dtype=bool)
        for e in range(edge_matrix.shape[1]):
            codes += np.less_equal(edge_matrix[:, e : e + 1], values, out=at_or_below)
        np.copyto(codes, missing, where=~np.isfinite(values))
        return {name: CategoricalArray(bins, codes[i])
                for i, (name, _, (_, bins)) in enumerate(rows)}  # fmt: skip

    def segments(self, cols: PredictionColumns, names: list[str]) -> dict[str, CategoricalArray]:
        """``{feature:<name>: bins}`` for the features ``names`` (absent ones: no rows)."""
        out: dict[str, CategoricalArray] = {}
        binned = self.numeric_many([n for n in names if n in cols.numeric], cols.numeric)
        for name in names:
            if name in binned:
                out[feature_tag(name)] = binned[name]
            elif name in cols.numeric:
                out[feature_tag(name)] = self.numeric(name, cols.numeric[name])
            elif name in cols.categorical:
                out[feature_tag(name)] = cols.categorical[name]
            else:
                out[feature_tag(name)] = CategoricalArray([], np.full(cols.n, -1, dtype=_I4))
        return out
