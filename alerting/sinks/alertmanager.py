"""Alertmanager sink: ``POST /api/v2/alerts``, so existing Alertmanager set-ups get our alerts.

Labels identify the alert (Alertmanager fingerprints them): ``alertname`` (the kind),
``model``, ``severity``, ``subject``, ``source="modelwatch"`` (Prometheus's own rules carry
``source="prometheus"``) and the rule labels; annotations carry summary, runbook, value,
threshold, detector and our alert id. ``generatorURL`` is the sink's ``generator_url``
template (``{model}``, ``{kind}``, ``{subject}``, ``{fingerprint}``, ``{alert_id}``, URL-quoted;
e.g. a Grafana dashboard filtered on the model), else the alert's runbook.

``endsAt`` works the way Prometheus does it: a firing alert is sent with
``endsAt = now + 4 × resend_interval`` and re-sent every ``resend_interval`` (default 1 min)
while it fires -- :meth:`AlertmanagerSink.refresh`, driven by the notifier with the open
alerts of the sink's routes, restored ones included after a restart. A notifier that dies
therefore lets its alerts expire in Alertmanager within minutes instead of days, and a
long ``repeat_interval`` (24 h for minor alerts) no longer keeps anything open. Resolved
alerts are sent with ``endsAt`` = their resolution time.

Connection settings (sink config): ``url`` or ``url_env``; ``bearer_token_env`` or
``username`` + ``password_env`` (basic auth, e.g. Alertmanager's ``--web.config.file``);
``ca_file`` (a private CA for an https URL); ``timeout``; ``resend_interval``.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from alerting.grouping import Notification
from alerting.sinks.base import iso, post_json, redact

log = logging.getLogger("modelwatch.notifier")
RESEND_INTERVAL_MS = 60_000
ENDS_AFTER_RESENDS = 4  # Prometheus: endsAt = now + 4 × max(resend delay, evaluation interval)


def generator_url(a: Mapping[str, Any], template: str | None) -> str:
    if template:
        fields = {k: quote(str(a.get(k, "")), safe="")
                  for k in ("model", "kind", "subject", "fingerprint", "alert_id")}  # fmt: skip
        return template.format(**fields)
    return str(a.get("runbook_url") or "")


def am_alert(a: dict[str, Any], ends_at_ms: int, url_template: str | None = None) -> dict[str, Any]:
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
    out = {"labels": labels, "annotations": annotations, "startsAt": iso(a["fired_at_ms"]),
           "endsAt": iso(ends_at_ms)}
    url = generator_url(a, url_template)
    if url:
        out["generatorURL"] = url
    return out


def firing_ends_at(now_ms: int, resend_interval_ms: int = RESEND_INTERVAL_MS) -> int:
    return now_ms + ENDS_AFTER_RESENDS * resend_interval_ms


def alertmanager_payload(n: Notification, now_ms: int | None = None,
                         resend_interval_ms: int = RESEND_INTERVAL_MS,
                         url_template: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    ends = firing_ends_at(now_ms, resend_interval_ms)
    out = [am_alert(a, ends, url_template) for a in n.firing]
    out += [am_alert(a, a.get("resolved_at_ms") or now_ms, url_template) for a in n.resolved]
    return out


class AlertmanagerSink:
    def __init__(
        self,
        name: str,
        base_url: str,
        timeout_s: float = 10.0,
        *,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        ca_file: str | None = None,
        resend_interval_ms: int = RESEND_INTERVAL_MS,
        generator_url: str | None = None,
    ) -> None:
        if bearer_token and basic_auth:
            raise ValueError(f"sink {name!r}: bearer token or basic auth, not both")
        self.name = name
        self._url = base_url.rstrip("/") + "/api/v2/alerts"
        self._headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {}
        self._secrets = [bearer_token, basic_auth[1] if basic_auth else None]
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_file) if ca_file else True
        )
        self._client = httpx.Client(timeout=timeout_s, auth=basic_auth, verify=verify)
        self.resend_interval_ms = resend_interval_ms
        self.generator_url = generator_url
        self._last_refresh_ms = 0
        self._lock = threading.Lock()

    def _post(self, payload: list[dict[str, Any]]) -> None:
        post_json(self._client, self.name, self._url, payload, self._headers)

    def send(self, notification: Notification) -> None:
        self._post(alertmanager_payload(notification, resend_interval_ms=self.resend_interval_ms,
                                        url_template=self.generator_url))  # fmt: skip

    def refresh(self, firing: Sequence[dict[str, Any]], now_ms: int | None = None) -> bool:
        """Re-send ``firing`` (the open alerts of this sink's routes) with a fresh ``endsAt``
        when ``resend_interval`` has passed since the last refresh; True when it did. A
        failure is logged (secrets redacted) and tried again at the next interval."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self._lock:
            if now_ms - self._last_refresh_ms < self.resend_interval_ms:
                return False
            self._last_refresh_ms = now_ms
        if not firing:
            return False
        ends = firing_ends_at(now_ms, self.resend_interval_ms)
        try:
            self._post([am_alert(a, ends, self.generator_url) for a in firing])
        except Exception as exc:  # noqa: BLE001 - a refresh never stops the notifier
            log.warning("refresh of %d alert(s) to %s failed: %s", len(firing), self.name,
                        redact(f"{type(exc).__name__}: {exc}", *self._secrets))  # fmt: skip
            return False
        return True

    def __repr__(self) -> str:
        return f"AlertmanagerSink({self.name!r})"
