"""Discrete views shared by the drift tests: sketch CDFs on a common support, and
aligned count vectors for categorical (or binned numeric) columns.

>>> import numpy as np
>>> from stream_jobs.windows.numeric import NumericPartial
>>> p = NumericPartial(); p.update(np.arange(10.0))
>>> support(p.sketch).tolist()[:3], cdf(p.sketch, np.array([4.0])).tolist()
([0.0, 1.0, 2.0], [0.5])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from datasketches import kll_doubles_sketch

from stream_jobs.reference.kll_view import SortedView
from stream_jobs.reference.view import ReferenceColumn
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial


def support(sketch: kll_doubles_sketch) -> np.ndarray:
    """Sorted distinct items retained by a sketch: where its empirical CDF steps."""
    return SortedView(sketch).support


def cdf(sketch: kll_doubles_sketch, points: np.ndarray) -> np.ndarray:
    """P(X <= x) at sorted distinct points."""
    return SortedView(sketch).cdf(points)


Cdfs = tuple[np.ndarray, np.ndarray, np.ndarray]
# the last common_cdfs: a distance verdict and the p-value test confirming it (Wasserstein
# then KS) query the same pair; keyed by the objects themselves (held, so no id is
# reused) and the window sketch's n (a partial that took more values is not the same)
_last: tuple[ReferenceColumn, NumericPartial, kll_doubles_sketch, int, Cdfs] | None = None


def common_cdfs(ref: ReferenceColumn, cur: NumericPartial) -> Cdfs:
    """``(points, F_ref, F_cur)`` on the union of both sketches' supports (sorted views:
    :mod:`stream_jobs.reference.kll_view`, the reference's built once); read-only arrays,
    the same ones for a repeated query of the same pair."""
    global _last
    last = _last
    if last is not None and last[0] is ref and last[1] is cur and last[2] is cur.sketch \
            and last[3] == cur.sketch.n:  # fmt: skip
        return last[4]
    view = SortedView(cur.sketch)
    points = np.union1d(ref.support, view.support)
    out = (points, ref.cdf(points), view.cdf(points))
    for a in out:
        a.setflags(write=False)
    _last = (ref, cur, cur.sketch, cur.sketch.n, out)
    return out


def quantile_bins(ref: ReferenceColumn, bins: int = 10) -> np.ndarray:
    """Interior split points at the reference quantiles (deduplicated)."""
    assert ref.sketch is not None
    ranks = np.arange(1, bins) / bins
    return np.unique(np.asarray(ref.sketch.get_quantiles(ranks.tolist())))


def binned_proportions(
    ref: ReferenceColumn, cur: NumericPartial, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current mass in bins cut at the reference quantiles.

    Low-cardinality numeric columns (the reference kept value counts) are binned per
    value instead, with cuts half-way between consecutive reference values.
    """
    if ref.categories:
        pairs = sorted((float(k), c) for k, c in ref.categories.items())
        values = np.array([v for v, _ in pairs])
        counts = np.array([c for _, c in pairs], dtype=np.float64)
        cuts = (values[1:] + values[:-1]) / 2
        r = counts / counts.sum()
    else:
        cuts = quantile_bins(ref, bins)
        assert ref.sketch is not None
        r = np.asarray(ref.sketch.get_pmf(cuts, inclusive=True)) if cuts.size else np.ones(1)
    c = np.asarray(cur.sketch.get_pmf(cuts, inclusive=True)) if cuts.size else np.ones(1)
    return r, c


def aligned_counts(
    ref: Mapping[str, int], cur: CategoricalPartial
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Category names (reference ∪ current) with both count vectors aligned to them."""
    names = list(ref) + [k for k in cur.counts if k not in ref]
    r = np.array([ref.get(k, 0) for k in names], dtype=np.float64)
    c = np.array([cur.counts.get(k, 0) for k in names], dtype=np.float64)
    return names, r, c


def counts_or_bins(
    ref: ReferenceColumn, cur: NumericPartial | CategoricalPartial, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current *counts* per category / bin, whatever the column kind."""
    if isinstance(cur, CategoricalPartial):
        _, r, c = aligned_counts(ref.categories, cur)
        return r, c
    r, c = binned_proportions(ref, cur, bins)
    return r * ref.n, c * cur.n
