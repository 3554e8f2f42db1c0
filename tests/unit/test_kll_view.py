"""The numpy sorted view of a KLL sketch gives exactly the sketch's own numbers: its
items are the iteration's, its weights sum to n, its CDF is ``get_cdf``'s bit for bit — on fresh,
compacted, merged and deserialized sketches, with ties, single items and empty ones."""

from __future__ import annotations

import numpy as np
import pytest
from datasketches import kll_doubles_sketch

from stream_jobs.reference.kll_view import SortedView, kll_items


def _sketches() -> list[kll_doubles_sketch]:
    rng = np.random.default_rng(7)
    out = []
    cases = [(200, 1, False), (200, 150, False), (200, 1_000, False), (400, 60_000, False),
             (200, 5_000, True), (8, 3_000, False), (400, 250, True)]  # fmt: skip
    for k, n, ties in cases:
        sk = kll_doubles_sketch(k)
        x = rng.normal(size=n)
        sk.update(np.round(x, 1) if ties else x)
        out.append(sk)
    merged = kll_doubles_sketch(200)
    for part in range(4):
        sk = kll_doubles_sketch(200)
        sk.update(rng.lognormal(part, 1.0, size=250 * (part + 1)))
        merged.merge(kll_doubles_sketch.deserialize(sk.serialize()))
    out.append(merged)
    out.append(kll_doubles_sketch.deserialize(merged.serialize()))
    return out


@pytest.mark.parametrize("sk", _sketches(), ids=lambda s: f"n{s.n}k{s.k}")
def test_the_sorted_view_is_the_sketch_exactly(sk: kll_doubles_sketch) -> None:
    items, weights = kll_items(sk.serialize())
    # the items only: the binding's iterator reports weight 1 for every item of a merged
    # sketch (datasketches 5.2); the weights are checked through get_cdf below
    assert sorted(items.tolist()) == sorted(v for v, _ in sk)
    assert int(weights.sum()) == sk.n
    view = SortedView(sk)
    assert np.array_equal(view.support, np.unique(np.fromiter((v for v, _ in sk), float)))
    inner = view.support
    mids = (inner[1:] + inner[:-1]) / 2 if inner.size > 1 else inner
    points = np.unique(np.concatenate([inner, mids, [inner[0] - 1.0, inner[-1] + 1.0]]))
    want = np.asarray(sk.get_cdf(points.tolist(), inclusive=True))[:-1]
    got = view.cdf(points)
    assert got.dtype == want.dtype and np.array_equal(got, want)  # bit for bit, not isclose


def test_an_empty_sketch_has_no_support_and_a_zero_cdf() -> None:
    view = SortedView(kll_doubles_sketch(200))
    assert view.support.size == 0 and view.total == 0
    assert view.cdf(np.array([0.0, 1.0])).tolist() == [0.0, 0.0]
