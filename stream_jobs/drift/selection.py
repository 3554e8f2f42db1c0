"""Which test judges a column, and at what threshold (Evidently's defaults).

Up to ``small_sample_max`` objects (the smaller of the reference and the window, so a
small window is never judged by a fixed distance threshold that its own sampling noise
can cross): KS for numeric columns with more than ``low_cardinality`` values, chi-square
(the z-test for two categories) otherwise, both at a family-adjusted p ≤ α (0.01 by
default, see :mod:`stream_jobs.drift.config`). Above it: Wasserstein
(normalised by the reference std) ≥ 0.1 for numeric, Jensen–Shannon ≥ 0.1 otherwise.
A ``feature_tests`` override in the config wins. A distance verdict is *confirmed* (see
:func:`confirming_test`): the distance must reach its threshold and the sampling noise
must not explain it (the matching p-value test, adjusted with the window's family, ≤ α) —
a 100-category feature judged at 1,001 rows scores JS ≈ 0.11 from noise alone.

>>> from stream_jobs.drift.config import DriftConfig
>>> choose_test("numeric", 7, 50_000, 500, DriftConfig())
('ks', 0.01)
>>> choose_test("numeric", 7, 50_000, 5_000, DriftConfig())
('wasserstein', 0.1)
>>> choose_test("categorical", 3, 50_000, 5_000, DriftConfig())
('jensenshannon', 0.1)
"""

from __future__ import annotations

from collections.abc import Callable

from stream_jobs.drift.chi_square import chi_square_test
from stream_jobs.drift.config import DriftConfig, FeatureTest
from stream_jobs.drift.jensen_shannon import jensen_shannon_test
from stream_jobs.drift.ks import ks_test
from stream_jobs.drift.psi import psi_test
from stream_jobs.drift.result import TestResult
from stream_jobs.drift.wasserstein import wasserstein_test

TESTS: dict[str, Callable[..., TestResult]] = {
    "ks": ks_test,
    "chisquare": chi_square_test,
    "psi": psi_test,
    "wasserstein": wasserstein_test,
    "jensenshannon": jensen_shannon_test,
}
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})


def default_threshold(test: str, config: DriftConfig) -> float:
    return {
        "ks": config.alpha,
        "chisquare": config.alpha,
        "psi": config.psi_threshold,
        "wasserstein": config.wasserstein_threshold,
        "jensenshannon": config.jensenshannon_threshold,
    }[test]


def choose_test(
    kind: str,
    unique: int,
    n_reference: int,
    n_window: int,
    config: DriftConfig,
    override: FeatureTest | None = None,
) -> tuple[str, float]:
    """``(test name, threshold)`` for a column of reference ``kind`` / ``unique`` count."""
    if override is not None and not (kind == "categorical" and override.test in NUMERIC_ONLY):
        t = override.test
        return t, override.threshold if override.threshold is not None else default_threshold(
            t, config
        )
    categorical_like = _categorical_like(kind, unique, config)
    if min(n_reference, n_window) <= config.small_sample_max:
        test = "chisquare" if categorical_like else "ks"
    else:
        test = "jensenshannon" if categorical_like else "wasserstein"
    return test, default_threshold(test, config)


def _categorical_like(kind: str, unique: int, config: DriftConfig) -> bool:
    return kind == "categorical" or 0 < unique <= config.low_cardinality


def confirming_test(test: str, kind: str, unique: int, config: DriftConfig) -> str:
    """The p-value test whose family-adjusted p-value must also be ≤ α for a distance
    verdict (``confirm_distances``): KS for numeric columns, chi-square otherwise.

    >>> confirming_test("wasserstein", "numeric", 7, DriftConfig())
    'ks'
    >>> confirming_test("jensenshannon", "categorical", 100, DriftConfig())
    'chisquare'
    """
    if test == "wasserstein":
        return "ks"
    return "chisquare" if _categorical_like(kind, unique, config) else "ks"
