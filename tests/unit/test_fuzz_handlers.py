"""Fuzz every topic handler with seeded hostile payloads (tests/support/hostile.py).

Each handler gets ≥ 10,000 payloads: garbage, truncations, bit flips, wrong and unknown
schema ids, and valid records with hostile values. Nothing may escape, and nothing may
reach the catch-all boundary either: every hostile record is turned away by a rule that
names it (a ``processing`` dead letter would mean an exception that was only caught).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from rich.console import Console

from alerting.evaluator import Evaluator
from alerting.grouping import Notification
from alerting.notifier import Notifier
from alerting.policy import load_policy
from alerting.routes import Route, load_routes
from alerting.sinks.base import alert_line, json_safe, text_body, title
from alerting.sinks.email import EmailSink
from alerting.sinks.log import LogSink
from alerting.sinks.slack import slack_payload
from alerting.sinks.webhook import webhook_payload
from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.engine import DriftEngine
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.drift_stage import DriftStage
from stream_jobs.golden import GoldenSignals
from stream_jobs.golden_checks import GoldenChecks, GoldenChecksConfig
from stream_jobs.handler import LabelHandler, PredictionHandler
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.label_stage import LabelStage, LockedLabelMetrics
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink, GoldenChecksStage
from stream_jobs.pipeline_metrics import PipelineMetrics
from stream_jobs.reference_feed import ReferenceStage, ReferenceUpdate, check_reference
from stream_jobs.state.metrics import StateMetrics
from tests.support.hostile import Hostile
from tests.support.ports import closed_port

N = 10_000
NOW_MS = 1_800_000_000_000
SEED = 20261201
RENDERED = 1_500  # alerts also rendered by every sink (e-mail and rich rendering are slow)
codec = default_codec()
topics = TopicNames()
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class Msg:
    """The slice of a confluent-kafka message the alerting handlers read."""

    def __init__(self, topic: str, key: bytes | None, value: bytes | None, offset: int) -> None:
        self._t, self._k, self._v, self._o = topic, key, value, offset

    def topic(self) -> str:
        return self._t

    def key(self) -> bytes | None:
        return self._k

    def value(self) -> bytes | None:
        return self._v

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._o

    def error(self) -> None:
        return None


class Producer:
    """Stands in for the alerting processes' confluent-kafka producer (no broker here)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []

    def produce(self, topic: str, key: bytes | None = None, value: bytes = b"") -> None:
        self.sent.append((topic, key, value))

    def flush(self, timeout: float = 0) -> int:
        return 0


class Worker:
    """The worker's handlers and stages as build_worker wires them, without Kafka."""

    def __init__(self) -> None:
        reg = CollectorRegistry()
        sink = DetectionSink(codec, topics, reg)
        self.golden_checks = GoldenChecksStage(GoldenChecks(GoldenChecksConfig()), sink)
        drift_metrics, state_metrics = DriftMetrics(reg, max_features=50), StateMetrics(reg)
        self.drift = DriftStage(DriftEngine(DriftConfig()), drift_metrics, state_metrics, codec,
                                topics)  # fmt: skip
        self.merge = MergeStage(DriftConfig(), drift_metrics, state_metrics, sink, codec, topics)
        self._partials = 0
        engine = LabelEngine(LabelConfig(), MemoryStore(), drift=DriftConfig())
        metrics = LockedLabelMetrics(reg, engine)
        self.labels = LabelStage(engine, metrics, sink, codec, topics)
        metrics.lock = self.labels.lock
        pipeline = PipelineMetrics(reg)
        observers = [self.golden_checks, self.drift, self.labels]
        self.predictions = PredictionHandler(codec, topics, GoldenSignals(reg), pipeline, observers)
        self.label_handler = LabelHandler(codec, topics, pipeline, self.labels)
        self.pollers = [self.golden_checks, self.drift, self.labels]
        self.registry = reg

    def poll(self, now_s: float) -> None:
        for poller in self.pollers:
            for o in poller.poll(now_s):  # stage 1's partials go to the merge stage
                if o.topic == topics.window_partials:
                    self.merge.observe_partial(0, self._partials, o.value)
                    self._partials += 1
        self.merge.poll(now_s)


def _dead_letter_kinds(out: list) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for o in out:
        if o.topic == topics.dead_letter:
            rec = codec.decode(o.value).record
            kinds[rec["error_kind"]] += 1
            assert rec["source_topic"] and rec["reason"]
            if rec["error_kind"] == "processing":
                kinds["processing: " + rec["reason"][:100]] += 1
    return kinds


@pytest.mark.parametrize("topic", ["predictions", "labels"])
def test_worker_handlers_turn_every_hostile_record_into_a_reason(topic: str) -> None:
    worker = Worker()
    handler = worker.predictions if topic == "predictions" else worker.label_handler
    gen = Hostile(SEED + len(topic), NOW_MS)
    kinds: Counter[str] = Counter()
    for i in range(N):
        now_s = NOW_MS / 1000 + i * 0.01
        out = handler.handle(b"k", gen.payload(topic), 0, i, now_s)  # never raises
        kinds += _dead_letter_kinds(out)
        if i % 500 == 0:
            worker.poll(now_s)  # the timers see the hostile state too
    worker.poll(NOW_MS / 1000 + 3600)
    assert not [k for k in kinds if k.startswith("processing")], kinds
    assert kinds["decode"] > N // 10 and kinds["invalid"] > 0, kinds  # the mix is hostile


