"""Chi-square test of homogeneity between reference and window category counts.

A 2×k contingency table over reference ∪ window categories, so categories unseen in the
reference count against it instead of dividing by zero; no Yates correction, so for two
categories it equals the two-proportion z-test (z² = χ²). Low-cardinality numeric
columns (the reference kept value counts) are tested per value.

>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> from stream_jobs.windows.categorical import CategoricalPartial
>>> ref = ReferenceView(build_profile("m", categorical={"c": ["a", "b"] * 5_000})).columns["c"]
>>> cur = CategoricalPartial(); cur.update(["a", "b"] * 100 + ["zzz"] * 10)
>>> chi_square_test(ref, cur).p_value < 1e-6
True
"""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2_contingency

from stream_jobs.drift.distributions import counts_or_bins
from stream_jobs.drift.result import TestResult
from stream_jobs.reference.view import ReferenceColumn
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial


def chi_square_test(ref: ReferenceColumn, cur: NumericPartial | CategoricalPartial) -> TestResult:
    r, c = counts_or_bins(ref, cur)
    keep = (r + c) > 0
    if keep.sum() < 2 or r.sum() <= 0 or c.sum() <= 0:
        return TestResult("chisquare", 0.0, 1.0)
    stat, p, _, _ = chi2_contingency(np.vstack([r[keep], c[keep]]), correction=False)
    return TestResult("chisquare", float(stat), float(p))
