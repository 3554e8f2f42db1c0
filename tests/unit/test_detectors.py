"""Online detectors: chunking independent of batch cuts, quorum voting, quiet under H0."""

from __future__ import annotations

import numpy as np

from stream_jobs.detectors import ChunkedZ, ColumnDetectors, Firing, VoteCombiner


def test_chunk_zscores_do_not_depend_on_batch_boundaries() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, 10_007)
    x[rng.random(x.size) < 0.1] = np.nan
    t = np.arange(x.size)
    one = ChunkedZ(5, 2, 32)
    z1, t1 = one.update(x, t)
    many = ChunkedZ(5, 2, 32)
    parts = [many.update(x[a:b], t[a:b]) for a, b in zip(*_cuts(x.size, rng), strict=True)]
    z2 = np.concatenate([p[0] for p in parts])
    t2 = np.concatenate([p[1] for p in parts])
    assert np.allclose(z1, z2) and np.array_equal(t1, t2)
    finite = x[np.isfinite(x)]
    k = finite.size // 32
    expect = ((finite[: k * 32] - 5) / 2).reshape(k, 32).mean(axis=1) * np.sqrt(32)
    assert np.allclose(z1, expect)
    assert 0.9 < z1.std() < 1.1  # ~N(0, 1) under no change


def _cuts(n: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    cuts = np.sort(rng.choice(np.arange(1, n), 300, replace=False)).tolist()
    return [0, *cuts], [*cuts, n]


def test_detectors_quiet_without_change_and_all_fire_on_a_shift() -> None:
    rng = np.random.default_rng(1)
    d = ColumnDetectors("m", "1", "x", 0, mean=0.0, std=1.0, kswin_every=50)
    n = 40_000
    quiet = d.update(rng.normal(size=n), np.arange(n), offset=0)
    assert quiet == []
    loud = d.update(rng.normal(2, 1, 20_000), np.arange(n, n + 20_000), offset=1)
    assert {f.detector for f in loud} == {"adwin", "page_hinkley", "kswin"}
    assert all(f.event_time_ms >= n and f.offset == 1 for f in loud)


def test_vote_majority_and_cap_by_partitions_with_data() -> None:
    v = VoteCombiner(quorum="majority", vote_window_ms=10_000)

    def f(p: int, t: int, subject: str = "x") -> Firing:
        return Firing("m", "1", subject, "adwin", p, 0, t)

    assert v.needed(4) == 3 and v.needed(1) == 1
    everyone = dict.fromkeys(range(4), 10**6)  # every partition has passed the firings
    for x in (f(0, 0), f(1, 1_000), f(2, 20_000), f(3, 21_000), f(0, 22_000)):
        assert v.add(x) == "applied"
    (d,) = v.decide("m", everyone, expected=4)  # 0 and 1 voted too long before 2, 3 and 0
    assert d.details["partitions"] == "0,2,3" and d.event_time_ms == 22_000
    one = VoteCombiner(quorum=2)
    one.add(f(5, 0, "prediction"))
    (pred,) = one.decide("m", {5: 10**6})  # a single partition reporting decides alone
    assert str(pred.kind) == "prediction_drift" and pred.threshold == 1.0
    one.add(f(5, 10**9, "prediction"))  # far later: what the old votes could meet is forgotten
    one.decide("m", {5: 10**9 + 1})
    assert one.votes == {} and list(one.emitted.values()) == [10**9]
