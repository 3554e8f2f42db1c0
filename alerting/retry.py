"""Retries with exponential backoff and full jitter, bounded by a retry budget.

A delivery is attempted up to ``max_attempts`` times and for at most ``budget_s`` seconds
in total; errors a sink marks as permanent (e.g. HTTP 400) are not retried. Sleep and
randomness are injected so the schedule is unit-testable.

>>> import random
>>> policy = RetryPolicy(base_s=1.0, factor=2.0, max_delay_s=5.0, jitter=0.0)
>>> [policy.delay_s(n, random.Random(0)) for n in range(1, 5)]
[1.0, 2.0, 4.0, 5.0]
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class DeliveryError(Exception):
    """A failed delivery. ``retryable=False`` means trying again cannot help."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0
    jitter: float = 1.0  # 0 = no jitter, 1 = full jitter (uniform in [d*(1-j), d])
    max_attempts: int = 6
    budget_s: float = 120.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """Delay after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.max_delay_s, self.base_s * self.factor ** (attempt - 1))
        if self.jitter > 0:
            delay = rng.uniform(delay * (1 - self.jitter), delay)
        return delay


@dataclass
class DeliveryResult:
    ok: bool
    attempts: int
    error: str | None = None
    errors: list[str] = field(default_factory=list)


def deliver_with_retry(
    send: Callable[[], None],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeliveryResult:
    """Call ``send`` until it returns, the error is permanent or the budget is spent.

    Only :class:`DeliveryError` and ``OSError`` are caught (anything else is a bug and
    propagates). Never raises for a failed delivery: the result says what happened.
    """
    rng = rng or random.Random()
    started = monotonic()
    errors: list[str] = []
    attempt = 0
    while True:
        attempt += 1
        try:
            send()
            return DeliveryResult(True, attempt, None, errors)
        except DeliveryError as exc:
            errors.append(str(exc))
            if not exc.retryable:
                return DeliveryResult(False, attempt, f"permanent: {exc}", errors)
        except OSError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        if attempt >= policy.max_attempts:
            return DeliveryResult(False, attempt,
                                  f"gave up after {attempt} attempts: {errors[-1]}", errors)
        delay = policy.delay_s(attempt, rng)
        if monotonic() - started + delay > policy.budget_s or should_stop():
            return DeliveryResult(False, attempt,
                                  f"retry budget of {policy.budget_s:g}s spent after "
                                  f"{attempt} attempts: {errors[-1]}", errors)
        sleep(delay)
