"""``modelwatch evaluate``: detections → policy + lifecycle → AlertEvents and RetrainRequests.

A thin Kafka adapter around :class:`~alerting.lifecycle.AlertLifecycle`:

* consumes ``modelwatch.detections`` in a consumer group (run one active evaluator; more
  stand by in the same group), decodes each ``Detection`` and feeds the lifecycle;
* publishes every lifecycle event to ``modelwatch.alerts`` keyed by fingerprint, and a
  ``RetrainRequest`` to ``modelwatch.actions`` (keyed by model) when a rule with
  ``action: retrain`` fires (rate-limited per model);
* reads ``modelwatch.silences`` from the beginning and then follows it (last value per
  key; tombstones remove);
* when assigned the detections (at start, or taking over from another evaluator of the
  group), restores open alerts from ``modelwatch.alerts`` (last event per fingerprint),
  so a restart or a fail-over neither re-fires nor forgets to resolve what was opened;
* commits detection offsets only after the events they caused are flushed to the broker
  (at-least-once; a replayed detection is deduplicated by the restored state);
* undecodable detections go to ``modelwatch.dead-letter`` with the reason.

Health (``/healthz`` next to ``/metrics``, :mod:`schemas.health`): fails when a detections
partition has records waiting (the consumer's high watermark, from its fetches) but its
committed position has not moved for ``stall_after_s`` — e.g. flushing or committing hangs
on an unreachable broker — or when the consume loop has not run for that long.

Metrics: ``modelwatch_alerts_firing{model,severity}``, ``modelwatch_evaluator_detections_total``,
``modelwatch_alert_events_total{status,severity}``, ``modelwatch_retrain_requests_total``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from alerting.kafka import process_registry
from alerting.lifecycle import AlertLifecycle, Clock, wall_clock_ms
from alerting.policy import Policy
from alerting.retrain import RetrainTrigger
from alerting.silences import Silence, SilenceStore, silence_key
from schemas.codec import DecodeError, default_codec
from schemas.dead_letter import dead_letter_record
from schemas.detection import Detection
from schemas.health import ProgressTracker, sample_highwater
from schemas.kafka import KafkaConfig, partitions_of, read_to_end
from schemas.metrics_catalogue import counter, gauge
from schemas.topics import TopicNames

log = logging.getLogger("modelwatch.evaluator")
HEALTH_STAGE = "detections"  # /healthz stage: committed detection offsets per partition
HEALTH_LOOP = "consume loop"


class EvaluatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.firing = gauge("modelwatch_alerts_firing", registry)
        self.detections = counter("modelwatch_evaluator_detections_total", registry)
        self.events = counter("modelwatch_alert_events_total", registry)
        self.retrains = counter("modelwatch_retrain_requests_total", registry)
        self.silences = counter("modelwatch_evaluator_silences_total", registry)
        self.tick_errors = counter("modelwatch_evaluator_tick_errors_total", registry)
        self._shown: set[tuple[str, str]] = set()

    def set_firing(self, firing: list[dict[str, Any]]) -> None:
        counts = Counter((a["model"], a["severity"]) for a in firing)
        for key in self._shown - set(counts):
            self.firing.labels(*key).set(0)
        for key, n in counts.items():
            self.firing.labels(*key).set(n)
        self._shown |= set(counts)


class Evaluator:
    def __init__(self, kafka: str | KafkaConfig, policy: Policy, topics: TopicNames | None = None,
                 group_id: str = "modelwatch-evaluator", clock: Clock = wall_clock_ms,
                 registry: CollectorRegistry | None = None, tick_s: float = 1.0,
                 stall_after_s: float = 60.0) -> None:
        self.kafka = KafkaConfig.of(kafka)
        self.topics = topics or TopicNames()
        self.group_id = group_id
        self.clock = clock
        self.tick_s = tick_s
        self.codec = default_codec()
        self.silences = SilenceStore()
        self.lifecycle = AlertLifecycle(policy, clock, self.silences)
        self.retrain = RetrainTrigger(policy.retrain_min_interval_ms, clock)
        self.registry = registry if registry is not None else process_registry()
        self.metrics = EvaluatorMetrics(self.registry)
        self.producer = self.kafka.producer()
        self.ready = threading.Event()
        self.owning = False  # assigned the detections (a standby in the group is not)
        self.health = ProgressTracker(stall_after_s)

    # -- state from topics -------------------------------------------------------------
    def _apply_silence(self, key: bytes | None, value: bytes | None) -> bool:
        """Apply one record of the silences topic; False (logged, counted) if unusable."""
        if key is None:
            self.metrics.silences.labels("invalid").inc()
            return False
        if value is None:
            self.silences.apply(silence_key(key), None)
            self.metrics.silences.labels("ok").inc()
            return True
        try:
            rec = self.codec.decode(value, expect=("Silence",)).record
            silence = Silence.from_record(rec)
        except (DecodeError, TypeError, KeyError) as exc:
            log.warning("ignoring undecodable silence %r: %s", key[:100], exc)
            self.metrics.silences.labels("invalid").inc()
            return False
        self.silences.apply(silence_key(key), silence)
        self.metrics.silences.labels("ok").inc()
        return True

    def restore(self) -> list[dict[str, Any]]:
        """Load silences and open alerts from their topics; return events to publish.

        Starts from a fresh lifecycle: called whenever this evaluator is assigned the
        detections, so a standby that takes over starts from what the active one published.
        """
        for rec in read_to_end(self.kafka, self.topics.silences):
            self._apply_silence(rec.key, rec.value)
        self.lifecycle = AlertLifecycle(self.lifecycle.policy, self.clock, self.silences)
        events = []
        for rec in read_to_end(self.kafka, self.topics.alerts):
            try:
                events.append(self.codec.decode(rec.value, expect=("AlertEvent",)).record)
            except DecodeError as exc:
                log.warning("ignoring undecodable alert at %d/%d: %s", rec.partition,
                            rec.offset, exc)
        try:
            out = self.lifecycle.restore(events)
        except Exception:  # one bad event must not keep the evaluator from starting
            log.exception("restoring %d alert events failed; restoring them one by one",
                          len(events))
            self.lifecycle = AlertLifecycle(self.lifecycle.policy, self.clock, self.silences)
            out = []
            for ev in events:
                try:
                    out += self.lifecycle.restore([ev])
                except Exception as exc:
                    log.error("skipping unrestorable alert event %r: %r",
                              str(ev.get("fingerprint"))[:100], exc)
        self.metrics.set_firing(self.lifecycle.firing())
        return out

    # -- output ------------------------------------------------------------------------
    def publish(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            self.producer.produce(self.topics.alerts, key=ev["fingerprint"].encode(),
                                  value=self.codec.encode("AlertEvent", ev))
            self.metrics.events.labels(ev["status"], ev["severity"]).inc()
            log.info("%s %s %s %s/%s", ev["status"], ev["severity"], ev["model"], ev["kind"],
                     ev["subject"])
            if ev["status"] == "firing":
                self._maybe_retrain(ev)
        if events:
            self.metrics.set_firing(self.lifecycle.firing())

    def _maybe_retrain(self, ev: dict[str, Any]) -> None:
        rule = self.lifecycle.policy.rule(ev["kind"])
        if rule is None or rule.action != "retrain":
            return
        det = self.lifecycle.detection_of(ev["fingerprint"])
        details = dict(det.details) if det is not None else {}
        features = self.lifecycle.active_subjects(ev["model"], "feature_drift")
        req = self.retrain.consider(ev, details, features)
        if req is None:
            return
        self.producer.produce(self.topics.actions, key=req["model"].encode(),
                              value=self.codec.encode("RetrainRequest", req))
        self.metrics.retrains.labels(req["model"]).inc()

    def _dead_letter(self, msg: Any, reason: str, kind: str = "decode") -> None:
        rec = dead_letter_record(key=msg.key(), value=msg.value(), reason=reason,
                                 error_kind=kind, topic=msg.topic(), partition=msg.partition(),
                                 offset=msg.offset(), now_ms=self.clock(),
                                 component="evaluator")
        self.producer.produce(self.topics.dead_letter, key=msg.key(),
                              value=self.codec.encode("DeadLetter", rec))

    def _flush(self) -> None:
        remaining = self.producer.flush(30)
        if remaining:
            raise RuntimeError(f"{remaining} alert records not acknowledged by the broker "
                               f"within 30 s; not committing")

    # -- the loop ----------------------------------------------------------------------
    def handle_detection(self, value: bytes | None, msg: Any = None) -> list[dict[str, Any]]:
        try:
            rec = self.codec.decode(value, expect=("Detection",)).record
        except DecodeError as exc:
            self.metrics.detections.labels("invalid").inc()
            if msg is not None:
                self._dead_letter(msg, str(exc))
            return []
        try:
            events = self.lifecycle.observe(Detection.from_record(rec))
            for ev in events:  # what cannot be published must not be half-applied later
                self.codec.encode("AlertEvent", ev)
        except Exception as exc:  # a bug on one detection must not stop the evaluator
            log.exception("detection could not be evaluated")
            self.metrics.detections.labels("error").inc()
            if msg is not None:
                self._dead_letter(msg, f"unexpected {type(exc).__name__}: {exc}", "processing")
            return []
        self.metrics.detections.labels("ok").inc()
        return events

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.publish(self.restore())
        self._flush()
        self.owning = bool(partitions)
        try:
            committed = consumer.committed(partitions, timeout=10)
        except Exception:  # health only: the position shows with the first commit
            log.warning("committed offsets unknown for health", exc_info=True)
            committed = partitions
        for tp in committed:  # processed up to the committed offset; backlog from fetches
            self.health.progress(HEALTH_STAGE, tp.partition, max(tp.offset, 0) - 1)
        log.info("assigned %s; restored %d open alert(s)", [tp.partition for tp in partitions],
                 len(self.lifecycle.firing()))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # another evaluator owns the detections now: it restores from the alerts topic
        self._flush()
        self.owning = False
        for tp in partitions:
            self.health.forget(HEALTH_STAGE, tp.partition)
        self.lifecycle = AlertLifecycle(self.lifecycle.policy, self.clock, self.silences)
        self.metrics.set_firing([])

    def run(self, stop: threading.Event, max_seconds: float | None = None) -> None:
        silences = self.kafka.consumer()
        parts = partitions_of(silences, self.topics.silences)
        # silences were read up to now by restore(); follow from the beginning again is
        # harmless (last value per key) and avoids relying on watermarks
        silences.assign([TopicPartition(self.topics.silences, p, OFFSET_BEGINNING)
                         for p in parts])
        consumer = self.kafka.consumer(self.group_id)
        consumer.subscribe([self.topics.detections], on_assign=self._on_assign,
                           on_revoke=self._on_revoke)
        self.ready.set()
        started = time.monotonic()
        last_tick = 0.0
        try:
            while not stop.is_set():
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
                for smsg in silences.consume(100, timeout=0):
                    if smsg.error() is None:
                        self._apply_silence(smsg.key(), smsg.value())
                self.health.beat(HEALTH_LOOP)
                sample_highwater(self.health, HEALTH_STAGE, consumer)
                msgs = consumer.consume(500, timeout=0.2)
                events: list[dict[str, Any]] = []
                consumed: dict[int, int] = {}  # partition -> last offset handled
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer error: %s", err)
                        continue
                    consumed[msg.partition()] = msg.offset()
                    events += self.handle_detection(msg.value(), msg)
                if self.owning and time.monotonic() - last_tick >= self.tick_s:
                    last_tick = time.monotonic()
                    try:
                        events += self.lifecycle.tick()
                    except Exception:  # logged and counted; the next tick tries again
                        log.exception("alert lifecycle tick failed")
                        self.metrics.tick_errors.inc()
                self.publish(events)
                if consumed:
                    self._flush()  # the events a detection caused are durable before its commit
                    consumer.commit(asynchronous=False)
                    for p, offset in consumed.items():  # progress means committed
                        self.health.progress(HEALTH_STAGE, p, offset)
                elif events:
                    self._flush()
        finally:
            try:
                self._flush()
            finally:
                consumer.close()
                silences.close()
