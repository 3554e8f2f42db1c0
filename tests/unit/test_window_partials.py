"""Window partials: merge of a random split equals one pass (exact for counts and
moments, within the KLL rank error for quantiles); compact bytes round trip; window
assignment and lateness; type violations."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.columnar import CategoricalArray
from stream_jobs.drift.synthetic import SyntheticStream
from stream_jobs.windows import (
    OTHER,
    CategoricalPartial,
    NumericPartial,
    PartialSpec,
    WindowAssigner,
    WindowPartial,
)


def _split(n: int, parts: int, rng: np.random.Generator) -> list[np.ndarray]:
    perm = rng.permutation(n)
    cuts = np.sort(rng.choice(np.arange(1, n), parts - 1, replace=False))
    return np.split(perm, cuts)


@pytest.mark.parametrize("seed", range(5))
def test_numeric_merge_of_random_split_equals_one_pass(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=50_000)
    x[rng.random(x.size) < 0.05] = np.nan
    whole = NumericPartial(200, (0.1, 5.0))
    whole.update(x)
    merged = NumericPartial(200, (0.1, 5.0))
    for idx in _split(x.size, 7, rng):
        part = NumericPartial(200, (0.1, 5.0))
        for chunk in np.array_split(x[idx], 3):
            part.update(chunk)
        merged.merge(NumericPartial.from_bytes(part.to_bytes()))
    assert (merged.count, merged.missing, merged.n, merged.out_of_range) == (
        whole.count, whole.missing, whole.n, whole.out_of_range,
    )  # fmt: skip
    assert (merged.min, merged.max) == (whole.min, whole.max)
    assert merged.mean == pytest.approx(whole.mean, rel=1e-12)
    assert merged.std == pytest.approx(whole.std, rel=1e-10)
    finite = np.sort(x[np.isfinite(x)])
    assert whole.std == pytest.approx(finite.std(ddof=1), rel=1e-10)
    eps = merged.sketch.normalized_rank_error(False)
    ranks = np.linspace(0.01, 0.99, 99)
    est = np.array(merged.quantiles(ranks.tolist()))
    true_rank = np.searchsorted(finite, est, side="right") / finite.size
    assert np.max(np.abs(true_rank - ranks)) <= eps


def test_numeric_handles_empty_all_missing_and_inf() -> None:
    p = NumericPartial()
    p.update(np.array([]))
    p.update(np.array([np.nan, np.inf, -np.inf]))
    assert (p.count, p.missing, p.n, p.std) == (3, 3, 0, None)
    q = NumericPartial.from_bytes(p.to_bytes())
    assert (q.count, q.missing, q.n) == (3, 3, 0)
    q.merge(p)
    assert q.count == 6


def test_categorical_merge_exact_below_cap_and_totals_exact_above() -> None:
    rng = np.random.default_rng(3)
    names = [f"k{i}" for i in range(30)]
    values = [names[i] if i < 30 else None for i in rng.integers(0, 33, 20_000)]
    for cap in (50, 10):
        whole = CategoricalPartial(cap, known=frozenset(names[:20]))
        whole.update(values)
        merged = CategoricalPartial(cap, known=frozenset(names[:20]))
        for idx in _split(len(values), 5, rng):
            part = CategoricalPartial(cap, known=frozenset(names[:20]))
            part.update(CategoricalArray.from_values([values[i] for i in idx]))
            merged.merge(CategoricalPartial.from_bytes(part.to_bytes()))
        assert (merged.count, merged.missing, merged.unseen) == (
            whole.count, whole.missing, whole.unseen,
        )  # fmt: skip
        assert sum(merged.counts.values()) == sum(whole.counts.values())
        if cap == 50:
            assert merged.counts == whole.counts and OTHER not in merged.counts
        else:
            assert len(merged.counts) == cap + 1 and merged.counts[OTHER] > 0


def test_window_partial_merge_of_partitions_equals_one_pass() -> None:
    s = SyntheticStream(n_numeric=4, n_categorical=2, rate_per_s=1_000, seed=4)
    cols = s.batch(0, 6_000)
    spec = PartialSpec(ranges={"f0": (-1.0, 1.0)}, known={"c0": frozenset(["v0", "v1"])})
    whole = WindowPartial("m", "1", 0, 60_000, spec)
    whole.update(cols)
    rng = np.random.default_rng(0)
    merged = WindowPartial("m", "1", 0, 60_000, spec)
    for idx in _split(cols.n, 4, rng):
        part = WindowPartial("m", "1", 0, 60_000, spec)
        part.update(cols, np.sort(idx))
        merged.merge(WindowPartial.from_bytes(part.to_bytes()))
    assert (merged.count, merged.errors, merged.fallbacks) == (
        whole.count, whole.errors, whole.fallbacks,
    )  # fmt: skip
    assert (merged.min_event_ms, merged.max_event_ms) == (0, cols.event_time_ms.max())
    for name, p in whole.numeric.items():
        m = merged.numeric[name]
        assert (m.count, m.n, m.out_of_range) == (p.count, p.n, p.out_of_range)
        assert m.mean == pytest.approx(p.mean, rel=1e-12)
    assert merged.numeric["f0"].out_of_range > 0
    for name, p in whole.categorical.items():
        assert merged.categorical[name].counts == p.counts
        assert merged.categorical[name].unseen == p.unseen
    assert merged.categorical["c0"].unseen > 0
    assert merged.prediction.n == whole.prediction.n == cols.n


def test_window_partial_counts_type_violations() -> None:
    s = SyntheticStream(n_numeric=2, n_categorical=1, seed=1)
    cols = s.batch(0, 100)
    del cols.numeric["f1"]
    cols.categorical["f1"] = cols.categorical.pop("c0")  # numeric feature arrives as strings
    spec = PartialSpec(expected={"f0": "numeric", "f1": "numeric", "gone": "categorical"})
    w = WindowPartial("m", "1", 0, 60_000, spec)
    w.update(cols)
    assert w.wrong_kind == {"f1": 100} and w.absent == {"gone": 100}
    assert (w.numeric["f1"].count, w.numeric["f1"].missing) == (100, 100)
    assert w.categorical["f1"].count == 100  # profiled as it arrived
    assert (w.categorical["gone"].count, w.categorical["gone"].missing) == (100, 100)
    back = WindowPartial.from_bytes(w.to_bytes())
    assert back.wrong_kind == w.wrong_kind and back.absent == w.absent


def test_tumbling_assignment_groups_every_event_once() -> None:
    rng = np.random.default_rng(0)
    t = rng.integers(0, 600_000, 10_000)
    groups = WindowAssigner(60_000).assign(t)
    seen = np.concatenate([i for _, i in groups])
    assert np.array_equal(np.sort(seen), np.arange(t.size))
    for start, idx in groups:
        assert np.all((t[idx] >= start) & (t[idx] < start + 60_000))


def test_hopping_assignment_puts_each_event_in_size_over_hop_windows() -> None:
    t = np.array([0, 29_999, 30_000, 59_999, 60_000, 95_000])
    groups = WindowAssigner(60_000, 30_000).assign(t)
    membership = np.zeros(t.size, int)
    for start, idx in groups:
        idx = np.arange(t.size) if idx is None else idx
        assert np.all((t[idx] >= start) & (t[idx] < start + 60_000))
        membership[idx] += 1
    assert membership.tolist() == [2] * t.size
    with pytest.raises(ValueError):
        WindowAssigner(60_000, 25_000)


def test_split_late_against_watermark() -> None:
    a = WindowAssigner(60_000)
    t = np.array([10, 59_999, 60_000, 130_000])
    idx, late = a.split_late(t, watermark_ms=60_000)
    assert late == 2 and idx.tolist() == [2, 3]
    assert a.split_late(t, watermark_ms=-np.inf) == (None, 0)
