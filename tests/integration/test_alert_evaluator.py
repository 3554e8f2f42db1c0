"""The evaluator and the alert CLI against the real embedded broker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from alerting.evaluator import Evaluator
from alerting.policy import build_policy
from modelwatch.cli import app
from schemas.codec import default_codec
from schemas.detection import Detection
from schemas.kafka import KafkaConfig, read_to_end
from schemas.topics import TopicNames
from tests.integration.test_alert_support import (  # noqa: F401 - fixtures
    alert_event,
    produce_alerts,
    read_records,
    topics_fixture,
    wait_until,
)
from tests.support.groups import wait_group_done

pytestmark = pytest.mark.integration

POLICY = build_policy({
    "defaults": {"for": "0s", "keep_firing_for": "0s", "stale_after": "1h",
                 "retrain_min_interval": "1h"},
    "rules": {
        "prediction_drift": {"severity": "major"},
        "dataset_drift": {"severity": "major", "min_value": 0.5, "action": "retrain"},
        "feature_drift": {"severity": "minor"},
        "no_traffic": {"severity": "critical"},
    },
})


def detection(model: str, kind: str, subject: str, value: float, active: bool = True,
              details: dict[str, str] | None = None) -> Detection:
    return Detection(model=model, kind=kind, subject=subject, detector="psi", value=value,
                     threshold=0.2, event_time_ms=int(time.time() * 1000), active=active,
                     model_version="7", details=details or {})


def publish(bootstrap: str, topics: TopicNames, *dets: Detection, raw: bytes | None = None) -> None:
    producer = KafkaConfig.of(bootstrap).producer()
    for det in dets:
        producer.produce(topics.detections, key=det.model.encode(),
                         value=default_codec().encode("Detection", det.to_record()))
    if raw is not None:
        producer.produce(topics.detections, key=b"junk", value=raw)
    assert producer.flush(15) == 0


def at_least(n: int, items: list[Any]) -> list[Any] | None:
    return items if len(items) >= n else None


class EvaluatorThread:
    def __init__(self, bootstrap: str, topics: TopicNames, group_id: str) -> None:
        self.evaluator = Evaluator(bootstrap, POLICY, topics, group_id=group_id, tick_s=0.1)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.assignments = 0  # completed assignments of the group (empty ones included)
        on_assign = self.evaluator._on_assign

        def counted(consumer: Any, partitions: list[Any]) -> None:
            on_assign(consumer, partitions)
            self.assignments += 1

        self.evaluator._on_assign = counted  # type: ignore[method-assign]

    def _run(self) -> None:
        try:
            self.evaluator.run(self.stop, max_seconds=90)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Evaluator:
        self.thread.start()
        return self.evaluator

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def cli(bootstrap: str, topics: TopicNames, *args: str) -> str:
    env = {"MODELWATCH_BOOTSTRAP": bootstrap,
           "MODELWATCH_TOPIC_PREFIX": topics.alerts.removesuffix("modelwatch.alerts")}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_detections_become_alerts_retrains_and_respect_silences(
        kafka_bootstrap: str, topics: TopicNames) -> None:
    def alerts() -> list[dict[str, Any]]:
        return read_records(kafka_bootstrap, topics.alerts, "AlertEvent")

    group_id = f"eval-{uuid.uuid4().hex[:6]}"
    with EvaluatorThread(kafka_bootstrap, topics, group_id) as ev:
        publish(kafka_bootstrap, topics, detection("churn", "prediction_drift", "score", 0.4))
        (fired,) = wait_until(alerts, 30, "a firing alert")
        assert fired["status"] == "firing" and fired["severity"] == "major"
        assert fired["model_version"] == "7"
        publish(kafka_bootstrap, topics,
                detection("churn", "prediction_drift", "score", 0.4),  # deduplicated
                detection("churn", "prediction_drift", "score", 0.1, active=False))
        events = wait_until(lambda: at_least(2, alerts()), 30, "resolved")
        assert [e["status"] for e in events] == ["firing", "resolved"]
        assert events[1]["alert_id"] == fired["alert_id"]
        raw = read_to_end(kafka_bootstrap, topics.alerts)
        assert {r.key for r in raw} == {fired["fingerprint"].encode()}  # keyed by fingerprint

        # retrain action, with evidence, rate-limited per model
        publish(kafka_bootstrap, topics,
                detection("churn", "feature_drift", "age", 0.3),
                detection("churn", "dataset_drift", "dataset", 0.7,
                          details={"drifted_features": "age,income"}))
        (req,) = wait_until(lambda: read_records(kafka_bootstrap, topics.actions,
                                                 "RetrainRequest"), 30, "a retrain request")
        assert req["model"] == "churn" and req["model_version"] == "7"
        assert req["drift_share"] == pytest.approx(0.7)
        assert req["drifted_features"] == ["age", "income"]
        assert req["reason"] == "dataset_drift"

        # a silence (CLI → compacted topic) mutes the model until it is expired
        out = cli(kafka_bootstrap, topics, "silence", "add", "--model", "fraud", "--for", "1h",
                  "--reason", "planned migration")
        silence_id = out.split()[0]
        assert silence_id in cli(kafka_bootstrap, topics, "silence", "list")
        wait_until(lambda: ev.silences.is_silenced("fraud", "no_traffic",
                                                   int(time.time() * 1000)), 15, "silence seen")
        publish(kafka_bootstrap, topics, detection("fraud", "no_traffic", "traffic", 0.0))
        wait_until(lambda: ev.metrics.detections.labels("ok")._value.get() >= 6, 15,
                   "the silenced detection consumed")
        # committed: whatever alert it caused is on the alerts topic
        wait_group_done(kafka_bootstrap, group_id, [topics.detections], 30, "silenced")
        assert not [a for a in alerts() if a["model"] == "fraud"]
        cli(kafka_bootstrap, topics, "silence", "expire", silence_id)
        wait_until(lambda: [a for a in alerts() if a["model"] == "fraud"], 30,
                   "the alert once the silence is expired")
        assert "no active silences" in cli(kafka_bootstrap, topics, "silence", "list")

        # a critical on churn inhibits churn's new majors
        publish(kafka_bootstrap, topics, detection("churn", "no_traffic", "traffic", 0.0),
                detection("churn", "prediction_drift", "proba", 0.9))
        wait_until(lambda: ev.metrics.detections.labels("ok")._value.get() >= 8, 15,
                   "the inhibited detection consumed")
        wait_group_done(kafka_bootstrap, group_id, [topics.detections], 30, "inhibited")
        assert not [a for a in alerts() if a["subject"] == "proba"]

        # undecodable detections are dead-lettered with the reason
        publish(kafka_bootstrap, topics, raw=b"\x00garbage")
        (dead,) = wait_until(lambda: read_records(kafka_bootstrap, topics.dead_letter,
                                                  "DeadLetter"), 30, "a dead letter")
        assert dead["component"] == "evaluator" and dead["error_kind"] == "decode"
        assert ev.registry.get_sample_value(
            "modelwatch_alerts_firing", {"model": "churn", "severity": "major"}) == 1
        assert ev.registry.get_sample_value(
            "modelwatch_alerts_firing", {"model": "churn", "severity": "critical"}) == 1

    # the CLI shows what fires now
    listed = [json.loads(line) for line in
              cli(kafka_bootstrap, topics, "alerts", "list", "--json").splitlines()]
    assert {(a["model"], a["kind"]) for a in listed} == {
        ("churn", "no_traffic"), ("churn", "dataset_drift"), ("churn", "feature_drift"),
        ("fraud", "no_traffic")}
    table = cli(kafka_bootstrap, topics, "alerts", "list")
    assert "4 alert(s) firing" in table
    tailed = cli(kafka_bootstrap, topics, "alerts", "tail", "--from-beginning", "--json",
                 "--severity", "critical", "--max", "2", "--timeout", "20")
    tailed_alerts = [json.loads(x) for x in tailed.splitlines()]
    assert sorted(a["model"] for a in tailed_alerts) == ["churn", "fraud"]
    assert {a["severity"] for a in tailed_alerts} == {"critical"}

    # a restarted evaluator restores open alerts: it resolves what the first one opened
    with EvaluatorThread(kafka_bootstrap, topics, group_id):  # same group: resumes
        # alerts() is ordered by (partition, offset): compare by event identity, not position
        seen = {(a["alert_id"], a["status"]) for a in alerts()}
        opened = {a["fingerprint"]: a["alert_id"] for a in alerts() if a["status"] == "firing"}

        def new_events() -> list[dict[str, Any]]:
            return [a for a in alerts() if (a["alert_id"], a["status"]) not in seen]

        publish(kafka_bootstrap, topics,
                detection("churn", "dataset_drift", "dataset", 0.1, active=False),
                detection("churn", "no_traffic", "traffic", 5.0, active=False))
        wait_until(lambda: at_least(2, new_events()), 30, "resolutions after the restart")
        wait_group_done(kafka_bootstrap, group_id, [topics.detections], 30, "resolutions")
        new = new_events()
        # the inhibited 'proba' drift was never published, so it is not restored either
        assert sorted((a["kind"], a["subject"], a["status"]) for a in new) == [
            ("dataset_drift", "dataset", "resolved"), ("no_traffic", "traffic", "resolved")]
        for a in new:
            assert a["alert_id"] == opened[a["fingerprint"]]


def test_alerts_tail_prints_only_new_alerts_of_the_wanted_severity(
        kafka_bootstrap: str, topics: TopicNames) -> None:
    # stamped a minute back: older than any tail started from now on (it skips records
    # older than its start minus 1 s of clock slack)
    produce_alerts(kafka_bootstrap, topics, [alert_event("old", severity="major")],
                   timestamp_ms=int(time.time() * 1000) - 60_000)
    output: dict[str, str] = {}

    def run_tail() -> None:
        output["out"] = cli(kafka_bootstrap, topics, "alerts", "tail", "--json",
                            "--severity", "major", "--max", "1", "--timeout", "30")

    tail = threading.Thread(target=run_tail, daemon=True)
    tail.start()

    def printed() -> bool:
        # the tail is silent until it prints: publish new alerts (a minor, then a major)
        # until one is printed after its start; the first major it sees is what it prints
        produce_alerts(kafka_bootstrap, topics, [alert_event("new-minor", severity="minor"),
                                                 alert_event("new-major", severity="major")])
        return not tail.is_alive()

    wait_until(printed, 40, "the tail to print a new major alert", every_s=0.5)
    (line,) = output["out"].splitlines()
    got = json.loads(line)
    assert got["fingerprint"] == "new-major"
    assert set(got) == set(alert_event())  # exactly the AlertEvent fields


def test_standby_evaluator_takes_over_and_resolves_what_the_active_one_opened(
        kafka_bootstrap: str, topics: TopicNames) -> None:
    group_id = f"eval-{uuid.uuid4().hex[:6]}"
    first = EvaluatorThread(kafka_bootstrap, topics, group_id)
    second = EvaluatorThread(kafka_bootstrap, topics, group_id)
    with first as one, second as two:
        # the group settles on two members: both were assigned (the one without the
        # detections partition gets an empty assignment), and exactly one owns the partition
        wait_until(lambda: first.assignments and second.assignments
                   and one.owning != two.owning, 30, "one owner in a group of two")
        active, standby, active_thread = (one, two, first) if one.owning else (two, one, second)
        publish(kafka_bootstrap, topics, detection("churn", "prediction_drift", "score", 0.5))
        (fired,) = wait_until(lambda: read_records(kafka_bootstrap, topics.alerts,
                                                   "AlertEvent"), 30, "the firing alert")
        assert standby.lifecycle.firing() == []  # the standby does not evaluate
        active_thread.stop.set()  # the active evaluator leaves the group
        active_thread.thread.join(30)
        wait_until(lambda: standby.owning, 30, "the standby takes over")
        assert [a["alert_id"] for a in standby.lifecycle.firing()] == [fired["alert_id"]]
        publish(kafka_bootstrap, topics,
                detection("churn", "prediction_drift", "score", 0.1, active=False))
        events = wait_until(lambda: at_least(2, read_records(
            kafka_bootstrap, topics.alerts, "AlertEvent")), 30, "the resolution")
        assert [(e["status"], e["alert_id"]) for e in events] == [
            ("firing", fired["alert_id"]), ("resolved", fired["alert_id"])]
