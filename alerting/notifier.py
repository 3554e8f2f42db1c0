"""``modelwatch notify``: the notification worker (a consumer group on ``modelwatch.alerts``).

* Consumes AlertEvents (keyed by fingerprint, so one notifier owns an alert), groups them
  per route (:mod:`alerting.grouping`), and delivers each notification to the route's
  sinks. Every sink has its own worker thread, so a slow or failing sink never holds up
  the others.
* Each delivery retries with exponential backoff and jitter within the retry budget; a
  delivery that still fails goes to ``modelwatch.notify-dead-letter`` (DeadLetter,
  ``error_kind="delivery"``, the reason with URLs and secrets redacted) — never lost.
* Offsets are committed only once every notification carrying a record was delivered or
  dead-lettered (:class:`~alerting.offsets.OffsetTracker`).
* Idempotency: a delivered (or dead-lettered) notification records its keys
  ``sink|route|fingerprint|alert_id|status|epoch`` in a local fsync'd file
  (:class:`~alerting.sentlog.SentLog`) before the offset commit. A restarted notifier
  checks it, so it does not send again what it already sent.
* On partition assignment the notifier rebuilds its open alerts from the partition's
  history below the committed offset (last event per fingerprint), so repeats and
  resolutions continue across restarts.

Health (``/healthz`` next to ``/metrics``, :mod:`schemas.health`): fails when an alerts
partition has records waiting (the high watermark of the consumer's fetches) that are not
ingested for ``stall_after_s``, when a sink has deliveries in flight but none completed for
``stall_after_s`` plus the retry budget (a hung sink), or when the consume loop stopped.

Metrics: ``modelwatch_notifications_total{sink,outcome}`` (delivered, dead_lettered,
duplicate, abandoned), ``modelwatch_notification_dead_letters_total{sink}``,
``modelwatch_notification_attempts_total{sink}``, ``modelwatch_notifier_open_alerts``.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from alerting.grouping import Dispatcher, Notification
from alerting.kafka import process_registry
from alerting.lifecycle import Clock, wall_clock_ms
from alerting.offsets import OffsetTracker
from alerting.retry import DeliveryError, deliver_with_retry
from alerting.routes import Route, RoutesConfig
from alerting.sentlog import SentLog
from alerting.sinks.base import Sink, redact
from schemas.codec import DecodeError, default_codec
from schemas.dead_letter import dead_letter_record
from schemas.health import ProgressTracker, sample_highwater
from schemas.kafka import KafkaConfig, read_to_end
from schemas.metrics_catalogue import counter, gauge
from schemas.topics import TopicNames

log = logging.getLogger("modelwatch.notifier")
DONE_OUTCOMES = {"delivered", "dead_lettered", "duplicate"}
HEALTH_INGEST = "alerts"  # /healthz stage: ingested alert offsets per partition
HEALTH_DELIVERY = "deliveries"  # /healthz stage: completed deliveries per sink
HEALTH_LOOP = "consume loop"


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = counter("modelwatch_notifications_total", registry)
        self.dead_letters = counter("modelwatch_notification_dead_letters_total", registry)
        self.attempts = counter("modelwatch_notification_attempts_total", registry)
        self.open_alerts = gauge("modelwatch_notifier_open_alerts", registry)
        self.rejected = counter("modelwatch_notifier_rejected_total", registry)


@dataclass
class _InFlight:
    notification: Notification
    futures: dict[str, Future[str]] = field(default_factory=dict)


class Notifier:
    def __init__(self, kafka: str | KafkaConfig, routes: RoutesConfig, sinks: dict[str, Sink],
                 state_dir: Path | str, topics: TopicNames | None = None,
                 group_id: str = "modelwatch-notifier", clock: Clock = wall_clock_ms,
                 registry: CollectorRegistry | None = None,
                 stall_after_s: float = 60.0) -> None:
        missing = {s for r in routes.routes for s in r.sinks} - set(sinks)
        if missing:
            raise ValueError(f"routes use sinks that were not built: {sorted(missing)}")
        self.kafka = KafkaConfig.of(kafka)
        self.routes = routes
        self.sinks = sinks
        self.topics = topics or TopicNames()
        self.group_id = group_id
        self.clock = clock
        self.codec = default_codec()
        self.sent = SentLog(Path(state_dir) / f"{group_id}.sent")
        self.dispatcher = Dispatcher(routes.routes, clock, is_done=self._is_done)
        self.tracker = OffsetTracker()
        self.registry = registry if registry is not None else process_registry()
        self.metrics = NotifierMetrics(self.registry)
        self.producer = self.kafka.producer()
        self._executors = {name: ThreadPoolExecutor(1, thread_name_prefix=f"sink-{name}")
                           for name in sinks}
        self._inflight: list[_InFlight] = []
        self._fp_origin: dict[str, tuple[int, int]] = {}
        self._stopping = threading.Event()
        self._committed: dict[int, int] = {}
        self._next_refresh_ms: dict[str, int] = {}
        self.ready = threading.Event()
        self.assigned: set[int] = set()  # partitions of the alerts topic this notifier owns
        self.health = ProgressTracker(stall_after_s)
        self._delivered = dict.fromkeys(sinks, 0)  # deliveries completed per sink (health)

    # -- idempotency -------------------------------------------------------------------
    def _is_done(self, key: str, route: Route) -> bool:
        return all(self.sent.has(f"{sink}|{key}") for sink in route.sinks)

    # -- delivery (runs on the sink's own thread) ----------------------------------------
    def _deliver(self, sink_name: str, n: Notification) -> str:
        keys = [f"{sink_name}|{k}" for k in n.keys.values()]
        if all(self.sent.has(k) for k in keys):
            self.metrics.notifications.labels(sink_name, "duplicate").inc()
            return "duplicate"
        sink = self.sinks[sink_name]

        def attempt() -> None:
            self.metrics.attempts.labels(sink_name).inc()
            try:
                sink.send(n)
            except (DeliveryError, OSError):
                raise
            except Exception as exc:  # a sink bug on this alert: retrying will not help
                log.exception("sink %s failed on a notification", sink_name)
                raise DeliveryError(f"{sink_name}: {type(exc).__name__}: {exc}",
                                    retryable=False) from None

        result = deliver_with_retry(attempt, self.routes.retry,
                                    should_stop=self._stopping.is_set)
        if result.ok:
            self.sent.add(keys)
            self.metrics.notifications.labels(sink_name, "delivered").inc()
            return "delivered"
        if self._stopping.is_set():  # shutting down: leave it to the next notifier
            self.metrics.notifications.labels(sink_name, "abandoned").inc()
            return "abandoned"
        self._dead_letter(sink_name, n, result.error or "delivery failed")
        self.sent.add(keys)
        self.metrics.notifications.labels(sink_name, "dead_lettered").inc()
        self.metrics.dead_letters.labels(sink_name).inc()
        return "dead_lettered"

    def _dead_letter(self, sink_name: str, n: Notification, error: str) -> None:
        reason = redact(f"sink {sink_name} (route {n.route.name}): {error}")
        log.error("dead-lettering %d alert(s): %s", len(n.alerts), reason)
        for a in n.alerts:
            partition, offset = self._fp_origin.get(a["fingerprint"], (-1, -1))
            rec = {"key": a["fingerprint"].encode(),
                   "value": self.codec.encode("AlertEvent", a),
                   "reason": reason, "error_kind": "delivery",
                   "source_topic": self.topics.alerts, "source_partition": partition,
                   "source_offset": offset, "failed_at_ms": self.clock(),
                   "component": "notifier"}
            self.producer.produce(self.topics.notify_dead_letter, key=rec["key"],
                                  value=self.codec.encode("DeadLetter", rec))
        if self.producer.flush(30):
            raise RuntimeError("dead letter not acknowledged by the broker within 30 s")

    # -- consumer-group callbacks --------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = [tp.partition for tp in partitions]
        committed = consumer.committed(partitions, timeout=10)
        upto = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
        last: dict[str, tuple[int, int, dict[str, Any]]] = {}
        for rec in read_to_end(self.kafka, self.topics.alerts, partitions=parts,
                              upto={p: upto.get(p, 0) for p in parts}):
            try:
                ev = self.codec.decode(rec.value, expect=("AlertEvent",)).record
            except DecodeError:
                continue
            last[ev["fingerprint"]] = (rec.partition, rec.offset, ev)
        restored = 0
        for fp, (p, off, ev) in last.items():
            if ev["status"] == "firing":
                try:
                    self.dispatcher.ingest(ev)
                except Exception as exc:  # _ingest dead-lettered it when it came: skip it
                    log.error("not restoring the alert at %d/%d: %r", p, off, exc)
                    continue
                self._fp_origin[fp] = (p, off)
                restored += 1
        self.assigned = set(parts)
        for p in parts:  # ingested up to the committed offset; backlog from fetches
            self.health.progress(HEALTH_INGEST, p, upto.get(p, 0) - 1)
        log.info("assigned partitions %s; restored %d open alert(s)", parts, restored)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        parts = {tp.partition for tp in partitions}
        self.assigned -= parts
        for p in parts:
            self.health.forget(HEALTH_INGEST, p)
        self._commit(consumer)
        lost = {fp for fp, (p, _) in self._fp_origin.items() if p in parts}
        self.dispatcher.forget(lost)
        for fp in lost:
            self._fp_origin.pop(fp, None)
        self.tracker.forget(sorted(parts))
        for p in parts:
            self._committed.pop(p, None)

    # -- the loop ----------------------------------------------------------------------
    def _reject(self, msg: Any, reason: str, kind: str) -> None:
        """Dead-letter one record of the alerts topic; its offset may then be committed."""
        p, off = msg.partition(), msg.offset()
        rec = dead_letter_record(key=msg.key(), value=msg.value(), reason=reason,
                                 error_kind=kind, topic=msg.topic(), partition=p, offset=off,
                                 now_ms=self.clock(), component="notifier")
        self.producer.produce(self.topics.notify_dead_letter, key=msg.key(),
                              value=self.codec.encode("DeadLetter", rec))
        if self.producer.flush(30):
            raise RuntimeError("dead letter not acknowledged within 30 s") from None
        self.metrics.rejected.labels(kind).inc()
        self.tracker.add(p, off, refs=0)

    def _ingest(self, msg: Any) -> None:
        p, off = msg.partition(), msg.offset()
        try:
            ev = self.codec.decode(msg.value(), expect=("AlertEvent",)).record
        except DecodeError as exc:
            self._reject(msg, str(exc), "decode")
            return
        try:
            taken = self.dispatcher.ingest(ev, token=(p, off))
        except Exception as exc:  # a record no route can hold must not stop the partition
            log.exception("alert at %d/%d could not be grouped", p, off)
            self._reject(msg, f"unexpected {type(exc).__name__}: {exc}", "processing")
            return
        self._fp_origin[ev["fingerprint"]] = (p, off)
        self.tracker.add(p, off, refs=taken)

    def _release(self, n: Notification) -> None:
        for p, off in n.tokens:  # type: ignore[misc]
            self.tracker.release(p, off)

    def _dispatch(self) -> None:
        for n in self.dispatcher.flush_due():
            if not n.alerts:
                self._release(n)
                continue
            flight = _InFlight(n)
            for sink in n.route.sinks:
                flight.futures[sink] = self._executors[sink].submit(self._deliver, sink, n)
            self._inflight.append(flight)
        still = []
        for flight in self._inflight:
            if not all(f.done() for f in flight.futures.values()):
                still.append(flight)
                continue
            for sink in flight.futures:
                self._delivered[sink] += 1
            outcomes = {}
            for sink, fut in flight.futures.items():
                exc = fut.exception()
                if exc is not None:
                    log.error("delivery to %s failed unexpectedly: %s", sink,
                              redact(f"{type(exc).__name__}: {exc}"))
                    outcomes[sink] = "error"
                else:
                    outcomes[sink] = fut.result()
            if all(o in DONE_OUTCOMES for o in outcomes.values()):
                self._release(flight.notification)
            # otherwise the records stay held: their offsets are not committed and the
            # next notifier replays them (the sent log keeps what did go out from repeating)
        self._inflight = still
        self._delivery_health()
        self.metrics.open_alerts.set(len(self.dispatcher.open_alerts()))
        self._refresh()

    def _delivery_health(self) -> None:
        """Per sink: deliveries completed, and in flight. A delivery may retry for the
        retry budget, so a sink stalls only when none completed for longer than that."""
        waiting = dict.fromkeys(self.sinks, 0)
        for flight in self._inflight:
            for sink, fut in flight.futures.items():
                waiting[sink] += not fut.done()
        limit = self.health.stall_after_s + self.routes.retry.budget_s
        for sink, n in waiting.items():
            self.health.progress(HEALTH_DELIVERY, sink, self._delivered[sink], n, limit)

    def _refresh(self) -> None:
        """Sinks that keep alerts alive (Alertmanager: ``endsAt`` ahead) get the open alerts
        of their routes every ``resend_interval``, on their own thread."""
        now = self.clock()
        for name, sink in self.sinks.items():
            refresh = getattr(sink, "refresh", None)
            if refresh is None or now < self._next_refresh_ms.get(name, 0):
                continue
            self._next_refresh_ms[name] = now + int(getattr(sink, "resend_interval_ms", 60_000))
            self._executors[name].submit(refresh, self.dispatcher.firing_for_sink(name), now)

    def _commit(self, consumer: Consumer) -> None:
        offsets = {p: off for p, off in self.tracker.committable().items()
                   if self._committed.get(p) != off}
        if not offsets:
            return
        consumer.commit(offsets=[TopicPartition(self.topics.alerts, p, off)
                                 for p, off in offsets.items()], asynchronous=False)
        self._committed.update(offsets)

    def run(self, stop: threading.Event, max_seconds: float | None = None,
            drain_s: float = 10.0) -> None:
        consumer = self.kafka.consumer(self.group_id)
        consumer.subscribe([self.topics.alerts], on_assign=self._on_assign,
                           on_revoke=self._on_revoke)
        self.ready.set()
        started = time.monotonic()
        try:
            while not stop.is_set():
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
                self.health.beat(HEALTH_LOOP)
                sample_highwater(self.health, HEALTH_INGEST, consumer)
                ingested: dict[int, int] = {}
                for msg in consumer.consume(200, timeout=0.1):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            log.warning("consumer error: %s", err)
                        continue
                    self._ingest(msg)
                    ingested[msg.partition()] = msg.offset()
                for p, off in ingested.items():
                    self.health.progress(HEALTH_INGEST, p, off)
                self._dispatch()
                self._commit(consumer)
            # drain: let deliveries in flight finish, then commit what they released
            deadline = time.monotonic() + drain_s
            while self._inflight and time.monotonic() < deadline:
                time.sleep(0.05)
                self._dispatch()
            self._stopping.set()
            self._dispatch()
            self._commit(consumer)
        finally:
            self._stopping.set()
            for ex in self._executors.values():
                ex.shutdown(wait=False, cancel_futures=True)
            consumer.close()
            self.producer.flush(10)
            self.sent.close()
