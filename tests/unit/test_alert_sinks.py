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
    # like Prometheus: now + 4 resend intervals (1 min), whatever the repeat interval
    assert firing["endsAt"] == "1970-01-01T00:05:40.000Z"
    assert resolved["endsAt"] == "1970-01-01T00:00:09.000Z"
    assert firing["annotations"]["runbook_url"] == "https://runbooks/x"
    assert firing["generatorURL"] == "https://runbooks/x"  # no template: the runbook


def test_alertmanager_generator_url_template_is_url_quoted() -> None:
    a = dict(alert("a"), model="churn v2/eu")
    (body,) = alertmanager_payload(
        notification([a]), now_ms=0,
        url_template="https://grafana/d/modelwatch-drift?var-model={model}&fp={fingerprint}")
    assert body["generatorURL"] == "https://grafana/d/modelwatch-drift?var-model=churn%20v2%2Feu&fp=a"
    a.pop("runbook_url")
    assert "generatorURL" not in alertmanager_payload(notification([a]), now_ms=0)[0]


def test_alertmanager_sink_settings_are_strict_and_secrets_come_from_env(tmp_path: Path) -> None:
    env = {"AM_URL": "http://127.0.0.1:9", "AM_TOKEN": "tok", "AM_PASS": "pw"}
    sink = build_sink("am", {"type": "alertmanager", "url_env": "AM_URL",
                             "bearer_token_env": "AM_TOKEN", "resend_interval": "30s"}, env)
    assert sink.resend_interval_ms == 30_000  # type: ignore[attr-defined]
    assert "tok" not in repr(sink)
    with pytest.raises(SinkConfigError, match="unknown keys"):
        build_sink("am", {"type": "alertmanager", "url": "http://x", "token": "t"}, env)
    with pytest.raises(SinkConfigError, match="not both"):
        build_sink("am", {"type": "alertmanager", "url": "http://x", "bearer_token_env": "AM_TOKEN",
                          "username": "u", "password_env": "AM_PASS"}, env)
    with pytest.raises(SinkConfigError, match="both 'username' and 'password_env'"):
        build_sink("am", {"type": "alertmanager", "url": "http://x", "username": "u"}, env)
    with pytest.raises(SinkConfigError, match="AM_NOPE is not set"):
        build_sink("am", {"type": "alertmanager", "url": "http://x",
                          "bearer_token_env": "AM_NOPE"}, env)
    with pytest.raises(SinkConfigError, match="is not a file"):
        build_sink("am", {"type": "alertmanager", "url": "https://x",
                          "ca_file": str(tmp_path / "missing.pem")}, env)


def test_alertmanager_refresh_resends_every_interval_with_fresh_ends_at() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[tuple[str | None, list[dict[str, Any]]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers.get("Authorization"), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sink = build_sink("am", {"type": "alertmanager",
                                 "url": f"http://127.0.0.1:{server.server_port}",
                                 "bearer_token_env": "T", "resend_interval": "10s"}, {"T": "tok"})
        refresh = sink.refresh  # type: ignore[attr-defined]
        assert refresh([alert("a")], now_ms=100_000) is True
        assert refresh([alert("a")], now_ms=105_000) is False  # within the interval
        assert refresh([alert("a")], now_ms=110_000) is True
        assert refresh([], now_ms=120_000) is False  # nothing open: nothing sent
        assert [g[0] for g in got] == ["Bearer tok", "Bearer tok"]
        assert [g[1][0]["endsAt"] for g in got] == ["1970-01-01T00:02:20.000Z",
                                                    "1970-01-01T00:02:30.000Z"]
    finally:
        server.shutdown()
        server.server_close()
    assert refresh([alert("a")], now_ms=200_000) is False  # a failure is logged, not raised


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
