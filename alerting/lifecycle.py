"""The alert lifecycle: detections in, AlertEvent records out — only on state changes.

One alert per fingerprint (model, kind, subject, rule labels). Like Prometheus rules:

* an active observation opens a **pending** alert; once the condition has held for the
  rule's ``for`` it becomes **firing** (one ``firing`` event, then silence while it fires:
  repeats are deduplicated);
* an inactive observation (``Detection.active == False``, or a value under the rule's
  ``min_value``) drops a pending alert, and resolves a firing one once the condition has
  stayed clear for ``keep_firing_for`` (anti-flapping);
* no observation at all for ``stale_after`` resolves it too (the detector went away);
* the ``resolved`` event carries the ``alert_id`` and ``fingerprint`` of the ``firing`` event
  it closes, and is only emitted for alerts whose ``firing`` was emitted.

Muting happens here, so muted alerts never reach the alerts topic: a firing **critical**
alert inhibits the major and minor alerts of the same model while it fires, and a matching
:class:`~alerting.silences.Silence` mutes an alert. A muted alert that is still firing when
the mute lifts is published then. (An alert already published before the mute began stays
open; the notifier stops repeating it while a critical of its model fires.)

**Which clock.** Timers run on each model's clock (:mod:`alerting.event_clock`): the wall
clock while the model's detections describe the present (live), the detections' event
time otherwise (a replay or backtest of history). A transition happens at its due time —
``pending_since + for`` for firing, ``inactive_since + keep_firing_for`` or
``last_observed + stale_after`` for resolving — whichever observation or tick first sees
the clock past it, and the record carries that time as ``event_time_ms``. Due transitions
are applied before the observation that reveals them (an observation's value holds until
the next one); one due exactly at an observation's time is decided by that observation (as
a Prometheus rule evaluated then would), so the timeline does not depend on how detections
of different stages interleave. Liveness rules (``liveness: true``, i.e. ``no_traffic``)
only count while the model is live. ``fired_at_ms`` and ``resolved_at_ms`` stay wall-clock times.

The wall clock comes from an injected clock (milliseconds), so every timing is unit-testable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from alerting.event_clock import EventClocks
from alerting.fingerprint import fingerprint
from alerting.policy import SEVERITY_RANK, Policy, Rule
from alerting.silences import SilenceStore
from schemas.detection import Detection

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Alert:
    fingerprint: str
    rule: Rule
    detection: Detection
    state: str  # "pending" | "firing"
    pending_since_ms: int  # this and the next two: on the (model, kind) clock
    last_observed_ms: int
    inactive_since_ms: int | None = None
    fired_event_ms: int = 0  # model clock when it started firing
    fired_at_ms: int = 0  # wall clock when it started firing
    alert_id: str = ""
    emitted: bool = False


def _summary(rule: Rule, det: Detection) -> str:
    fields = {
        "model": det.model, "model_version": det.model_version, "kind": str(det.kind),
        "subject": det.subject, "detector": det.detector, "value": det.value,
        "threshold": det.threshold, "severity": rule.severity,
    }
    fields["explained_by"] = det.details.get("explained_by", "")
    if rule.summary:
        try:
            return rule.summary.format(**fields)
        except (KeyError, IndexError, ValueError):
            pass  # a bad template must not lose the alert; fall back to the default
    text = (f"{det.kind} on {det.model}/{det.subject}: {det.detector} = {det.value:.4g} "
            f"(threshold {det.threshold:.4g})")
    explained_by = det.details.get("explained_by")
    return f"{text}; explained by {explained_by}" if explained_by else text


class AlertLifecycle:
    """Alert state machine keyed by fingerprint. Not thread-safe: one owner calls it."""

    def __init__(self, policy: Policy, clock: Clock = wall_clock_ms,
                 silences: SilenceStore | None = None) -> None:
        self.policy = policy
        self.clock = clock
        self.silences = silences if silences is not None else SilenceStore()
        self.clocks = EventClocks(policy.live_within_ms)
        self._alerts: dict[str, _Alert] = {}
        self.ignored_kinds: dict[str, int] = {}
        self.ignored_not_live: dict[str, int] = {}

    # -- input -------------------------------------------------------------------------
    def observe(self, det: Detection) -> list[dict[str, Any]]:
        """Apply one detection; return the AlertEvent records this causes (maybe none)."""
        wall = self.clock()
        kind = str(det.kind)
        rule = self.policy.rule(kind)
        if rule is None:
            self.ignored_kinds[kind] = self.ignored_kinds.get(kind, 0) + 1
            return self.tick()
        self.clocks.advance(det.model, kind, int(det.event_time_ms), wall)
        now = self.clocks.now(det.model, kind, wall)
        active = rule.is_active(det.active, det.value)
        if active and rule.liveness and not self.clocks.live(det.model):
            # history is not an outage: liveness only counts while event time is current
            self.ignored_not_live[kind] = self.ignored_not_live.get(kind, 0) + 1
            active = False
        fp = fingerprint(det.model, kind, det.subject, rule.labels)
        events: list[dict[str, Any]] = []
        alert = self._alerts.get(fp)
        if alert is not None:  # what fell due before this observation happens first
            events += self._advance(alert, now - 1, wall)
            alert = self._alerts.get(fp)
        if active:
            if alert is None:
                self._alerts[fp] = _Alert(fp, rule, det, "pending", pending_since_ms=now,
                                          last_observed_ms=now)
            else:
                alert.detection = det
                alert.last_observed_ms = now
                alert.inactive_since_ms = None
        elif alert is not None:
            if alert.state == "pending":
                del self._alerts[fp]
            else:
                alert.detection = det
                alert.last_observed_ms = now
                if alert.inactive_since_ms is None:
                    alert.inactive_since_ms = now
        return events + self.tick()

    def restore(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rebuild firing state from the alerts topic (read from the beginning).

        The last event per fingerprint wins; alerts whose last event is ``firing`` are open
        again (published, so they will be resolved later). Alerts whose rule no longer
        exists are resolved at once: the returned events close them.
        """
        last: dict[str, dict[str, Any]] = {}
        for ev in events:
            last[ev["fingerprint"]] = ev
        wall = self.clock()
        out: list[dict[str, Any]] = []
        for fp, ev in last.items():
            if ev["status"] != "firing":
                self._alerts.pop(fp, None)
                continue
            det = Detection(
                model=ev["model"], kind=ev["kind"], subject=ev["subject"],
                detector=ev["detector"], value=ev["value"], threshold=ev["threshold"],
                event_time_ms=ev["detected_at_ms"], model_version=ev.get("model_version", ""),
                window_start_ms=ev.get("window_start_ms"), window_end_ms=ev.get("window_end_ms"),
            )
            rule = self.policy.rule(ev["kind"])
            if rule is None:
                resolved = dict(ev, status="resolved", resolved_at_ms=wall)
                out.append(resolved)
                continue
            self.clocks.advance(det.model, str(det.kind), int(det.event_time_ms), wall)
            now = self.clocks.now(det.model, str(det.kind), wall)
            fired_event = ev.get("event_time_ms")
            self._alerts[fp] = _Alert(fp, rule, det, "firing", pending_since_ms=now,
                                      last_observed_ms=now,
                                      fired_event_ms=now if fired_event is None else fired_event,
                                      fired_at_ms=ev["fired_at_ms"],
                                      alert_id=ev["alert_id"], emitted=True)
        return out

    # -- time --------------------------------------------------------------------------
    def _advance(self, alert: _Alert, now: int, wall: int) -> list[dict[str, Any]]:
        """Apply the transitions of ``alert`` due at or before ``now`` (its clock), at their
        due times; returns the events this publishes (firing unless muted, resolved)."""
        rule, fp = alert.rule, alert.fingerprint
        events: list[dict[str, Any]] = []
        stale_at = alert.last_observed_ms + rule.stale_after_ms
        if alert.state == "pending":
            fire_at = alert.pending_since_ms + rule.for_ms
            if stale_at < fire_at and stale_at <= now:
                del self._alerts[fp]
                return []
            if fire_at > now:
                return []
            alert.state = "firing"
            alert.fired_event_ms = fire_at
            alert.fired_at_ms = wall
            alert.alert_id = f"{fp}-{fire_at}"
            events += self._publish_firing(alert, wall)
        end = stale_at
        if alert.inactive_since_ms is not None:
            end = min(end, alert.inactive_since_ms + rule.keep_firing_for_ms)
        if end > now:
            return events
        del self._alerts[fp]
        return events + ([self._event(alert, "resolved", wall, end)] if alert.emitted else [])

    def _publish_firing(self, alert: _Alert, wall: int) -> list[dict[str, Any]]:
        if alert.emitted or self._muted(alert, self._inhibited_models(), wall):
            return []
        alert.emitted = True
        return [self._event(alert, "firing", wall, alert.fired_event_ms)]

    def _inhibited_models(self) -> set[str]:
        return {a.detection.model for a in self._alerts.values()
                if a.state == "firing" and a.rule.severity == "critical"}

    def tick(self) -> list[dict[str, Any]]:
        """Advance timers (pending → firing, keep_firing_for, staleness, mutes)."""
        wall = self.clock()
        events: list[dict[str, Any]] = []
        by_severity = sorted(self._alerts.values(), key=lambda a: SEVERITY_RANK[a.rule.severity])
        for alert in by_severity:  # criticals first: they inhibit what fires with them
            det = alert.detection
            if self._alerts.get(alert.fingerprint) is not alert:
                continue
            now = self.clocks.now(det.model, str(det.kind), wall)
            # on event time, what is due exactly now waits for this alert's own observation
            # at now (if any): another subject's verdict at the same time must not decide it
            if not self.clocks.live(det.model) and alert.last_observed_ms < now:
                now -= 1
            events += self._advance(alert, now, wall)
        for alert in sorted(self._alerts.values(), key=lambda a: SEVERITY_RANK[a.rule.severity]):
            if alert.state == "firing":  # muted until now: published when the mute lifts
                events += self._publish_firing(alert, wall)
        return events

    def _muted(self, alert: _Alert, inhibited_models: set[str], now: int) -> bool:
        det = alert.detection
        if alert.rule.severity != "critical" and det.model in inhibited_models:
            return True
        return self.silences.is_silenced(det.model, str(det.kind), now)

    # -- output ------------------------------------------------------------------------
    def _event(self, alert: _Alert, status: str, now: int, event_time_ms: int) -> dict[str, Any]:
        """One AlertEvent record; ``now`` is the wall clock, ``event_time_ms`` the model
        clock at the transition."""
        det, rule = alert.detection, alert.rule
        return {
            "alert_id": alert.alert_id,
            "fingerprint": alert.fingerprint,
            "model": det.model,
            "model_version": det.model_version,
            "severity": rule.severity,
            "status": status,
            "kind": str(det.kind),
            "subject": det.subject,
            "detector": det.detector,
            "value": float(det.value),
            "threshold": float(det.threshold),
            "window_start_ms": det.window_start_ms,
            "window_end_ms": det.window_end_ms,
            "detected_at_ms": int(det.event_time_ms),
            "fired_at_ms": alert.fired_at_ms,
            "resolved_at_ms": now if status == "resolved" else None,
            "event_time_ms": int(event_time_ms),
            "summary": _summary(rule, det),
            "runbook_url": rule.runbook_url,
            "labels": dict(rule.labels),
        }

    def firing(self, include_muted: bool = False) -> list[dict[str, Any]]:
        """AlertEvent records (status firing) of every open alert."""
        now = self.clock()
        return [self._event(a, "firing", now, a.fired_event_ms) for a in self._alerts.values()
                if a.state == "firing" and (a.emitted or include_muted)]

    def pending_count(self) -> int:
        return sum(1 for a in self._alerts.values() if a.state == "pending")

    def active_subjects(self, model: str, kind: str) -> list[str]:
        """Subjects of one model and kind whose condition holds now, pending or firing
        (evidence for retraining: e.g. the features drifting when dataset drift fires)."""
        return sorted(a.detection.subject for a in self._alerts.values()
                      if a.inactive_since_ms is None and a.detection.model == model
                      and str(a.detection.kind) == kind)

    def detection_of(self, fp: str) -> Detection | None:
        alert = self._alerts.get(fp)
        return alert.detection if alert else None
