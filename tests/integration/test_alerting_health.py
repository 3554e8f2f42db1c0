"""``/healthz`` of the alert evaluator and the notifier means progress: real subprocesses
(``modelwatch evaluate`` / ``modelwatch notify``), a real broker, a real HTTP sink.

* evaluator: detections are waiting, the broker stops answering (SIGSTOP) so nothing can be
  flushed or committed: 503 naming the stalled partition; the broker goes on (SIGCONT):
  200 again, and the committed position moves past where it stalled.
* notifier: the webhook sink hangs on a delivery: 503 naming the sink; the sink answers:
  200 again and the notification counts as delivered.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelwatch.broker import EmbeddedBroker, free_port
from modelwatch.live_view import scrape as live_scrape
from schemas.codec import default_codec
from schemas.detection import Detection
from schemas.topics import TopicNames
from tests.integration.test_alert_support import (  # noqa: F401 - fixtures
    alert_event,
    produce_alerts,
    topics_fixture,
)
from tests.support.processes import ModelwatchProcess, healthz, sample, wait_for

pytestmark = pytest.mark.integration
STALL_S = 2.0  # MODELWATCH_HEALTH_STALL_S of the processes under test


def scrape(port: int) -> dict:
    return live_scrape(f"http://127.0.0.1:{port}/metrics")


def test_evaluator_health_fails_while_waiting_detections_cannot_be_committed(
    tmp_path: Path,
) -> None:
    n = 150_000  # enough that the evaluator is still working through them when stopped
    with EmbeddedBroker(partitions=1) as broker:
        producer = broker.kafka.producer()
        codec = default_codec()
        t0 = int(time.time() * 1000)
        for i in range(n):
            det = Detection(model="churn", kind="prediction_drift", subject="prediction",
                            detector="psi", value=0.5, threshold=0.2, event_time_ms=t0 + i,
                            active=True, model_version="1")  # fmt: skip
            producer.produce(broker.topics.detections, key=b"churn",
                             value=codec.encode("Detection", det.to_record()))
            if i % 10_000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0
        port = free_port()
        env = {"MODELWATCH_BOOTSTRAP": broker.bootstrap,
               "MODELWATCH_HEALTH_STALL_S": str(STALL_S), "MODELWATCH_METRICS_HOST": "127.0.0.1"}
        proc = ModelwatchProcess(["evaluate", "--metrics-port", str(port),
                                  "--log-level", "warning"], env, tmp_path / "evaluator.log")
        assert broker.process is not None
        broker_pid = broker.process.pid
        with proc:
            def working() -> dict[str, Any] | None:
                assert proc.alive(), proc.log_tail()
                status, body = healthz(port)
                st = body.get("stages", {}).get("detections[0]")
                return st if status == 200 and st and st["backlog"] > 10_000 else None

            wait_for(lambda: working() is not None, 120, "the evaluator working on a backlog",
                     every_s=0.05)  # fmt: skip
            os.kill(broker_pid, signal.SIGSTOP)
            try:
                stalled: dict[str, Any] = {}

                def unhealthy() -> bool:
                    status, body = healthz(port)
                    stalled.update(body)
                    return status == 503 and any(
                        p.startswith("detections[0] stalled") for p in body["problems"])

                wait_for(unhealthy, 60, "/healthz 503 while the broker is stopped")
                at = stalled["stages"]["detections[0]"]["position"]
            finally:
                os.kill(broker_pid, signal.SIGCONT)

            def moving_again() -> bool:
                assert proc.alive(), proc.log_tail()
                status, body = healthz(port)
                return status == 200 and body["stages"]["detections[0]"]["position"] > at

            wait_for(moving_again, 120, "/healthz 200 with progress once the broker goes on")
            wait_for(lambda: sample(scrape(port), "modelwatch_evaluator_detections_total") >= n,
                     180, "every detection evaluated")  # fmt: skip
            assert healthz(port)[0] == 200


class HangingSink:
    """A webhook receiver that holds every request until released, then answers 200."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received += 1
                outer.release.wait(120)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="hanging_sink")
def hanging_sink_fixture() -> Iterator[HangingSink]:
    sink = HangingSink()
    yield sink
    sink.stop()


def test_notifier_health_fails_while_a_sink_hangs_and_recovers_when_it_answers(
    kafka_bootstrap: str, topics: TopicNames, hanging_sink: HangingSink, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.yml"
    routes.write_text(yaml.safe_dump({
        "sinks": {"hook": {"type": "webhook", "url_env": "HOOK_URL", "timeout": "120s"}},
        "routes": [{"name": "all", "sinks": ["hook"], "group_by": ["model"],
                    "group_wait": "0s", "group_interval": "200ms", "repeat_interval": "1h",
                    "send_resolved": True}],
        "retry": {"base": "50ms", "max_delay": "200ms", "max_attempts": 3, "budget": "1s"},
    }))
    port = free_port()
    env = {"MODELWATCH_BOOTSTRAP": kafka_bootstrap,
           "MODELWATCH_TOPIC_PREFIX": topics.alerts.removesuffix("modelwatch.alerts"),
           "MODELWATCH_HEALTH_STALL_S": str(STALL_S), "MODELWATCH_METRICS_HOST": "127.0.0.1",
           "HOOK_URL": hanging_sink.url}
    proc = ModelwatchProcess(
        ["notify", "--routes", str(routes), "--metrics-port", str(port), "--state-dir",
         str(tmp_path / "state"), "--group-id", f"notify-{port}", "--log-level", "warning"],
        env, tmp_path / "notifier.log",
    )
    with proc:
        def up() -> bool:
            assert proc.alive(), proc.log_tail()
            status, body = healthz(port)
            return status == 200 and any(k.startswith("alerts[") for k in body["stages"])

        wait_for(up, 60, "the notifier assigned and healthy")
        produce_alerts(kafka_bootstrap, topics, [alert_event("fp-h", model="churn")])
        wait_for(lambda: hanging_sink.received >= 1, 60, "the delivery reaching the sink")

        def unhealthy() -> bool:
            status, body = healthz(port)
            return status == 503 and any(
                p.startswith("deliveries[hook] stalled") for p in body["problems"])

        # a delivery may retry for the budget (1 s): stalled after STALL_S + budget
        wait_for(unhealthy, 60, "/healthz 503 while the sink hangs")
        hanging_sink.release.set()

        def healthy_and_delivered() -> bool:
            assert proc.alive(), proc.log_tail()
            delivered = sample(scrape(port), "modelwatch_notifications_total",
                               sink="hook", outcome="delivered")  # fmt: skip
            return healthz(port)[0] == 200 and delivered >= 1

        wait_for(healthy_and_delivered, 60, "/healthz 200 once the sink answers")
