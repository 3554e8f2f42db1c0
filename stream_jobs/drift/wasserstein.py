"""Wasserstein-1 distance normalised by the reference standard deviation.

``W1 = ∫ |F_ref(x) - F_cur(x)| dx``, integrated exactly over the union of both sketches'
step points, divided by ``max(std_ref, 0.001)`` (as Evidently's ``wasserstein`` test).
A shift of δ standard deviations scores ≈ δ.

>>> import numpy as np
>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> from stream_jobs.windows.numeric import NumericPartial
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


def wasserstein_test(ref: ReferenceColumn, cur: NumericPartial) -> TestResult:
    if ref.n == 0 or cur.n == 0:
        return TestResult("wasserstein", 0.0)
    x, fr, fc = common_cdfs(ref, cur)
    w1 = float(np.dot(np.abs(fr - fc)[:-1], np.diff(x))) if x.size > 1 else 0.0
    return TestResult("wasserstein", w1 / max(float(ref.std or 0.0), 1e-3))
