"""Two-sample Kolmogorov–Smirnov test between the reference and window KLL sketches.

The statistic is ``max |F_ref - F_cur|`` over the union of both sketches' retained items
(where the step CDFs change), so it is exact for the sketches and within the KLL rank
error of the exact statistic: ``ε`` = the sum of both sketches' a-priori normalised rank
errors (99 % bound; 0.68 % per sketch at k=400) over the sketches that compacted (a sketch
holding all its values is exact). The p-value is that of the *smallest* statistic the data
can have, ``max(D − ε, 0)``, on scipy's ``kstwo`` distribution at the effective size
``n·m/(n+m)`` (as ``ks_2samp(method="asymp")``): quantisation alone cannot make a
stationary window look drifted at any size — without it, at k=400 and a 1,000-value
window, a KS test at α=0.05 flagged 8 % of stationary windows (measured by
``tests/bench/bench_false_alarms.py``). ``statistic`` stays the sketch's ``D``.

>>> import numpy as np
>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> from stream_jobs.windows.numeric import NumericPartial
>>> rng = np.random.default_rng(1)
>>> ref = ReferenceView(build_profile("m", numeric={"x": rng.normal(size=20_000)})).columns["x"]
>>> same, shifted = NumericPartial(), NumericPartial()
>>> same.update(rng.normal(size=500)); shifted.update(rng.normal(0.5, 1, size=500))
>>> ks_test(ref, same).p_value > 0.05, ks_test(ref, shifted).p_value < 1e-6
(True, True)
"""

from __future__ import annotations

from datasketches import kll_doubles_sketch
from scipy.stats import kstwo

try:  # scipy's own function behind kstwo.sf; a private module, so a fallback if it moves
    from scipy.stats._ksstats import kolmogn
except ImportError:  # pragma: no cover - depends on the scipy build
    kolmogn = None

from stream_jobs.drift.distributions import common_cdfs
from stream_jobs.drift.result import TestResult
from stream_jobs.reference.view import ReferenceColumn
from stream_jobs.windows.numeric import NumericPartial


def rank_error(sketch: kll_doubles_sketch | None) -> float:
    """A-priori (99 %) normalised rank error of a sketch; 0 while it holds every value."""
    if sketch is None or sketch.is_empty() or not sketch.is_estimation_mode():
        return 0.0
    return float(sketch.normalized_rank_error(False))


def kstwo_sf(x: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(x, n)`` for an integer ``n >= 1``, without the generic
    distribution machinery (argument parsing and masks: ~60 % of its ~130 us per call):
    1 at or below the support's start ``0.5 / n``, 0 from 1 on, else scipy's own
    ``kolmogn`` — the function ``kstwo._sf`` is. Bit-identical to ``kstwo.sf``
    (``tests/unit/test_drift_tests.py`` pins it on a grid; a scipy without the private
    ``kolmogn`` gets ``kstwo.sf`` itself)."""
    if x <= 0.5 / n:
        return 1.0
    if x >= 1.0:
        return 0.0
    if kolmogn is None:
        return float(kstwo.sf(x, n))
    return float(kolmogn(n, x, cdf=False))


def ks_test(ref: ReferenceColumn, cur: NumericPartial) -> TestResult:
    n, m = ref.n, cur.n
    if n == 0 or m == 0:
        return TestResult("ks", 0.0, 1.0)
    _, fr, fc = common_cdfs(ref, cur)
    d = float(abs(fr - fc).max()) if fr.size else 0.0
    eps = rank_error(ref.sketch) + rank_error(cur.sketch)
    en = round(n * m / (n + m))
    p = kstwo_sf(max(d - eps, 0.0), max(en, 1))
    return TestResult("ks", d, float(min(1.0, max(0.0, p))))
