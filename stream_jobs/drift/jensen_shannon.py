"""Jensen–Shannon distance (natural log, in [0, √ln 2]) between reference and window.

Categorical columns compare category frequencies (reference ∪ window categories);
numeric columns compare mass in reference-quantile bins. Evidently's default threshold
for large samples is 0.1.

>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> from stream_jobs.windows.categorical import CategoricalPartial
>>> ref = ReferenceView(build_profile("m", categorical={"c": ["a"] * 50 + ["b"] * 50})).columns["c"]
>>> same, moved = CategoricalPartial(), CategoricalPartial()
>>> same.update(["a", "b"] * 100); moved.update(["a"] * 180 + ["b"] * 20)
>>> jensen_shannon_test(ref, same).statistic, round(jensen_shannon_test(ref, moved).statistic, 3)
(0.0, 0.319)
"""

from __future__ import annotations

from scipy.spatial.distance import jensenshannon

from stream_jobs.drift.distributions import counts_or_bins
from stream_jobs.drift.result import TestResult
from stream_jobs.reference.view import ReferenceColumn
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial


def jensen_shannon_test(
    ref: ReferenceColumn, cur: NumericPartial | CategoricalPartial
) -> TestResult:
    r, c = counts_or_bins(ref, cur)
    if r.sum() <= 0 or c.sum() <= 0:
        return TestResult("jensenshannon", 0.0)
    return TestResult("jensenshannon", float(jensenshannon(r / r.sum(), c / c.sum())))
