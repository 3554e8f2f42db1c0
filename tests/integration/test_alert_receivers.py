"""A real Alertmanager receives our alerts; a SIGKILLed notifier restarted sends no duplicate."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelwatch.broker import free_port
from schemas.topics import TopicNames
from tests.integration.test_alert_support import (  # noqa: F401 - fixtures
    NotifierThread,
    RecordingServer,
    alert_event,
    http_server_fixture,
    produce_alerts,
    routes_config,
    topics_fixture,
    wait_until,
)
from tests.support.groups import wait_group_done
from tests.support.processes import ModelwatchProcess, sample, scrape, stop_process

pytestmark = pytest.mark.integration
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def am_alerts(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v2/alerts", timeout=5) as resp:  # noqa: S310
        return json.loads(resp.read())


@pytest.fixture
def alertmanager(tmp_path: Path) -> Any:
    if ALERTMANAGER is None:
        pytest.skip("Alertmanager binary not installed (Debian package prometheus-alertmanager)")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump({
        "route": {"receiver": "null", "group_wait": "1s"},
        "receivers": [{"name": "null"}],
    }))
    (tmp_path / "am-data").mkdir()
    log = open(tmp_path / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "alertmanager.log").read_text())
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:  # noqa: S310
                    return r.status == 200
            except OSError:
                return False

        wait_until(ready, 20, "Alertmanager ready", every_s=0.1)
        yield base
    finally:
        stop_process(proc)
        log.close()


def test_alertmanager_receives_firing_and_resolved_through_its_api(
        kafka_bootstrap: str, topics: TopicNames, alertmanager: str, tmp_path: Path) -> None:
    routes = routes_config({"am": {"type": "alertmanager", "url_env": "AM_URL"}}, ["am"])
    with NotifierThread(kafka_bootstrap, topics, routes, {"AM_URL": alertmanager}, tmp_path):
        firing = alert_event("fp-am", severity="major", kind="prediction_drift", model="ranker")
        produce_alerts(kafka_bootstrap, topics, [firing])
        (got,) = wait_until(lambda: am_alerts(alertmanager), 30, "the alert in Alertmanager")
        assert got["labels"]["alertname"] == "prediction_drift"
        assert got["labels"]["model"] == "ranker"
        assert got["labels"]["severity"] == "major"
        assert got["labels"]["team"] == "ds"
        assert got["annotations"]["alert_id"] == firing["alert_id"]
        assert got["annotations"]["summary"] == "ranker receives no traffic"
        assert got["status"]["state"] == "active"
        produce_alerts(kafka_bootstrap, topics, [dict(firing, status="resolved",
                                                      resolved_at_ms=int(time.time() * 1000))])
        # a resolved alert leaves Alertmanager's list of active alerts
        wait_until(lambda: am_alerts(alertmanager) == [], 30, "the alert resolved")


def test_sigkilled_notifier_restarted_sends_no_duplicate(
        kafka_bootstrap: str, topics: TopicNames, http_server: RecordingServer,
        tmp_path: Path) -> None:
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(yaml.safe_dump({
        "sinks": {"hook": {"type": "webhook", "url_env": "HOOK_URL"}},
        "routes": [{"name": "all", "sinks": ["hook"], "group_by": ["model"],
                    "group_wait": "0s", "group_interval": "200ms", "repeat_interval": "1h"}],
        "retry": {"base": "50ms", "max_attempts": 3, "budget": "5s"},
    }))
    state = tmp_path / "state"
    env = {"MODELWATCH_BOOTSTRAP": kafka_bootstrap,
           "MODELWATCH_TOPIC_PREFIX": topics.alerts.removesuffix("modelwatch.alerts"),
           "HOOK_URL": http_server.url + "/hook/s3cr3t-path"}
    args = ["notify", "--routes", str(routes_file), "--state-dir", str(state),
            "--metrics-port", "0", "--group-id", "notify-kill", "--log-level", "info"]
    sent_file = state / "notify-kill.sent"

    def bodies(fp: str) -> list[dict[str, Any]]:
        return [r.body for r in http_server.ok() if r.body["alerts"][0]["fingerprint"] == fp]

    first = ModelwatchProcess(args, env, tmp_path / "notify-1.log").start()
    try:
        produce_alerts(kafka_bootstrap, topics, [alert_event("fp-a", model="churn")])
        wait_until(lambda: bodies("fp-a"), 45, "the first notification")
        # kill as soon as the key is recorded: the offset commit may or may not have happened
        wait_until(lambda: sent_file.exists() and "fp-a" in sent_file.read_text(), 10,
                   "the sent key on disk", every_s=0.005)
        first.kill()
    finally:
        first.stop()
    second = ModelwatchProcess(args, env, tmp_path / "notify-2.log").start()
    try:
        produce_alerts(kafka_bootstrap, topics, [alert_event("fp-b", model="fraud")])
        wait_until(lambda: bodies("fp-b"), 60, "the notification after the restart")
        # the second notifier committed both alerts: fp-a was replayed (and found in the
        # sent log) or restored from below the committed offset before fp-b went out, and
        # a notifier commits a record only once what it sent for it was delivered
        wait_group_done(kafka_bootstrap, "notify-kill", [topics.alerts], 30, "after fp-b")
        assert len(bodies("fp-a")) == 1, second.log_tail()
        assert len(bodies("fp-b")) == 1
        logs = first.log_tail(500) + second.log_tail(500)
        assert "fp-a" in logs or "assigned partitions" in logs  # the logs were written...
        assert "s3cr3t" not in logs  # ...and never show the webhook URL
    finally:
        second.stop()


def test_cli_pipeline_detection_to_webhook_with_metrics(
        kafka_bootstrap: str, topics: TopicNames, http_server: RecordingServer,
        tmp_path: Path) -> None:
    """`modelwatch evaluate` + `modelwatch notify` as real processes, end to end."""
    from schemas.codec import default_codec
    from schemas.detection import Detection
    from schemas.kafka import KafkaConfig

    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: {error_rate: {for: 0s}}\n")
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(yaml.safe_dump({
        "sinks": {"hook": {"type": "webhook", "url_env": "HOOK_URL"}, "console": {"type": "log"}},
        "routes": [{"name": "critical", "match": {"severity": ["critical"]},
                    "sinks": ["hook", "console"], "group_wait": "0s",
                    "group_interval": "200ms"}],
    }))
    env = {"MODELWATCH_BOOTSTRAP": kafka_bootstrap,
           "MODELWATCH_TOPIC_PREFIX": topics.alerts.removesuffix("modelwatch.alerts"),
           "MODELWATCH_METRICS_HOST": "127.0.0.1", "HOOK_URL": http_server.url}
    eval_port, notify_port = free_port(), free_port()
    evaluator = ModelwatchProcess(["evaluate", "--policy", str(policy), "--metrics-port",
                                   str(eval_port)], env, tmp_path / "evaluate.log")
    notifier = ModelwatchProcess(["notify", "--routes", str(routes_file), "--state-dir",
                                  str(tmp_path / "state"), "--metrics-port", str(notify_port)],
                                 env, tmp_path / "notify.log")
    with evaluator, notifier:
        producer = KafkaConfig.of(kafka_bootstrap).producer()
        det = Detection(model="churn", kind="error_rate", subject="error_rate",
                        detector="rate_over_span", value=0.2, threshold=0.05,
                        event_time_ms=int(time.time() * 1000))
        producer.produce(topics.detections, key=b"churn",
                         value=default_codec().encode("Detection", det.to_record()))
        assert producer.flush(10) == 0
        wait_until(http_server.ok, 60, "the webhook from the CLI pipeline")
        body = http_server.ok()[0].body
        assert body["alerts"][0]["kind"] == "error_rate"
        assert body["alerts"][0]["severity"] == "critical"
        eval_metrics = scrape(f"http://127.0.0.1:{eval_port}/metrics")
        assert sample(eval_metrics, "modelwatch_alerts_firing", model="churn",
                      severity="critical") == 1
        wait_until(lambda: sample(scrape(f"http://127.0.0.1:{notify_port}/metrics"),
                                  "modelwatch_notifications_total", sink="hook",
                                  outcome="delivered") == 1, 10, "the notifier metric")
        for port in (eval_port, notify_port):  # standard process metrics too
            assert sample(scrape(f"http://127.0.0.1:{port}/metrics"),
                          "process_cpu_seconds_total") > 0
        assert "CRITICAL" in notifier.log_tail(100)  # the console sink printed it
        assert evaluator.alive() and notifier.alive()
