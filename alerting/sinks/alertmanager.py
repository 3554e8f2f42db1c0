"""Alertmanager sink: ``POST /api/v2/alerts``, so existing Alertmanager set-ups get our alerts.

Labels identify the alert (Alertmanager fingerprints them): ``alertname`` (the kind),
``model``, ``severity``, ``subject``, ``source="modelwatch"`` and the rule labels;
annotations carry summary, runbook, value, threshold, detector and our alert id.
Firing alerts get ``endsAt`` = now + 3 repeat intervals (refreshed by every repeat, so
Alertmanager keeps them open while we do); resolved alerts get ``endsAt`` = resolution time.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from alerting.grouping import Notification
from alerting.sinks.base import iso, post_json


def am_alert(a: dict[str, Any], ends_at_ms: int) -> dict[str, Any]:
    labels = {str(k): str(v) for k, v in a.get("labels", {}).items()}
    labels.update({"alertname": a["kind"], "model": a["model"], "severity": a["severity"],
                   "subject": a["subject"], "source": "modelwatch"})
    annotations = {
        "summary": a["summary"], "value": f"{a['value']:.6g}",
        "threshold": f"{a['threshold']:.6g}", "detector": a["detector"],
        "alert_id": a["alert_id"], "fingerprint": a["fingerprint"],
    }
    if a.get("runbook_url"):
        annotations["runbook_url"] = a["runbook_url"]
    if a.get("model_version"):
        annotations["model_version"] = a["model_version"]
    return {"labels": labels, "annotations": annotations, "startsAt": iso(a["fired_at_ms"]),
            "endsAt": iso(ends_at_ms)}


def alertmanager_payload(n: Notification, now_ms: int | None = None) -> list[dict[str, Any]]:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    out = [am_alert(a, now_ms + 3 * n.route.repeat_interval_ms) for a in n.firing]
    out += [am_alert(a, a.get("resolved_at_ms") or now_ms) for a in n.resolved]
    return out


class AlertmanagerSink:
    def __init__(self, name: str, base_url: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self._url = base_url.rstrip("/") + "/api/v2/alerts"
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, notification: Notification) -> None:
        post_json(self._client, self.name, self._url, alertmanager_payload(notification))

    def __repr__(self) -> str:
        return f"AlertmanagerSink({self.name!r})"
