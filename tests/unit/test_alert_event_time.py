"""The alert lifecycle on event time: replayed history gives the live timeline, in no time.

The wall clock stays put (a replay takes seconds) while the detections' event times move
over days; every timing below is in event time.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from alerting.lifecycle import AlertLifecycle
from alerting.policy import PolicyError, build_policy, load_policy
from schemas.detection import Detection

MIN = 60_000
DAY = 86_400_000
T0 = 1_700_000_000_000  # history: Nov 2023
WALL = T0 + 400 * DAY  # the replay runs more than a year later


class Wall:
    def __init__(self, now: int = WALL) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


POLICY = build_policy({
    "defaults": {"for": "0s", "keep_firing_for": "0s", "stale_after": "15m",
                 "live_within": "10m"},
    "rules": {
        "feature_drift": {"severity": "minor", "for": "10m", "keep_firing_for": "2m"},
        "prediction_drift": {"severity": "major", "for": "5m"},
        "no_traffic": {"severity": "critical", "for": "1m", "liveness": True},
        "error_rate": {"severity": "critical", "for": "5m", "min_value": 0.05},
    },
})


def det(at: int, kind: str = "feature_drift", subject: str = "age", active: bool = True,
        value: float = 0.3, model: str = "churn") -> Detection:
    return Detection(model=model, kind=kind, subject=subject, detector="psi", value=value,
                     threshold=0.2, event_time_ms=at, active=active)


def timeline(events: list[dict[str, Any]]) -> list[tuple[str, str, str, int]]:
    return [(e["kind"], e["subject"], e["status"], e["event_time_ms"]) for e in events]


def test_for_runs_on_event_time_without_the_wall_clock_moving() -> None:
    lc = AlertLifecycle(POLICY, Wall())
    out = []
    for k in range(0, 11):  # a drift verdict per one-minute window, for ten minutes
        out += lc.observe(det(T0 + k * MIN))
        if k < 10:
            assert out == [], k
    assert timeline(out) == [("feature_drift", "age", "firing", T0 + 10 * MIN)]
    assert out[0]["detected_at_ms"] == T0 + 10 * MIN  # the verdict that confirmed it
    assert out[0]["fired_at_ms"] == WALL  # the wall clock when it was decided
    assert out[0]["alert_id"].endswith(str(T0 + 10 * MIN))  # same replay, same id


def test_keep_firing_for_and_resolution_in_event_time() -> None:
    lc = AlertLifecycle(POLICY, Wall())
    events = []
    for k in range(11):
        events += lc.observe(det(T0 + k * MIN))
    events += lc.observe(det(T0 + 11 * MIN, active=False))  # clears; keep_firing_for 2m
    events += lc.observe(det(T0 + 12 * MIN, active=False))
    assert [e["status"] for e in events] == ["firing"]
    events += lc.observe(det(T0 + 13 * MIN, active=False))
    resolved = events[-1]
    assert resolved["status"] == "resolved"
    assert resolved["event_time_ms"] == T0 + 13 * MIN  # cleared at 11m, + 2m
    assert resolved["alert_id"] == events[0]["alert_id"]
    assert resolved["resolved_at_ms"] == WALL


def test_verdicts_further_apart_than_for_are_judged_at_due_times() -> None:
    """Verdicts every 5 minutes: a value holds until the next verdict, and a transition due
    exactly at a verdict's time is decided by that verdict (as a rule evaluated then)."""
    lc = AlertLifecycle(POLICY, Wall())
    events = []
    for k, active in ((0, True), (5, True), (10, True), (15, False), (20, False),
                      (30, True), (35, True), (40, False), (50, False)):
        events += lc.observe(det(T0 + k * MIN, active=active))
    # fires at 10m (held since 0); clear from 15m, resolved at 17m (keep_firing_for 2m),
    # seen by the verdict at 20m; the second episode clears exactly at its 10 minutes
    assert timeline(events) == [("feature_drift", "age", "firing", T0 + 10 * MIN),
                                ("feature_drift", "age", "resolved", T0 + 17 * MIN)]


def test_stale_after_counts_the_kinds_event_time_not_the_wall_clock() -> None:
    lc = AlertLifecycle(POLICY, Wall())
    events = []
    for k in range(11):
        events += lc.observe(det(T0 + k * MIN))  # fires at 10m
    # "age" is no longer judged; other features' verdicts move the kind's clock on
    for k in range(11, 40):
        events += lc.observe(det(T0 + k * MIN, subject="income", active=False))
    assert timeline(events) == [("feature_drift", "age", "firing", T0 + 10 * MIN),
                                ("feature_drift", "age", "resolved", T0 + 25 * MIN)]
    # and ticks while the wall clock runs do nothing to history
    lc.clock.now += 3 * DAY  # type: ignore[attr-defined]
    assert lc.tick() == []


