"""Retry with backoff + jitter and a budget; the retrain trigger's rate limit; silences."""

from __future__ import annotations

import random

from alerting.retrain import RetrainTrigger
from alerting.retry import DeliveryError, RetryPolicy, deliver_with_retry
from alerting.silences import Silence, SilenceStore
from schemas.codec import default_codec


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s

    def monotonic(self) -> float:
        return self.t


def flaky(failures: int, exc: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def send() -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise exc

    return calls, send


def test_succeeds_after_three_failures_with_exponential_backoff() -> None:
    ft = FakeTime()
    calls, send = flaky(3, DeliveryError("HTTP 503"))
    policy = RetryPolicy(base_s=1, factor=2, max_delay_s=60, jitter=0, max_attempts=6)
    result = deliver_with_retry(send, policy, ft.sleep, ft.monotonic)
    assert result.ok and result.attempts == 4 and len(calls) == 4
    assert ft.sleeps == [1, 2, 4]
    assert result.errors == ["HTTP 503"] * 3


def test_jitter_stays_within_bounds_and_varies() -> None:
    policy = RetryPolicy(base_s=1, factor=2, max_delay_s=8, jitter=1.0)
    rng = random.Random(7)
    delays = [policy.delay_s(4, rng) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays)
    assert len({round(d, 6) for d in delays}) > 100
    half = RetryPolicy(base_s=1, factor=2, max_delay_s=8, jitter=0.5)
    assert all(4 <= half.delay_s(4, rng) <= 8 for _ in range(100))


def test_max_attempts_and_permanent_errors() -> None:
    ft = FakeTime()
    calls, send = flaky(100, ConnectionRefusedError("refused"))
    result = deliver_with_retry(send, RetryPolicy(jitter=0, max_attempts=3), ft.sleep,
                                ft.monotonic)
    assert not result.ok and len(calls) == 3
    assert "gave up after 3 attempts" in result.error
    calls, send = flaky(100, DeliveryError("HTTP 400 bad payload", retryable=False))
    result = deliver_with_retry(send, RetryPolicy(), ft.sleep, ft.monotonic)
    assert not result.ok and len(calls) == 1 and result.error.startswith("permanent")


def test_budget_bounds_total_time() -> None:
    ft = FakeTime()
    calls, send = flaky(100, DeliveryError("timeout"))
    policy = RetryPolicy(base_s=1, factor=2, max_delay_s=100, jitter=0, max_attempts=50,
                         budget_s=10)
    result = deliver_with_retry(send, policy, ft.sleep, ft.monotonic)
    assert not result.ok and "budget" in result.error
    assert ft.t <= 10 and ft.sleeps == [1, 2, 4]


def test_retrain_rate_limited_per_model_with_evidence() -> None:
    now = [0]
    trigger = RetrainTrigger(min_interval_ms=3_600_000, clock=lambda: now[0])
    base = {"alert_id": "x-1", "fingerprint": "x", "model_version": "7",
            "kind": "concept_drift", "value": 0.61, "threshold": 0.8}
    req = trigger.consider(dict(base, model="churn"),
                           details={"drifted_features": "age, income", "drift_share": "0.4"},
                           drifted_features=["tenure"])
    assert req["drifted_features"] == ["age", "income", "tenure"]
    assert req["drift_share"] == 0.4
    assert abs(req["performance_delta"] - (0.61 - 0.8)) < 1e-9
    default_codec().encode("RetrainRequest", req)  # schema-valid
    assert trigger.consider(dict(base, model="fraud"), details={}) is not None
    now[0] = 3_599_999
    assert trigger.consider(dict(base, model="churn"), details={}) is None
    now[0] = 3_600_000
    assert trigger.consider(dict(base, model="churn"), details={}) is not None
    assert trigger.suppressed == 1


def test_silence_record_roundtrip_and_kind_matching() -> None:
    s = Silence.new("churn", "feature_drift", 7_200_000, "retraining", now_ms=1_000)
    rec = default_codec().decode(default_codec().encode("Silence", s.to_record())).record
    assert Silence.from_record(rec) == s
    store = SilenceStore()
    store.apply(s.id, s)
    assert store.is_silenced("churn", "feature_drift", 5_000)
    assert not store.is_silenced("churn", "no_traffic", 5_000)
    assert not store.is_silenced("fraud", "feature_drift", 5_000)
    assert not store.is_silenced("churn", "feature_drift", 7_201_000)
    assert store.active(5_000) == [s] and store.active(7_201_000) == []
