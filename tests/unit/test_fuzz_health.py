"""/healthz means progress: stalls, dead loops and failed checks turn it to 503."""

from __future__ import annotations

import json

from schemas.health import ProgressTracker, health_app


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _get(tracker: ProgressTracker, path: str) -> tuple[str, bytes]:
    seen: list[str] = []

    def metrics(environ, start_response):
        start_response("200 OK", [])
        return [b"metrics"]

    body = health_app(tracker, metrics)({"PATH_INFO": path}, lambda s, h: seen.append(s))
    return seen[0], b"".join(body)


def test_idle_is_healthy_stalled_with_input_is_not() -> None:
    clock = Clock()
    t = ProgressTracker(stall_after_s=30, clock=clock)
    t.progress("predictions", 0, position=10, backlog=0)
    clock.now = 1_000
    assert _get(t, "/healthz")[0] == "200 OK"  # nothing waits: idle, not stalled
    t.progress("predictions", 0, position=10, backlog=5)  # input arrives: the clock starts
    clock.now = 1_029
    t.progress("predictions", 0, position=10, backlog=7)
    assert t.report().ok  # 29 s with input and no move: within the bound
    clock.now = 1_031
    status, body = _get(t, "/healthz")
    assert status.startswith("503") and "predictions[0] stalled" in json.loads(body)["problems"][0]
    t.progress("predictions", 0, position=11, backlog=4)
    assert _get(t, "/healthz")[0] == "200 OK"


def test_input_that_arrives_for_a_stuck_stage_is_seen_through_the_highwater() -> None:
    clock = Clock()
    t = ProgressTracker(stall_after_s=30, clock=clock)
    t.progress("labels", 3, position=99, backlog=0)  # caught up, then stuck on a record
    clock.now = 100
    t.highwater("labels", 3, 100)  # nothing new
    t.highwater("labels", 2, 500)  # never processed here: nothing to compare with
    assert t.report().ok
    t.highwater("labels", 3, 150)  # input arrived
    clock.now = 131
    assert t.report().problems == ["labels[3] stalled at 99 with 50 waiting for 31 s"]


def test_a_stage_with_its_own_threshold_stalls_only_after_it() -> None:
    clock = Clock()
    t = ProgressTracker(stall_after_s=10, clock=clock)
    t.progress("deliveries", "hook", position=3, backlog=1, stall_after_s=130)  # may retry 2 min
    t.progress("alerts", 0, position=7, backlog=2)
    clock.now = 11
    assert t.report().problems == ["alerts[0] stalled at 7 with 2 waiting for 11 s"]
    t.progress("deliveries", "hook", position=3, backlog=1)  # keeps its own threshold
    clock.now = 129
    assert [p for p in t.report().problems if p.startswith("deliveries")] == []
    clock.now = 131
    assert "deliveries[hook] stalled at 3 with 1 waiting for 131 s" in t.report().problems


def test_beats_and_checks() -> None:
    clock = Clock()
    t = ProgressTracker(stall_after_s=5, clock=clock)
    feed_up = [True]
    t.beat("output timer")
    t.check("reference feed", lambda: feed_up[0])
    assert t.report().ok
    clock.now = 6
    assert t.report().problems == ["output timer has not run for 6 s"]
    assert t.report().beats["output timer"] == {"age_s": 6.0, "longest_gap_s": 6.0}
    t.beat("output timer")
    assert t.report().beats["output timer"] == {"age_s": 0.0, "longest_gap_s": 6.0}
    feed_up[0] = False
    assert t.report().problems == ["reference feed is down"]
    t.check("broken", lambda: 1 / 0)
    assert any("broken (ZeroDivisionError" in p for p in t.report().problems)


def test_metrics_are_still_served_on_the_same_port() -> None:
    assert _get(ProgressTracker(), "/metrics") == ("200 OK", b"metrics")
