"""Sink payloads, secrets and redaction, the sent-key log and the offset tracker."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from alerting.grouping import Notification
from alerting.offsets import OffsetTracker
from alerting.routes import Route
from alerting.sentlog import SentLog
from alerting.sinks import SinkConfigError, build_sink
from alerting.sinks.alertmanager import alertmanager_payload
from alerting.sinks.base import redact, title
from alerting.sinks.email import EmailSink
from alerting.sinks.log import LogSink
from alerting.sinks.slack import MAX_ALERT_BLOCKS, slack_payload
from alerting.sinks.webhook import webhook_payload

ROUTE = Route(name="crit", sinks=("x",), repeat_interval_ms=300_000)


def alert(fp: str, status: str = "firing", severity: str = "critical") -> dict[str, Any]:
    return {"alert_id": f"{fp}-1", "fingerprint": fp, "model": "churn", "model_version": "3",
            "severity": severity, "status": status, "kind": "no_traffic", "subject": "traffic",
            "detector": "heartbeat", "value": 120.0, "threshold": 60.0,
            "window_start_ms": 0, "window_end_ms": 60_000, "detected_at_ms": 60_000,
            "fired_at_ms": 1_000, "resolved_at_ms": 9_000 if status == "resolved" else None,
            "summary": "churn gets no traffic", "runbook_url": "https://runbooks/x",
            "labels": {"team": "ds"}}


def notification(firing: list, resolved: list | None = None) -> Notification:
    resolved = resolved or []
    keys = {f"{a['fingerprint']}/{a['status']}": f"crit|{a['fingerprint']}|{a['status']}|0"
            for a in firing + resolved}
    return Notification(ROUTE, "crit{model=churn}", {"model": "churn"}, firing, resolved, keys, 0)


def test_webhook_payload_carries_every_alert_field_and_its_key() -> None:
    body = webhook_payload("hook", notification([alert("a")], [alert("b", "resolved")]))
    assert body["status"] == "firing" and body["route"] == "crit"
    assert body["alerts"][0]["idempotency_key"] == "crit|a|firing|0"
    assert body["alerts"][1]["status"] == "resolved"
    assert set(alert("a")) <= set(body["alerts"][0])


def test_titles() -> None:
    assert title(notification([alert("a")])) == "[FIRING:1] critical churn"
    assert title(notification([], [alert("a", "resolved")])) == "[RESOLVED:1] critical churn"
    assert title(notification([alert("a")], [alert("b", "resolved")])).startswith(
        "[FIRING:1 RESOLVED:1]")


def test_slack_blocks_are_bounded() -> None:
    many = [alert(f"f{i}") for i in range(30)]
    body = slack_payload(notification(many))
    assert body["text"] == "[FIRING:30] critical churn"
    assert body["blocks"][0]["type"] == "header"
    assert len(body["blocks"]) == 1 + MAX_ALERT_BLOCKS + 1
    assert "10 more" in body["blocks"][-1]["elements"][0]["text"]
    assert "<https://runbooks/x|runbook>" in body["blocks"][1]["text"]["text"]


def test_alertmanager_payload_labels_and_ends_at() -> None:
    firing, resolved = alertmanager_payload(
        notification([alert("a")], [alert("b", "resolved")]), now_ms=100_000)
    assert firing["labels"] == {"alertname": "no_traffic", "model": "churn",
                                "severity": "critical", "subject": "traffic",
                                "source": "modelwatch", "team": "ds"}
    assert firing["startsAt"] == "1970-01-01T00:00:01.000Z"
    assert firing["endsAt"] == "1970-01-01T00:16:40.000Z"  # now + 3 × 5 min
    assert resolved["endsAt"] == "1970-01-01T00:00:09.000Z"
    assert firing["annotations"]["runbook_url"] == "https://runbooks/x"


def test_email_message() -> None:
    sink = EmailSink("mail", "127.0.0.1", 25, "mw@localhost", ["a@localhost", "b@localhost"])
    msg = sink.message(notification([alert("a")]))
    assert msg["Subject"] == "[modelwatch] [FIRING:1] critical churn"
    assert msg["To"] == "a@localhost, b@localhost"
    assert "churn gets no traffic" in msg.get_content()


def test_log_sink_prints_severity() -> None:
    out = io.StringIO()
    LogSink("console", Console(file=out, width=200)).send(notification([alert("a")]))
    text = out.getvalue()
    assert "CRITICAL" in text and "churn gets no traffic" in text


def test_secrets_come_from_env_and_are_redacted() -> None:
    with pytest.raises(SinkConfigError, match="HOOK_URL is not set") as err:
        build_sink("hook", {"type": "webhook", "url_env": "HOOK_URL"}, env={})
    with pytest.raises(SinkConfigError, match="url_env"):
        build_sink("hook", {"type": "slack"}, env={})
    url = "https://hooks.example.org/services/T0/B0/s3cr3t"
    sink = build_sink("hook", {"type": "slack", "url_env": "HOOK_URL"}, env={"HOOK_URL": url})
    assert "s3cr3t" not in repr(sink) and "s3cr3t" not in str(err.value)
    msg = redact(f"POST {url} failed; password hunter2", "hunter2")
    assert msg == "POST https://hooks.example.org/<redacted> failed; password <redacted>"
    with pytest.raises(SinkConfigError, match="email needs 'to'"):
        build_sink("mail", {"type": "email", "host": "h", "from": "f"}, env={})


def test_sent_log_survives_reopen_and_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "n.sent"
    log = SentLog(path)
    log.add(["a", "b"])
    log.add(["b"])
    log.close()
    with open(path, "a") as f:
        f.write("12")  # a torn line after a SIGKILL
    again = SentLog(path)
    assert again.has("a") and again.has("b") and not again.has("c") and len(again) == 2
    again.close()
    expired = SentLog(path, max_age_ms=-1)
    assert len(expired) == 0
    expired.close()


def test_offset_tracker_commits_only_contiguous_done_offsets() -> None:
    t = OffsetTracker()
    t.add(0, 0, refs=2)
    t.add(0, 1, refs=1)
    t.add(1, 10, refs=0)
    assert t.committable() == {0: 0, 1: 11}
    t.release(0, 1)
    assert t.committable() == {0: 0, 1: 11}
    t.release(0, 0)
    assert t.committable() == {0: 0, 1: 11}
    t.release(0, 0)
    assert t.committable() == {0: 2, 1: 11}
    t.forget([0])
    assert t.committable() == {1: 11}
