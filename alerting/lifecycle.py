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

Time comes from an injected clock (milliseconds), so every timing is unit-testable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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
    pending_since_ms: int
    last_observed_ms: int
    inactive_since_ms: int | None = None
    fired_at_ms: int = 0
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
        self._alerts: dict[str, _Alert] = {}
        self.ignored_kinds: dict[str, int] = {}

    # -- input -------------------------------------------------------------------------
    def observe(self, det: Detection) -> list[dict[str, Any]]:
        """Apply one detection; return the AlertEvent records this causes (maybe none)."""
        now = self.clock()
        rule = self.policy.rule(det.kind)
        if rule is None:
            self.ignored_kinds[str(det.kind)] = self.ignored_kinds.get(str(det.kind), 0) + 1
            return self.tick()
        fp = fingerprint(det.model, str(det.kind), det.subject, rule.labels)
        alert = self._alerts.get(fp)
        if rule.is_active(det.active, det.value):
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
        return self.tick()

    def restore(self, events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rebuild firing state from the alerts topic (read from the beginning).

        The last event per fingerprint wins; alerts whose last event is ``firing`` are open
        again (published, so they will be resolved later). Alerts whose rule no longer
        exists are resolved at once: the returned events close them.
        """
        last: dict[str, dict[str, Any]] = {}
        for ev in events:
            last[ev["fingerprint"]] = ev
        now = self.clock()
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
                resolved = dict(ev, status="resolved", resolved_at_ms=now)
                out.append(resolved)
                continue
            self._alerts[fp] = _Alert(fp, rule, det, "firing", pending_since_ms=ev["fired_at_ms"],
                                      last_observed_ms=now, fired_at_ms=ev["fired_at_ms"],
                                      alert_id=ev["alert_id"], emitted=True)
        return out

    # -- time --------------------------------------------------------------------------
    def tick(self) -> list[dict[str, Any]]:
        """Advance timers (pending → firing, keep_firing_for, staleness, mutes)."""
        now = self.clock()
        events: list[dict[str, Any]] = []
        for fp in list(self._alerts):
            alert = self._alerts[fp]
            rule = alert.rule
            stale = now - alert.last_observed_ms >= rule.stale_after_ms
            if alert.state == "pending":
                if stale:
                    del self._alerts[fp]
                elif now - alert.pending_since_ms >= rule.for_ms:
                    alert.state = "firing"
                    alert.fired_at_ms = now
                    alert.alert_id = f"{fp}-{now}"
            elif stale or (alert.inactive_since_ms is not None
                           and now - alert.inactive_since_ms >= rule.keep_firing_for_ms):
                del self._alerts[fp]
                if alert.emitted:
                    events.append(self._event(alert, "resolved", now))
        inhibited_models = {a.detection.model for a in self._alerts.values()
                            if a.state == "firing" and a.rule.severity == "critical"}
        for alert in sorted(self._alerts.values(), key=lambda a: SEVERITY_RANK[a.rule.severity]):
            if alert.state != "firing" or alert.emitted:
                continue
            if self._muted(alert, inhibited_models, now):
                continue
            alert.emitted = True
            events.append(self._event(alert, "firing", now))
        return events

    def _muted(self, alert: _Alert, inhibited_models: set[str], now: int) -> bool:
        det = alert.detection
        if alert.rule.severity != "critical" and det.model in inhibited_models:
            return True
        return self.silences.is_silenced(det.model, str(det.kind), now)

    # -- output ------------------------------------------------------------------------
    def _event(self, alert: _Alert, status: str, now: int) -> dict[str, Any]:
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
            "summary": _summary(rule, det),
            "runbook_url": rule.runbook_url,
            "labels": dict(rule.labels),
        }

    def firing(self, include_muted: bool = False) -> list[dict[str, Any]]:
        """AlertEvent records (status firing) of every open alert."""
        now = self.clock()
        return [self._event(a, "firing", now) for a in self._alerts.values()
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
