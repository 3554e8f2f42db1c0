"""Helpers and fixtures for the alerting integration tests (no tests of its own).

Every test gets its own topic prefix on the shared session broker, so alerts of one test
never reach another's notifier. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alerting.notifier import Notifier
from alerting.routes import build_routes
from alerting.sinks import build_sinks
from schemas.codec import default_codec
from schemas.kafka import KafkaConfig, create_topics, partitions_of, read_to_end
from schemas.topics import TopicNames
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str,
               every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class RecordingServer:
    """A loopback HTTP server recording every POST; answers ``statuses`` in turn, then 200."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> RecordingServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with outer.lock:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.requests.append(Recorded(self.path, dict(self.headers),
                                                   json.loads(raw or b"null"), status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if status < 300 else b'{"error": "boom"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def ok(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.status < 300]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(name="http_server")
def http_server_fixture() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    yield server
    server.stop()


@pytest.fixture(name="topics")
def topics_fixture(kafka_bootstrap: str) -> TopicNames:
    """Fresh topics (every modelwatch topic, under a unique prefix) for one test."""
    names = TopicNames.with_prefix(f"t{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names.specs(4))
    return names


def alert_event(fp: str = "fp-1", status: str = "firing", severity: str = "critical",
                model: str = "churn", kind: str = "no_traffic", fired_at_ms: int | None = None,
                alert_id: str | None = None) -> dict[str, Any]:
    fired = fired_at_ms or int(time.time() * 1000)
    return {
        "alert_id": alert_id or f"{fp}-{fired}", "fingerprint": fp, "model": model,
        "model_version": "3", "severity": severity, "status": status, "kind": kind,
        "subject": "traffic", "detector": "heartbeat", "value": 0.0, "threshold": 1.0,
        "window_start_ms": None, "window_end_ms": None, "detected_at_ms": fired,
        "fired_at_ms": fired,
        "resolved_at_ms": fired + 1000 if status == "resolved" else None,
        "event_time_ms": fired + 1000 if status == "resolved" else fired,
        "summary": f"{model} receives no traffic", "runbook_url": "https://runbooks.example.org/x",
        "labels": {"team": "ds"},
    }


def produce_alerts(bootstrap: str, topics: TopicNames, events: list[dict[str, Any]],
                   timestamp_ms: int = 0) -> None:
    """Publish ``events``; ``timestamp_ms`` sets their record timestamp (0: now)."""
    producer = KafkaConfig.of(bootstrap).producer()
    codec = default_codec()
    for ev in events:
        producer.produce(topics.alerts, key=ev["fingerprint"].encode(),
                         value=codec.encode("AlertEvent", ev), timestamp=timestamp_ms)
    assert producer.flush(15) == 0


def wait_past_duplicates(bootstrap: str, topics: TopicNames, notifiers: list[Notifier],
                         server: RecordingServer, timeout_s: float = 30) -> None:
    """Wait until a duplicate of any notification sent so far would have reached ``server``.

    A notifier decides to send (again) when it flushes a group, and each sink delivers in
    order on its one thread. So: every group of every notifier is flushed once more after
    now; then a sentinel alert (a model of its own) published on every partition of the
    alerts topic after that is delivered: whatever was to be sent again went out before.
    The sentinels' requests are the ones whose fingerprint starts with ``sentinel-``.
    """
    interval = max(r.group_interval_ms for r in notifiers[0].routes.routes)
    since = notifiers[0].clock()

    def flushed_again() -> bool:  # reads the notifier's groups from another thread: retried
        return all((n.dispatcher.next_due_ms() or since + interval + 1) > since + interval
                   for n in notifiers)

    wait_for(flushed_again, timeout_s, "every notification group flushed again", every_s=0.05)
    producer = KafkaConfig.of(bootstrap).producer()
    codec = default_codec()
    reader = KafkaConfig.of(bootstrap).consumer()
    try:
        parts = partitions_of(reader, topics.alerts)
    finally:
        reader.close()
    names = [f"sentinel-{uuid.uuid4().hex[:6]}-{p}" for p in parts]
    for p, name in zip(parts, names, strict=True):
        ev = alert_event(name, model=name)
        producer.produce(topics.alerts, key=name.encode(), value=codec.encode("AlertEvent", ev),
                         partition=p)
    assert producer.flush(15) == 0
    wait_until(lambda: set(names) <= {r.body["alerts"][0]["fingerprint"] for r in server.ok()},
               timeout_s, "a sentinel alert on every partition delivered")


def of(server: RecordingServer, fingerprint: str, ok: bool = True) -> list[Recorded]:
    """Requests ``server`` received (answered 2xx, unless ``ok`` is False) for ``fingerprint``."""
    with server.lock:
        return [r for r in server.requests if (r.status < 300 or not ok)
                and r.body["alerts"][0]["fingerprint"] == fingerprint]


def read_records(bootstrap: str, topic: str, name: str) -> list[dict[str, Any]]:
    codec = default_codec()
    return [codec.decode(r.value, expect=(name,)).record for r in read_to_end(bootstrap, topic)]


def routes_config(sinks: dict[str, Any], sink_names: list[str], send_resolved: bool = True,
                  retry: dict[str, Any] | None = None, **route: Any) -> Any:
    return build_routes({
        "sinks": sinks,
        "routes": [{"name": "all", "sinks": sink_names, "group_by": ["model"],
                    "group_wait": "0s", "group_interval": "200ms", "repeat_interval": "1h",
                    "send_resolved": send_resolved, **route}],
        "retry": retry or {"base": "50ms", "max_delay": "200ms", "max_attempts": 5,
                           "budget": "10s"},
    })


class NotifierThread:
    """An in-process notifier (real Kafka, real sinks) on its own thread."""

    def __init__(self, bootstrap: str, topics: TopicNames, routes: Any, env: dict[str, str],
                 state_dir: Path, group_id: str | None = None) -> None:
        self.notifier = Notifier(bootstrap, routes, build_sinks(routes.sinks, env), state_dir,
                                 topics, group_id=group_id or f"notify-{uuid.uuid4().hex[:6]}")
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.notifier.run(self.stop, max_seconds=90)
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def __enter__(self) -> Notifier:
        self.thread.start()
        return self.notifier

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "notifier did not stop"
        if self.error is not None:
            raise self.error


def metric(notifier: Notifier, name: str, **labels: str) -> float:
    value = notifier.registry.get_sample_value(name, labels)
    return value or 0.0


__all__ = ["NotifierThread", "RecordingServer", "alert_event", "http_server_fixture",
           "metric", "of", "produce_alerts", "read_records", "routes_config",
           "topics_fixture", "wait_past_duplicates", "wait_until"]