def test_references_are_checked_and_a_rejected_one_keeps_the_previous() -> None:
    worker = Worker()

    class Feed:
        topic = topics.references
        pending: list[ReferenceUpdate] = []

        def drain(self) -> list[ReferenceUpdate]:
            out, self.pending = self.pending, []
            return out

        def alive(self) -> bool:
            return True

    feed = Feed()
    stage = ReferenceStage(
        feed, [worker.drift.set_reference, worker.merge.set_reference,
               worker.labels.set_reference], codec, topics,  # type: ignore[arg-type]
        CollectorRegistry(),
    )
    gen = Hostile(SEED + 7, NOW_MS)
    outcomes: Counter[str] = Counter()
    for i in range(N):
        update = check_reference(codec, b"m/", gen.payload("references"), 0, i)  # never raises
        outcomes["loaded" if update.profile is not None else update.error_kind] += 1
        feed.pending.append(update)
        if i % 100 == 0:
            out = stage.poll(NOW_MS / 1000)
            assert not [o for o in out if b"processing" in o.value], "a listener raised"
    stage.poll(NOW_MS / 1000)
    assert outcomes["loaded"] > 500 and outcomes["invalid"] > 100, outcomes
    # the worker still judges windows against whatever reference is in force
    good = Hostile(SEED, NOW_MS)
    for i in range(200):
        worker.predictions.handle(b"k", good.encode("PredictionEvent",
                                                    good.record("PredictionEvent")),
                                  1, i, NOW_MS / 1000)
    worker.poll(NOW_MS / 1000 + 3600)


@pytest.fixture
def evaluator() -> Evaluator:
    ev = Evaluator(closed_port(), load_policy(), topics,
                   clock=lambda: NOW_MS, registry=CollectorRegistry())
    ev.producer = Producer()  # type: ignore[assignment]
    return ev


def test_silences_with_hostile_keys_and_values_never_stop_the_evaluator(evaluator) -> None:
    gen = Hostile(SEED + 11, NOW_MS)
    keys = [b"s1", b"\xff\xfe", b"", b"x" * 10_000, b"s\r\n2", None]
    applied = Counter()
    for _ in range(N):
        ok = evaluator._apply_silence(gen.rng.choice(keys), gen.payload("silences"))  # noqa: SLF001
        applied[ok] += 1
    assert applied[True] > 1000 and applied[False] > 1000, applied
    evaluator.silences.is_silenced("m", "feature_drift", NOW_MS)
    evaluator.silences.active(NOW_MS)


def test_detections_and_ticks_never_stop_the_evaluator(evaluator) -> None:
    gen = Hostile(SEED + 13, NOW_MS)
    outcomes: Counter[str] = Counter()
    for i in range(N):
        value = gen.payload("detections")
        events = evaluator.handle_detection(value, Msg(topics.detections, b"m", value, i))
        evaluator.publish(events)
        if i % 200 == 0:
            evaluator.publish(evaluator.lifecycle.tick())
    for s in evaluator.registry.collect():
        for sample in s.samples:
            if sample.name == "modelwatch_evaluator_detections_total":
                outcomes[sample.labels["outcome"]] += sample.value
    assert outcomes["error"] == 0 and outcomes["invalid"] > 1000 and outcomes["ok"] > 1000


def _notification(alerts: list[dict[str, Any]]) -> Notification:
    route = Route(name="r\r\nX-Evil: 1", sinks=("x",), repeat_interval_ms=300_000)
    keys = {f"{a['fingerprint']}/{a['status']}": f"r|{a['fingerprint']}" for a in alerts}
    firing = [a for a in alerts if a["status"] == "firing"]
    resolved = [a for a in alerts if a["status"] != "firing"]
    return Notification(route, "r{}", {"model": alerts[0]["model"]}, firing, resolved, keys, 0)


def test_alerts_are_rendered_by_every_sink_or_dead_lettered(tmp_path) -> None:
    notifier = Notifier(closed_port(), load_routes(), {"console": LogSink("console")},
                        tmp_path, topics, clock=lambda: NOW_MS, registry=CollectorRegistry())
    notifier.producer = Producer()  # type: ignore[assignment]
    email = EmailSink("mail", "127.0.0.1", 25, "mw@example.com", ["ops@example.com"])
    log_sink = LogSink("log", Console(file=io.StringIO(), width=100))
    gen = Hostile(SEED + 17, NOW_MS)
    rendered = 0
    for i in range(N):
        value = gen.payload("alerts")
        notifier._ingest(Msg(topics.alerts, b"fp", value, i))  # noqa: SLF001
        if rendered >= RENDERED:
            continue
        try:
            alert = codec.decode(value, expect=("AlertEvent",)).record
        except Exception:
            continue
        n = _notification([alert])
        json.dumps(json_safe(webhook_payload("hook", n)), allow_nan=False)
        json.dumps(json_safe(slack_payload(n)), allow_nan=False)
        msg = email.message(n)
        raw = msg.as_bytes()
        assert b"\r\nX-Evil" not in raw and b"\nBcc:" not in raw.split(b"\n\n")[0]
        log_sink.send(n)
        title(n), alert_line(alert), text_body(n)
        rendered += 1
    assert rendered == RENDERED
    kinds = Counter(codec.decode(v).record["error_kind"] for _, _, v in notifier.producer.sent)
    assert kinds["decode"] > N // 10 and kinds["processing"] == 0, kinds
    # every record of the partition is accounted for: nothing holds the offsets back
    assert notifier.tracker.committable().get(0, 0) > 0
