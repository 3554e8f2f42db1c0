"""Alert lifecycle: pending/firing/resolved, dedupe, keep_firing_for, staleness,
inhibition, silences and restore — all with an injected clock."""

from __future__ import annotations

from typing import Any

import fastavro
import pytest

from alerting.lifecycle import AlertLifecycle
from alerting.policy import build_policy
from alerting.silences import Silence, SilenceStore
from schemas.codec import default_codec
from schemas.detection import Detection


class Clock:
    def __init__(self, start: int = 1_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


POLICY = build_policy({
    "defaults": {"for": "0s", "keep_firing_for": "0s", "stale_after": "10m"},
    "rules": {
        "feature_drift": {"severity": "minor", "for": "2m", "keep_firing_for": "1m",
                          "labels": {"team": "ds"}},
        "prediction_drift": {"severity": "major"},
        "no_traffic": {"severity": "critical"},
        "error_rate": {"severity": "critical", "min_value": 0.05},
    },
})


LIVE_MS = 1_000_000  # the wall clock's start: detections at this event time are live


def det(kind: str = "feature_drift", subject: str = "age", active: bool = True,
        value: float = 0.3, model: str = "churn", at: int = LIVE_MS) -> Detection:
    return Detection(model=model, kind=kind, subject=subject, detector="psi", value=value,
                     threshold=0.2, event_time_ms=at, active=active)


def statuses(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["kind"], e["status"]) for e in events]


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_pending_for_then_firing_once_then_deduplicated(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    assert lc.observe(det()) == []  # pending
    clock.advance(60)
    assert lc.observe(det()) == []  # still pending (for = 2m)
    clock.advance(61)
    events = lc.observe(det())
    assert statuses(events) == [("feature_drift", "firing")]
    fired = events[0]
    assert fired["fired_at_ms"] == clock.now
    assert fired["labels"] == {"team": "ds"}
    assert fired["severity"] == "minor"
    for _ in range(5):  # repeats while firing are deduplicated
        clock.advance(30)
        assert lc.observe(det()) == []
    # the record matches the AlertEvent schema
    payload = default_codec().encode("AlertEvent", fired)
    assert default_codec().decode(payload).record["alert_id"] == fired["alert_id"]
    assert fastavro.validate(fired, default_codec().schema(default_codec().schema_id("AlertEvent")))


def test_pending_fires_on_tick_without_new_observation(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    lc.observe(det())
    clock.advance(119)
    assert lc.tick() == []
    clock.advance(1)
    assert statuses(lc.tick()) == [("feature_drift", "firing")]


def test_inactive_while_pending_never_fires(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    lc.observe(det())
    clock.advance(60)
    assert lc.observe(det(active=False)) == []
    clock.advance(120)
    assert lc.tick() == []
    assert lc.observe(det()) == []  # pending restarts from zero
    clock.advance(60)
    assert lc.tick() == []


def test_keep_firing_for_prevents_flapping_and_resolve_closes_the_same_alert(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    lc.observe(det())
    clock.advance(120)
    (fired,) = lc.tick()
    clock.advance(10)
    assert lc.observe(det(active=False)) == []  # keep_firing_for 1m
    clock.advance(30)
    assert lc.observe(det()) == []  # flaps back: same alert, no new event
    clock.advance(10)
    assert lc.observe(det(active=False, value=0.01)) == []
    clock.advance(59)
    assert lc.tick() == []
    clock.advance(1)
    (resolved,) = lc.tick()
    assert resolved["status"] == "resolved"
    assert resolved["alert_id"] == fired["alert_id"]
    assert resolved["fingerprint"] == fired["fingerprint"]
    assert resolved["resolved_at_ms"] == clock.now
    assert resolved["value"] == 0.01  # latest observation
    assert resolved["fired_at_ms"] == fired["fired_at_ms"]
    # the next episode is a new alert_id with the same fingerprint
    lc.observe(det())
    clock.advance(120)
    (again,) = lc.tick()
    assert again["fingerprint"] == fired["fingerprint"]
    assert again["alert_id"] != fired["alert_id"]


def test_zero_keep_firing_for_resolves_on_first_inactive(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    fired = lc.observe(det("prediction_drift", "score"))
    assert statuses(fired) == [("prediction_drift", "firing")]
    clock.advance(1)
    assert statuses(lc.observe(det("prediction_drift", "score", active=False))) == [
        ("prediction_drift", "resolved")]


def test_staleness_resolves_without_observations(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    lc.observe(det("prediction_drift", "score"))
    clock.advance(599)
    assert lc.tick() == []
    clock.advance(1)
    assert statuses(lc.tick()) == [("prediction_drift", "resolved")]


def test_min_value_threshold(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    assert lc.observe(det("error_rate", "errors", value=0.04)) == []
    assert statuses(lc.observe(det("error_rate", "errors", value=0.07))) == [
        ("error_rate", "firing")]
    assert statuses(lc.observe(det("error_rate", "errors", value=0.03))) == [
        ("error_rate", "resolved")]


def test_fingerprint_separates_models_subjects_and_kinds(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    a = lc.observe(det("prediction_drift", "score"))
    b = lc.observe(det("prediction_drift", "proba"))
    c = lc.observe(det("prediction_drift", "score", model="fraud"))
    fps = {a[0]["fingerprint"], b[0]["fingerprint"], c[0]["fingerprint"]}
    assert len(fps) == 3


def test_unknown_kind_is_counted_and_ignored(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    assert lc.observe(det("latency_slo", "p99")) == []
    assert lc.ignored_kinds == {"latency_slo": 1}


def test_critical_inhibits_major_and_minor_of_the_same_model(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    assert statuses(lc.observe(det("no_traffic", "traffic"))) == [("no_traffic", "firing")]
    assert lc.observe(det("prediction_drift", "score")) == []  # inhibited
    other = lc.observe(det("prediction_drift", "score", model="fraud"))
    assert statuses(other) == [("prediction_drift", "firing")]  # other model unaffected
    clock.advance(1)
    events = lc.observe(det("no_traffic", "traffic", active=False))
    # the critical resolves and the still-active major is published right after
    assert statuses(events) == [("no_traffic", "resolved"), ("prediction_drift", "firing")]


def test_inhibited_alert_that_clears_is_never_published(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    lc.observe(det("no_traffic", "traffic"))
    assert lc.observe(det("prediction_drift", "score")) == []
    assert lc.observe(det("prediction_drift", "score", active=False)) == []  # no orphan resolve
    assert statuses(lc.observe(det("no_traffic", "traffic", active=False))) == [
        ("no_traffic", "resolved")]


def test_silence_mutes_matching_alerts_until_it_expires(clock: Clock) -> None:
    store = SilenceStore()
    lc = AlertLifecycle(POLICY, clock, silences=store)
    store.apply("s1", Silence(id="s1", model="churn", kind="prediction_drift",
                              created_at_ms=clock.now, expires_at_ms=clock.now + 60_000,
                              reason="deploy"))
    assert lc.observe(det("prediction_drift", "score")) == []
    assert statuses(lc.observe(det("no_traffic", "traffic"))) == [("no_traffic", "firing")]
    assert lc.observe(det("prediction_drift", "score", model="fraud")) != []
    clock.advance(1)
    lc.observe(det("no_traffic", "traffic", active=False))
    clock.advance(60)
    assert statuses(lc.tick()) == [("prediction_drift", "firing")]  # silence expired


def test_tombstone_lifts_a_silence(clock: Clock) -> None:
    store = SilenceStore()
    lc = AlertLifecycle(POLICY, clock, silences=store)
    store.apply("s1", Silence.new("churn", None, 3_600_000, "maintenance", clock.now))
    store.apply("s2", Silence.new("churn", None, 3_600_000, "maintenance", clock.now))
    assert lc.observe(det("prediction_drift", "score")) == []
    store.apply("s1", None)
    assert lc.tick() == []  # s2 still mutes
    store.apply("s2", None)
    assert statuses(lc.tick()) == [("prediction_drift", "firing")]


def test_restore_from_the_alerts_topic_resolves_later_with_the_same_id(clock: Clock) -> None:
    lc = AlertLifecycle(POLICY, clock)
    (fired,) = lc.observe(det("prediction_drift", "score"))
    other = lc.observe(det("prediction_drift", "proba"))[0]
    closed = lc.observe(det("prediction_drift", "proba", active=False))[0]
    fresh = AlertLifecycle(POLICY, clock)
    assert fresh.restore([fired, other, closed]) == []
    assert [a["alert_id"] for a in fresh.firing()] == [fired["alert_id"]]
    assert fresh.observe(det("prediction_drift", "score")) == []  # still deduplicated
    (resolved,) = fresh.observe(det("prediction_drift", "score", active=False))
    assert resolved["alert_id"] == fired["alert_id"]


def test_summary_says_what_explains_a_performance_drop(clock: Clock) -> None:
    import dataclasses

    lc = AlertLifecycle(POLICY, clock)
    why = "feature:tenure=< 3 error 0.08→0.41 on 10% of labels (46% of the rise)"
    d = dataclasses.replace(det("prediction_drift"), details={"explained_by": why})
    [fired] = lc.observe(d)
    assert fired["summary"].endswith(f"; explained by {why}")
    [plain] = AlertLifecycle(POLICY, clock).observe(det("prediction_drift", subject="score"))
    assert "explained by" not in plain["summary"]
