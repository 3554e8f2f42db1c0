"""Population Stability Index over reference-quantile bins (numeric) or categories.

``PSI = Σ (c_i - r_i) · ln(c_i / r_i)`` with proportions clipped at 1e-4; 10 equal-mass
reference bins for numeric columns. Conventional reading: < 0.1 stable, ≥ 0.1 drift.

>>> import numpy as np
>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> from stream_jobs.windows.numeric import NumericPartial
>>> rng = np.random.default_rng(3)
>>> ref = ReferenceView(build_profile("m", numeric={"x": rng.normal(size=50_000)})).columns["x"]
>>> cur = NumericPartial(); cur.update(rng.normal(0.5, 1, 5_000))
>>> 0.15 < psi_test(ref, cur).statistic < 0.4
True
"""

from __future__ import annotations

import numpy as np

from stream_jobs.drift.distributions import counts_or_bins
from stream_jobs.drift.result import TestResult
from stream_jobs.reference.view import ReferenceColumn
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial

EPS = 1e-4


def psi_test(ref: ReferenceColumn, cur: NumericPartial | CategoricalPartial) -> TestResult:
    r, c = counts_or_bins(ref, cur)
    if r.sum() <= 0 or c.sum() <= 0:
        return TestResult("psi", 0.0)
    r = np.clip(r / r.sum(), EPS, None)
    c = np.clip(c / c.sum(), EPS, None)
    return TestResult("psi", float(np.sum((c - r) * np.log(c / r))))
