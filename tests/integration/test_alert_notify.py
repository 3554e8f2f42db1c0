"""The notifier against the real embedded broker and real receivers on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.topics import TopicNames
from tests.integration.test_alert_support import (  # noqa: F401 - fixtures
    NotifierThread,
    RecordingServer,
    alert_event,
    http_server_fixture,
    metric,
    of,
    produce_alerts,
    read_records,
    routes_config,
    topics_fixture,
    wait_past_duplicates,
    wait_until,
)

pytestmark = pytest.mark.integration
SECRET_PATH = "/hooks/T000/B000/s3cr3t-token"


def test_webhook_failing_three_times_then_succeeding_delivers_exactly_once(
        kafka_bootstrap: str, topics: TopicNames, http_server: RecordingServer,
        tmp_path: Path) -> None:
    http_server.statuses = [503, 503, 503]
    routes = routes_config({"hook": {"type": "webhook", "url_env": "HOOK_URL"}}, ["hook"])
    env = {"HOOK_URL": http_server.url + SECRET_PATH}
    with NotifierThread(kafka_bootstrap, topics, routes, env, tmp_path) as notifier:
        produce_alerts(kafka_bootstrap, topics, [alert_event()])
        wait_until(http_server.ok, 30, "a delivered webhook")
        wait_until(lambda: notifier.tracker.held() == 0, 10, "offset released")
        assert metric(notifier, "modelwatch_notifications_total", sink="hook",
                      outcome="delivered") == 1
        assert metric(notifier, "modelwatch_notification_attempts_total", sink="hook") == 4
        wait_past_duplicates(kafka_bootstrap, topics, [notifier], http_server)
        assert len(of(http_server, "fp-1")) == 1
        assert [r.status for r in of(http_server, "fp-1", ok=False)] == [503, 503, 503, 200]
        keys = {r.headers["Idempotency-Key"] for r in of(http_server, "fp-1", ok=False)}
        assert len(keys) == 1  # every retry is the same notification
        body = of(http_server, "fp-1")[0].body
        assert body["status"] == "firing" and body["alerts"][0]["fingerprint"] == "fp-1"
        assert body["alerts"][0]["idempotency_key"].startswith("all|fp-1|")
        assert of(http_server, "fp-1")[0].path == SECRET_PATH


def test_firing_then_resolved_gives_both_notifications_with_send_resolved(
        kafka_bootstrap: str, topics: TopicNames, http_server: RecordingServer,
        tmp_path: Path) -> None:
    routes = routes_config(
        {"hook": {"type": "webhook", "url_env": "HOOK_URL"},
         "slack": {"type": "slack", "url_env": "SLACK_URL"}}, ["hook", "slack"])
    env = {"HOOK_URL": http_server.url + "/generic", "SLACK_URL": http_server.url + "/slack"}
    with NotifierThread(kafka_bootstrap, topics, routes, env, tmp_path) as notifier:
        firing = alert_event("fp-2")
        produce_alerts(kafka_bootstrap, topics, [firing])
        wait_until(lambda: len(http_server.ok()) == 2, 30, "firing to both sinks")
        produce_alerts(kafka_bootstrap, topics, [dict(firing, status="resolved",
                                                      resolved_at_ms=firing["fired_at_ms"] + 5)])
        wait_until(lambda: len(http_server.ok()) == 4, 30, "resolved to both sinks")
        generic = [r.body for r in http_server.ok() if r.path == "/generic"]
        assert [b["status"] for b in generic] == ["firing", "resolved"]
        assert generic[1]["alerts"][0]["alert_id"] == firing["alert_id"]
        slack = [r.body for r in http_server.ok() if r.path == "/slack"]
        assert slack[0]["text"].startswith("[FIRING:1] critical churn")
        assert slack[0]["blocks"][0]["type"] == "header"
        assert "no traffic" in slack[0]["blocks"][1]["text"]["text"]
        assert slack[1]["text"].startswith("[RESOLVED:1]")
        wait_until(lambda: notifier.tracker.held() == 0, 10, "offsets released")


def test_no_resolved_notification_without_send_resolved(
        kafka_bootstrap: str, topics: TopicNames, http_server: RecordingServer,
        tmp_path: Path) -> None:
    routes = routes_config({"hook": {"type": "webhook", "url_env": "HOOK_URL"}}, ["hook"],
                           send_resolved=False)
    with NotifierThread(kafka_bootstrap, topics, routes, {"HOOK_URL": http_server.url},
                        tmp_path) as notifier:
        firing = alert_event("fp-3")
        produce_alerts(kafka_bootstrap, topics, [firing])
        wait_until(http_server.ok, 30, "the firing notification")
        produce_alerts(kafka_bootstrap, topics, [dict(firing, status="resolved")])
        wait_until(lambda: sum(notifier.tracker.committable().values()) == 2
                   and notifier.tracker.held() == 0, 30, "the resolved event processed")
        wait_past_duplicates(kafka_bootstrap, topics, [notifier], http_server)
        assert [r.body["status"] for r in of(http_server, "fp-3")] == ["firing"]


def test_failing_sink_is_dead_lettered_without_holding_up_the_healthy_one(
        kafka_bootstrap: str, topics: TopicNames, http_server: RecordingServer,
        tmp_path: Path) -> None:
    broken = RecordingServer(statuses=[500] * 100).start()
    try:
        routes = routes_config(
            {"good": {"type": "webhook", "url_env": "GOOD_URL"},
             "bad": {"type": "webhook", "url_env": "BAD_URL"}}, ["good", "bad"],
            retry={"base": "300ms", "factor": 2, "max_delay": "1s", "jitter": 0,
                   "max_attempts": 4, "budget": "10s"})
        env = {"GOOD_URL": http_server.url, "BAD_URL": broken.url + SECRET_PATH}
        with NotifierThread(kafka_bootstrap, topics, routes, env, tmp_path) as notifier:
            produce_alerts(kafka_bootstrap, topics, [alert_event("fp-4")])
            wait_until(http_server.ok, 30, "the healthy sink")
            # the healthy sink got it while the broken one is still retrying
            assert metric(notifier, "modelwatch_notification_dead_letters_total", sink="bad") == 0
            wait_until(lambda: metric(notifier, "modelwatch_notification_dead_letters_total",
                                      sink="bad") == 1, 30, "the dead letter")
            wait_until(lambda: notifier.tracker.held() == 0, 10, "offset released")
        assert len(broken.requests) == 4
        (dead,) = read_records(kafka_bootstrap, topics.notify_dead_letter, "DeadLetter")
        assert dead["error_kind"] == "delivery" and dead["component"] == "notifier"
        assert dead["source_topic"] == topics.alerts and dead["source_offset"] == 0
        assert "HTTP 500" in dead["reason"] and "bad" in dead["reason"]
        assert "s3cr3t" not in dead["reason"]  # the secret URL path is redacted
        assert dead["key"] == b"fp-4"
    finally:
        broken.stop()


def test_email_over_smtp_with_auth(kafka_bootstrap: str, topics: TopicNames,
                                   tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from modelwatch.broker import free_port

    received = []
    logins = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
            received.append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"hunter2"
        logins.append((auth_data.login, ok))
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        routes = routes_config({"mail": {"type": "email", "host": "127.0.0.1", "port": port,
                                         "from": "modelwatch@localhost",
                                         "to": ["oncall@localhost"], "username": "mw",
                                         "password_env": "SMTP_PASSWORD"}}, ["mail"])
        env = {"SMTP_PASSWORD": "hunter2"}
        with NotifierThread(kafka_bootstrap, topics, routes, env, tmp_path):
            produce_alerts(kafka_bootstrap, topics, [alert_event("fp-5", model="fraud")])
            wait_until(lambda: received, 30, "an email")
        (mail,) = received
        assert mail.rcpt_tos == ["oncall@localhost"]
        text = mail.content.decode()
        assert "Subject: [modelwatch] [FIRING:1] critical fraud" in text
        assert "fraud receives no traffic" in text and "runbook:" in text
        assert logins == [(b"mw", True)]
    finally:
        controller.stop()


def test_email_over_starttls_with_auth(kafka_bootstrap: str, topics: TopicNames,
                                       tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from modelwatch.broker import free_port

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    received, tls_seen = [], []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
            tls_seen.append(session.ssl is not None)
            received.append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            authenticator=authenticator, require_starttls=True,
                            tls_context=server_ctx)  # auth only after STARTTLS (default)
    controller.start()
    try:
        routes = routes_config({"mail": {"type": "email", "host": "127.0.0.1", "port": port,
                                         "starttls": True, "ca_file": str(cert),
                                         "from": "modelwatch@localhost", "to": "oncall@localhost",
                                         "username": "mw", "password_env": "SMTP_PASSWORD"}},
                               ["mail"])
        with NotifierThread(kafka_bootstrap, topics, routes, {"SMTP_PASSWORD": "s3cret"},
                            tmp_path) as notifier:
            produce_alerts(kafka_bootstrap, topics, [alert_event("fp-6")])
            wait_until(lambda: received, 30, "an email over STARTTLS")
            wait_until(lambda: metric(notifier, "modelwatch_notifications_total", sink="mail",
                                      outcome="delivered") == 1, 10, "the delivered metric")
        assert tls_seen == [True]
        assert "[FIRING:1] critical churn" in received[0].content.decode()
    finally:
        controller.stop()


def test_two_notifiers_in_one_group_deliver_each_alert_once(
        kafka_bootstrap: str, topics: TopicNames, http_server: RecordingServer,
        tmp_path: Path) -> None:
    routes = routes_config({"hook": {"type": "webhook", "url_env": "HOOK_URL"}}, ["hook"],
                           group_by=["fingerprint"])
    env = {"HOOK_URL": http_server.url}
    with NotifierThread(kafka_bootstrap, topics, routes, env, tmp_path / "a", "shared") as one, \
            NotifierThread(kafka_bootstrap, topics, routes, env, tmp_path / "b", "shared") as two:
        wait_until(lambda: one.assigned and two.assigned
                   and len(one.assigned | two.assigned) == 4, 30, "the group settled")
        events = [alert_event(f"fp-{i}", model=f"m{i}") for i in range(12)]
        produce_alerts(kafka_bootstrap, topics, events)
        wait_until(lambda: len(http_server.ok()) >= 12, 30, "every alert delivered")

        def delivered() -> list[float]:
            return [metric(n, "modelwatch_notifications_total", sink="hook",
                           outcome="delivered") for n in (one, two)]

        wait_until(lambda: sum(delivered()) == 12, 10, "12 deliveries counted")
        assert min(delivered()) > 0  # the work was shared
        wait_past_duplicates(kafka_bootstrap, topics, [one, two], http_server)
        got = sorted(r.body["alerts"][0]["fingerprint"] for r in http_server.ok()
                     if not r.body["alerts"][0]["fingerprint"].startswith("sentinel-"))
        assert got == sorted(e["fingerprint"] for e in events)  # each exactly once
