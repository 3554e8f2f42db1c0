"""The outcome of one drift test on one column."""

from __future__ import annotations

from dataclasses import dataclass

P_VALUE_TESTS = frozenset({"ks", "chisquare"})


@dataclass(frozen=True)
class TestResult:
    """``statistic`` always; ``p_value`` for p-value tests (KS, chi-square), else None."""

    test: str
    statistic: float
    p_value: float | None = None

    __test__ = False  # not a pytest class

    @property
    def is_p_value(self) -> bool:
        return self.p_value is not None
