"""The sorted view of a KLL doubles sketch in numpy: the numbers ``get_cdf`` and iterating
the sketch give, without a Python loop or a Python list per call.

The datasketches binding has no array access to a sketch's retained items: iterating it
yields one ``(item, weight)`` tuple per item, and ``get_cdf`` takes and returns Python
lists. The drift tests query the window's and the reference's sketches on the union of
their supports (hundreds to thousands of points per feature and window), and those
conversions were most of the merge stage's time (measured: ~60 % of a merged window's
cost, 20 numeric features). Here the items come from the sketch's serialization
(the layout :mod:`stream_jobs.reference.kll_check` validates: level ``h`` weighs
``2**h``), are sorted once with their cumulative weights, and
:meth:`SortedView.cdf` is the sketch's own rule — the cumulative weight of the items
``<= x`` divided, as a double, by the total weight — so the results are bit-identical to
``get_cdf(points, inclusive=True)`` (checked by ``tests/unit/test_kll_view.py``).

>>> from datasketches import kll_doubles_sketch
>>> sk = kll_doubles_sketch(200)
>>> sk.update(np.arange(5_000.0) % 997)
>>> view = SortedView(sk)
>>> points = np.array([-1.0, 0.0, 498.5, 996.0])
>>> bool((view.cdf(points) == np.asarray(sk.get_cdf(points, inclusive=True))[:-1]).all())
True
>>> view.support.size == len({v for v, _ in sk})
True
"""

from __future__ import annotations

import struct

import numpy as np
from datasketches import kll_doubles_sketch

from stream_jobs.reference.kll_check import FLAG_EMPTY, FLAG_SINGLE_ITEM, total_capacity

_PRE = struct.Struct("<BBBBHB")
_FULL = struct.Struct("<QHB")


def kll_items(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(items, weights)`` retained by a serialized KLL doubles sketch, level by level
    (bytes of a real sketch: :func:`~stream_jobs.reference.kll_check.check_kll`
    guards untrusted ones)."""
    _, _, _, flags, k, m = _PRE.unpack_from(raw)
    if flags & FLAG_EMPTY:
        return np.empty(0), np.empty(0, np.int64)
    if flags & FLAG_SINGLE_ITEM:
        return np.frombuffer(raw, "<f8", 1, 8).astype(np.float64), np.ones(1, np.int64)
    _, _, num_levels = _FULL.unpack_from(raw, 8)
    levels = np.frombuffer(raw, "<u4", num_levels, 20).astype(np.int64)
    bounds = np.append(levels, total_capacity(k, m, num_levels)) - levels[0]
    items = np.frombuffer(raw, "<f8", int(bounds[-1]), 20 + 4 * num_levels + 16)
    weights = np.repeat(np.left_shift(1, np.arange(num_levels, dtype=np.int64)), np.diff(bounds))
    return items.astype(np.float64), weights


class SortedView:
    """A sketch's retained items, sorted, with their cumulative weights."""

    __slots__ = ("items", "cumulative", "total", "_support")

    def __init__(self, sketch: kll_doubles_sketch) -> None:
        values, weights = kll_items(sketch.serialize())
        order = np.argsort(values, kind="stable")
        self.items = values[order]
        self.cumulative = np.cumsum(weights[order])
        self.total = int(self.cumulative[-1]) if self.cumulative.size else 0
        self._support: np.ndarray | None = None

    @property
    def support(self) -> np.ndarray:
        """Sorted distinct items: where the sketch's empirical CDF steps."""
        if self._support is None:
            self._support = np.unique(self.items)
        return self._support

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """P(X <= x) at ``points`` (``get_cdf(points, inclusive=True)`` without its 1.0)."""
        if points.size == 0 or self.total == 0:
            return np.zeros(points.size)
        at = np.searchsorted(self.items, points, side="right")
        weight = np.where(at > 0, self.cumulative[at - 1], 0)
        return weight / self.total