def test_no_traffic_at_the_end_of_a_replay_is_not_an_outage() -> None:
    """A finished replay stops sending: the golden checks report a growing gap. The model's
    event time is days behind the wall clock, so no critical fires and nothing is
    inhibited."""
    wall = Wall()
    lc = AlertLifecycle(POLICY, wall)
    events = []
    for k in range(6):
        events += lc.observe(det(T0 + k * MIN, kind="prediction_drift", subject="score"))
    for _ in range(10):
        wall.now += 30_000
        events += lc.observe(det(T0 + 5 * MIN, kind="no_traffic", subject="traffic"))
        events += lc.tick()
    assert timeline(events) == [("prediction_drift", "score", "firing", T0 + 5 * MIN)]
    assert lc.ignored_not_live == {"no_traffic": 10}


def test_a_live_model_that_goes_silent_fires_no_traffic_on_the_wall_clock() -> None:
    wall = Wall()
    lc = AlertLifecycle(POLICY, wall)
    last_event = wall.now - 2_000  # live: event time two seconds behind the wall clock
    assert lc.observe(det(last_event, kind="no_traffic", subject="traffic", active=False)) == []
    events = []
    for _ in range(4):  # traffic stops: event time freezes, the wall clock goes on
        wall.now += 30_000
        events += lc.observe(det(last_event, kind="no_traffic", subject="traffic"))
    assert [(e["kind"], e["status"]) for e in events] == [("no_traffic", "firing")]
    assert events[0]["fired_at_ms"] == WALL + 90_000  # pending at +30s, for 1m
    assert events[0]["event_time_ms"] == WALL + 90_000  # a live model's clock is the wall


def test_live_model_pending_fires_on_wall_clock_ticks() -> None:
    wall = Wall()
    lc = AlertLifecycle(POLICY, wall)
    assert lc.observe(det(wall.now, kind="prediction_drift", subject="score")) == []
    wall.now += 5 * MIN - 1
    assert lc.tick() == []
    wall.now += 1
    assert [e["status"] for e in lc.tick()] == ["firing"]


def test_replay_catching_up_to_the_present_switches_to_the_wall_clock() -> None:
    wall = Wall()
    lc = AlertLifecycle(POLICY, wall)
    lc.observe(det(wall.now - 3 * DAY, kind="prediction_drift", subject="score"))
    assert not lc.clocks.live("churn")
    events = lc.observe(det(wall.now - 1_000, kind="prediction_drift", subject="score"))
    assert lc.clocks.live("churn")
    # the old verdict held until it went stale: it fired and resolved back then
    assert [(e["status"], e["event_time_ms"]) for e in events] == [
        ("firing", WALL - 3 * DAY + 5 * MIN), ("resolved", WALL - 3 * DAY + 15 * MIN)]
    # the new one runs on the wall clock (pending since the wall clock's now)
    wall.now += 5 * MIN
    assert [(e["status"], e["event_time_ms"]) for e in lc.tick()] == [("firing", wall.now)]


def _stage_streams() -> list[list[Detection]]:
    """What three worker stages emit for one model, each in its own event-time order:
    drift windows every 5 minutes (feature "age" drifts from 20m to 55m), prediction drift
    windows, golden checks every minute (error rate up from 30m to 60m)."""
    drift, preds, golden = [], [], []
    for k in range(0, 120, 5):
        t = T0 + k * MIN
        drift.append(det(t, subject="age", active=20 <= k < 55))
        drift.append(det(t, subject="income", active=False))
        preds.append(det(t, kind="prediction_drift", subject="score", active=40 <= k < 50))
    for k in range(120):
        t = T0 + k * MIN
        golden.append(det(t, kind="error_rate", subject="error_rate",
                          value=0.2 if 30 <= k < 60 else 0.01))
    return [drift, preds, golden]


def _interleave(streams: list[list[Detection]], seed: int) -> list[Detection]:
    rng = random.Random(seed)
    queues = [list(s) for s in streams]
    out = []
    while any(queues):
        q = rng.choice([q for q in queues if q])
        out.append(q.pop(0))
    return out


def _replay(order: list[Detection]) -> list[tuple[Any, ...]]:
    lc = AlertLifecycle(POLICY, Wall())
    events = []
    for d in order:
        events += lc.observe(d)
    events += lc.tick()
    return sorted((e["alert_id"], e["kind"], e["subject"], e["status"], e["event_time_ms"])
                  for e in events)


@pytest.mark.parametrize("seed", range(20))
def test_the_timeline_does_not_depend_on_how_stages_interleave(seed: int) -> None:
    streams = _stage_streams()
    expected = _replay([d for s in streams for d in s])
    assert _replay(_interleave(streams, seed)) == expected
    kinds = {(kind, status) for _, kind, _, status, _ in expected}
    assert kinds >= {("feature_drift", "firing"), ("feature_drift", "resolved"),
                     ("error_rate", "firing"), ("error_rate", "resolved")}


def test_policy_liveness_and_live_within_are_validated() -> None:
    assert load_policy().rule("no_traffic").liveness is True
    assert load_policy().live_within_ms == 10 * MIN
    with pytest.raises(PolicyError, match="liveness must be true or false"):
        build_policy({"rules": {"no_traffic": {"severity": "critical", "liveness": "yes"}}})
    with pytest.raises(PolicyError, match="live_within"):
        build_policy({"defaults": {"live_within": "soon"}, "rules": {}})


@pytest.mark.parametrize("name", ["alerting.event_clock", "modelwatch.backtest"])
def test_doctests(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
