"""Wasserstein-1 distance normalised by the reference standard deviation.

``W1 = ∫ |F_ref(x) - F_cur(x)| dx``, integrated exactly over the union of both sketches'
step points, divided by ``max(std_ref, 0.001)`` (as Evidently's ``wasserstein`` test).
A shift of δ standard deviations scores ≈ δ.

The integral runs between the lower of the two 1 % quantiles and the higher of the two
99 % quantiles (a trimmed W1): a compacted KLL sketch keeps a far outlier as one item
standing for 2^h values, and on heavy-tailed columns that alone moved the untrimmed
score past 0.1 with no drift (3 of 12 stationary 10,000-row windows of the Shuttle data
in ``tests/bench/bench_false_alarms.py``; the error is rank error × range, unbounded in
units of the std). A shift of the bulk still scores ≈ δ; a move of the outer 1 % alone is
for the KS test and the out-of-range check.

>>> import numpy as np
>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> from stream_jobs.windows.numeric import NumericPartial

TAIL = 0.01  # rank trimmed from each end of the integration range
>>> rng = np.random.default_rng(2)
>>> ref = ReferenceView(build_profile("m", numeric={"x": rng.normal(0, 3, 50_000)})).columns["x"]
>>> cur = NumericPartial(); cur.update(rng.normal(1.5, 3, 50_000))
>>> round(wasserstein_test(ref, cur).statistic, 1)
0.5
"""

from __future__ import annotations

import numpy as np

from stream_jobs.drift.distributions import common_cdfs
from stream_jobs.drift.result import TestResult
from stream_jobs.reference.view import ReferenceColumn
from stream_jobs.windows.numeric import NumericPartial

TAIL = 0.01  # rank trimmed from each end of the integration range


def wasserstein_test(ref: ReferenceColumn, cur: NumericPartial) -> TestResult:
    if ref.n == 0 or cur.n == 0:
        return TestResult("wasserstein", 0.0)
    x, fr, fc = common_cdfs(ref, cur)
    if x.size < 2:
        return TestResult("wasserstein", 0.0)
    assert ref.sketch is not None
    (r_lo, r_hi), (c_lo, c_hi) = (
        s.get_quantiles([TAIL, 1 - TAIL]) for s in (ref.sketch, cur.sketch)
    )
    widths = np.diff(np.clip(x, min(r_lo, c_lo), max(r_hi, c_hi)))
    w1 = float(np.dot(np.abs(fr - fc)[:-1], widths))
    return TestResult("wasserstein", w1 / max(float(ref.std or 0.0), 1e-3))
