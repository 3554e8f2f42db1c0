"""Notification grouping, repeat and resolve timing, idempotency keys, routes loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerting.grouping import Dispatcher
from alerting.routes import RoutesError, build_routes, load_routes

MIN = 60_000


class Clock:
    def __init__(self, start: int = 10_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def alert(fp: str = "f1", status: str = "firing", severity: str = "critical",
          model: str = "churn", fired_at: int = 10_000_000, alert_id: str | None = None,
          kind: str = "no_traffic") -> dict[str, Any]:
    return {"fingerprint": fp, "alert_id": alert_id or f"{fp}-{fired_at}", "status": status,
            "severity": severity, "model": model, "kind": kind, "subject": "s",
            "fired_at_ms": fired_at, "labels": {"team": "ds"}}


ROUTES = build_routes({
    "sinks": {"log": {"type": "log"}},
    "routes": [
        {"name": "crit", "match": {"severity": ["critical"]}, "sinks": ["log"],
         "group_by": ["model"], "group_wait": "10s", "group_interval": "1m",
         "repeat_interval": "5m", "send_resolved": True},
        {"name": "minor", "match": {"severity": "minor"}, "sinks": ["log"], "group_by": [],
         "send_resolved": False},
        {"name": "major", "match": {"severity": ["major"]}, "sinks": ["log"]},
    ],
})


@pytest.fixture
def clock() -> Clock:
    return Clock()


def sent(notes: list) -> list[list[tuple[str, str]]]:
    return [[(a["fingerprint"], a["status"]) for a in n.alerts] for n in notes if n.alerts]


def test_group_wait_then_critical_repeats_every_5_minutes_until_resolved(clock: Clock) -> None:
    d = Dispatcher(ROUTES.routes, clock)
    assert d.ingest(alert(), token=("alerts", 0, 1)) == 1
    clock.advance(9)
    assert d.flush_due() == []
    clock.advance(1)
    (first,) = d.flush_due()
    assert sent([first]) == [[("f1", "firing")]]
    assert first.tokens == [("alerts", 0, 1)]
    assert first.epoch == 0
    times = []
    for _ in range(20 * 6):  # 20 minutes in 10 s steps
        clock.advance(10)
        for n in d.flush_due():
            if n.alerts:
                times.append(clock.now)
                assert n.firing and n.epoch == (clock.now - 10_000_000) // (5 * MIN)
    # repeats at the first group_interval flush after each 5-minute boundary
    assert [(t - 10_000_000) // MIN for t in times] == [5, 10, 15, 20]
    d.ingest(alert(status="resolved"), token=("alerts", 0, 2))
    clock.advance(60)
    (resolved,) = [n for n in d.flush_due() if n.alerts]
    assert sent([resolved]) == [[("f1", "resolved")]]
    assert resolved.tokens == [("alerts", 0, 2)]
    clock.advance(3600)
    assert d.flush_due() == []  # group gone: no more repeats
    assert d.next_due_ms() is None


def test_duplicate_firing_events_are_not_notified_twice(clock: Clock) -> None:
    d = Dispatcher(ROUTES.routes, clock)
    d.ingest(alert(), token=1)
    clock.advance(10)
    assert len(sent(d.flush_due())) == 1
    d.ingest(alert(), token=2)  # replayed / duplicated event
    clock.advance(60)
    notes = d.flush_due()
    assert sent(notes) == []
    assert [n.tokens for n in notes] == [[2]]  # its offset is released all the same


def test_group_by_model_batches_alerts_of_one_model(clock: Clock) -> None:
    d = Dispatcher(ROUTES.routes, clock)
    d.ingest(alert("a"))
    clock.advance(5)
    d.ingest(alert("b"))
    d.ingest(alert("c", model="fraud"))
    clock.advance(5)
    notes = [n for n in d.flush_due() if n.alerts]
    assert sorted(sent(notes)) == [[("a", "firing"), ("b", "firing")]]
    assert notes[0].group_labels == {"model": "churn"}
    clock.advance(5)
    assert sent(d.flush_due()) == [[("c", "firing")]]


def test_changes_are_notified_at_group_interval_with_the_whole_group(clock: Clock) -> None:
    d = Dispatcher(ROUTES.routes, clock)
    d.ingest(alert("a"))
    clock.advance(10)
    d.flush_due()
    clock.advance(20)
    d.ingest(alert("b"))
    assert d.flush_due() == []
    clock.advance(40)  # group_interval after the first flush
    assert sent(d.flush_due()) == [[("a", "firing"), ("b", "firing")]]


def test_minor_digest_batches_every_model_and_drops_resolved(clock: Clock) -> None:
    d = Dispatcher(ROUTES.routes, clock)
    for i, model in enumerate(["churn", "fraud", "ranker"]):
        d.ingest(alert(f"m{i}", severity="minor", model=model, kind="feature_drift"))
    clock.advance(5 * 60)  # minor default group_wait
    (digest,) = [n for n in d.flush_due() if n.alerts]
    assert digest.is_digest and len(digest.firing) == 3
    d.ingest(alert("m0", status="resolved", severity="minor", kind="feature_drift"), token=7)
    clock.advance(30 * 60)
    notes = d.flush_due()
    assert sent(notes) == []  # send_resolved: false
    assert [n.tokens for n in notes] == [[7]]


def test_resolved_is_sent_once_even_if_replayed(clock: Clock) -> None:
    d = Dispatcher(ROUTES.routes, clock)
    d.ingest(alert())
    clock.advance(10)
    d.flush_due()
    d.ingest(alert(status="resolved"))
    clock.advance(60)
    assert sent(d.flush_due()) == [[("f1", "resolved")]]
    d.ingest(alert(status="resolved"))
    clock.advance(10)
    assert sent(d.flush_due()) == []


def test_idempotency_keys_survive_a_restart_through_is_done(clock: Clock) -> None:
    done: set[str] = set()
    d = Dispatcher(ROUTES.routes, clock)
    d.ingest(alert())
    clock.advance(10)
    (n,) = d.flush_due()
    done.update(n.keys.values())
    key = n.key_of(n.firing[0])
    assert key == "crit|f1|f1-10000000|firing|0"
    # a restarted notifier replays the event: nothing new to send in the same epoch
    clock.advance(30)
    d2 = Dispatcher(ROUTES.routes, clock, is_done=lambda k, route: k in done)
    d2.ingest(alert())
    clock.advance(10)
    assert sent(d2.flush_due()) == []
    # ...but the next repeat period is a new key
    clock.advance(5 * 60)
    assert sent(d2.flush_due()) == [[("f1", "firing")]]


def test_critical_inhibits_repeats_of_major_of_the_same_model(clock: Clock) -> None:
    d = Dispatcher(ROUTES.routes, clock)
    d.ingest(alert("maj", severity="major", kind="prediction_drift"))
    clock.advance(30)
    assert sent(d.flush_due()) == [[("maj", "firing")]]
    d.ingest(alert("crit"))
    clock.advance(10)
    assert sent(d.flush_due()) == [[("crit", "firing")]]
    for _ in range(70):  # past the major's 1h repeat: inhibited while the critical fires
        clock.advance(60)
        for n in d.flush_due():
            assert all(a["severity"] == "critical" for a in n.alerts)
    d.ingest(alert("crit", status="resolved"))
    clock.advance(5 * 60)
    notes = sent(d.flush_due())
    assert [("crit", "resolved")] in notes
    assert [("maj", "firing")] in notes  # repeats again once the critical resolved


def test_routes_default_file_and_validation(tmp_path: Path) -> None:
    conf = load_routes()
    by_name = {r.name: r for r in conf.routes}
    assert by_name["critical"].repeat_interval_ms == 5 * MIN
    assert by_name["major"].repeat_interval_ms == 60 * MIN
    assert by_name["minor-digest"].group_by == ()
    assert conf.sinks["console"]["type"] == "log"
    with pytest.raises(RoutesError, match="unknown sinks"):
        build_routes({"sinks": {}, "routes": [{"name": "x", "sinks": ["nope"]}]})
    with pytest.raises(RoutesError, match="type must be one of"):
        build_routes({"sinks": {"x": {"type": "pager"}}})
    with pytest.raises(RoutesError, match="unknown keys"):
        build_routes({"sinks": {"l": {"type": "log"}},
                      "routes": [{"sinks": ["l"], "repeat": "5m"}]})
    with pytest.raises(RoutesError, match="does not exist"):
        load_routes(tmp_path / "missing.yaml")


def test_forget_drops_alerts_of_lost_partitions(clock: Clock) -> None:
    done: set[str] = set()
    d = Dispatcher(ROUTES.routes, clock, is_done=lambda k, route: k in done)
    d.ingest(alert("a"))
    d.ingest(alert("b"))
    clock.advance(10)
    (n,) = d.flush_due()
    done.add(n.keys["b/firing"])  # 'a' is still in flight when the partition is lost
    d.forget({"a", "b"})
    assert d.open_alerts() == [] and d.next_due_ms() is None
    d.ingest(alert("a"), token=1)  # replayed by the new owner... or by us after reassignment
    d.ingest(alert("b"), token=2)
    clock.advance(10)
    (again,) = d.flush_due()
    assert again.tokens == [1, 2]
    # 'a' is sent again rather than released on the strength of a delivery in flight
    assert [a["fingerprint"] for a in again.firing] == ["a", "b"]
