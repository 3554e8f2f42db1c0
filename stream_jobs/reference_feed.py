"""Every worker reads the whole references topic (not as a group member: each worker needs
every model's reference), from the beginning, and keeps following it while it runs, so a new
reference takes effect without a restart. Last value per key wins (Tansu does not compact).

The feed is a thread that never dies of its input or of the broker: a broker that is down
at start or goes away is retried with backoff (resuming after the last offset read, so a
reconnect does not re-install every reference), and each record is decoded and checked
(:func:`~stream_jobs.reference.check.check_profile`) on the feed's thread, off the event
loop. A rejected reference becomes a dead letter and a metric, and the model keeps its
previous reference. :meth:`ReferenceFeed.alive` says whether the feed still makes contact
(the health endpoint reports it).

At startup the worker waits until the feed has read every partition to its end and applies
those references before it consumes any prediction (:meth:`ReferenceStage.load_initial`):
the reference in force when a model's first window is judged does not depend on which
thread wins a race, so the same history replayed twice gives the same answers. The end is
the fetch's end-of-partition, not ListOffsets (Tansu's high watermarks are wrong).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from schemas.codec import Codec, DecodeError
from schemas.kafka import KafkaConfig
from schemas.metrics_catalogue import counter, gauge
from schemas.topics import TopicNames
from stream_jobs.dead_letter import dead_letter_record
from stream_jobs.handler import Outgoing
from stream_jobs.reference.check import InvalidReference, check_profile

log = logging.getLogger("modelwatch.references")
BROKER_DOWN = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT}  # noqa: SLF001


@dataclass(frozen=True)
class ReferenceUpdate:
    """One record of the references topic: an accepted ``profile`` or an ``error``."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    profile: dict[str, Any] | None = None
    error: str = ""
    error_kind: str = ""


def check_reference(
    codec: Codec, key: bytes | None, value: bytes | None, partition: int, offset: int
) -> ReferenceUpdate:
    """Decode and check one record; never raises."""
    try:
        record = codec.decode(value, expect=("ReferenceProfile",)).record
        check_profile(record)
    except DecodeError as exc:
        return ReferenceUpdate(partition, offset, key, value, error=str(exc), error_kind="decode")
    except InvalidReference as exc:
        return ReferenceUpdate(partition, offset, key, value, error=str(exc), error_kind="invalid")
    except Exception as exc:  # a bug in a check must not kill the feed
        reason = f"unexpected {type(exc).__name__}: {exc}"
        return ReferenceUpdate(partition, offset, key, value, error=reason, error_kind="processing")
    return ReferenceUpdate(partition, offset, key, value, profile=record)


class ReferenceFeed(threading.Thread):
    def __init__(
        self,
        kafka: str | KafkaConfig,
        topic: str,
        codec: Codec,
        *,
        max_backoff_s: float = 30.0,
        stale_after_s: float = 60.0,
    ) -> None:
        super().__init__(daemon=True, name="reference-feed")
        self.kafka = KafkaConfig.of(kafka)
        self.topic = topic
        self.codec = codec
        self.updates: queue.Queue[ReferenceUpdate] = queue.Queue()
        self.stopping = threading.Event()
        self.max_backoff_s = max_backoff_s
        self.stale_after_s = stale_after_s
        self.positions: dict[int, int] = {}  # partition -> next offset to read
        self.last_contact_s = time.monotonic()
        self.failures = 0  # consecutive failed connection attempts
        self.caught_up = threading.Event()  # every partition read to its end once
        self._behind: set[int] = set()  # partitions not read to their end yet

    def drain(self) -> list[ReferenceUpdate]:
        out = []
        while True:
            try:
                out.append(self.updates.get_nowait())
            except queue.Empty:
                return out

    def alive(self, now_s: float | None = None) -> bool:
        """The thread runs and reached the broker within ``stale_after_s``."""
        now_s = time.monotonic() if now_s is None else now_s
        return self.is_alive() and now_s - self.last_contact_s <= self.stale_after_s

    def _consumer(self) -> Any:
        consumer = self.kafka.consumer(
            f"modelwatch-refs-{uuid.uuid4().hex}",  # never joins: assign()
            **{"enable.partition.eof": True},
        )
        try:
            meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
            if meta is None or meta.error is not None or not meta.partitions:
                why = getattr(meta, "error", None)
                raise RuntimeError(f"topic {self.topic} not available: {why}")
            consumer.assign(
                [TopicPartition(self.topic, p, self.positions.get(p, 0)) for p in meta.partitions]
            )
            if not self.caught_up.is_set():
                self._behind = set(meta.partitions)
        except Exception:
            consumer.close()
            raise
        return consumer

    def _follow(self, consumer: Any) -> None:
        while not self.stopping.is_set():
            msg = consumer.poll(0.5)
            if msg is None:
                self.last_contact_s = time.monotonic()
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self._reached_end(msg.partition())
                if err.code() in BROKER_DOWN:
                    log.warning("reference feed: %s", err)
                else:
                    self.last_contact_s = time.monotonic()
                continue
            self.last_contact_s = time.monotonic()
            self.positions[msg.partition()] = msg.offset() + 1
            if msg.value() is None:  # a tombstone: nothing to install
                continue
            self.updates.put(
                check_reference(self.codec, msg.key(), msg.value(), msg.partition(), msg.offset())
            )

    def _reached_end(self, partition: int) -> None:
        self.last_contact_s = time.monotonic()
        if self._behind:
            self._behind.discard(partition)
            if not self._behind:
                self.caught_up.set()

    def run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                consumer = self._consumer()
            except Exception as exc:
                self.failures += 1
                log.warning("reference feed cannot read %s (retry in %.1f s): %s",
                            self.topic, backoff, exc)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.failures, backoff = 0, 0.5
            self.last_contact_s = time.monotonic()
            try:
                self._follow(consumer)
            except Exception:
                log.exception("reference feed failed; reconnecting")
            finally:
                consumer.close()


class ReferenceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.references = counter("modelwatch_references_total", registry)
        self.feed_up = gauge("modelwatch_reference_feed_up", registry)


class ReferenceStage:
    """Hands every reference the feed accepted to the engines that use references;
    dead-letters what it rejected (the previous reference stays in force)."""

    def __init__(
        self,
        feed: ReferenceFeed,
        listeners: list[Callable[[dict[str, Any]], None]],
        codec: Codec | None = None,
        topics: TopicNames | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.feed = feed
        self.listeners = listeners
        self.codec = codec or feed.codec
        self.topics = topics or TopicNames()
        self.metrics = ReferenceMetrics(registry) if registry is not None else None
        self._held: list[Outgoing] = []  # dead letters of load_initial, sent by the next poll

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.references.labels(outcome).inc()

    def _reject(self, up: ReferenceUpdate, now_s: float) -> Outgoing:
        log.error(
            "rejected reference at %s[%d]@%d (previous reference stays in force): %s",
            self.feed.topic, up.partition, up.offset, up.error,
        )
        self._count("rejected")
        rec = dead_letter_record(
            key=up.key, value=up.value, reason=f"reference rejected: {up.error}",
            error_kind=up.error_kind or "invalid", topic=self.feed.topic,
            partition=up.partition, offset=up.offset, now_ms=int(now_s * 1000),
        )
        return Outgoing(self.topics.dead_letter, up.key, self.codec.encode("DeadLetter", rec))

    def load_initial(self, timeout_s: float = 30.0) -> bool:
        """Wait until the feed has read the references topic to its end, then apply what it
        read; call before consuming predictions. False (and a warning) on timeout. Dead
        letters of rejected references are handed out by the next :meth:`poll`."""
        caught_up = self.feed.caught_up.wait(timeout_s)
        if not caught_up:
            log.warning("references topic not read to its end within %.0fs; starting anyway "
                        "(a model's first windows may be judged without its reference)",
                        timeout_s)
        self._held.extend(self.poll(time.time()))
        return caught_up

    def poll(self, now_s: float) -> list[Outgoing]:
        out, self._held = self._held, []
        if self.metrics is not None:
            self.metrics.feed_up.set(1 if self.feed.alive() else 0)
        for up in self.feed.drain():
            if up.profile is None:
                out.append(self._reject(up, now_s))
                continue
            profile = up.profile
            failed = []
            for listener in self.listeners:
                try:
                    listener(profile)
                except Exception as exc:  # a bug in one engine must not stop the others
                    log.exception("installing reference %s/%s failed", profile["model"],
                                  profile["model_version"])
                    failed.append(f"{getattr(listener, '__qualname__', listener)}: {exc!r}")
            if failed:
                out.append(self._reject(
                    ReferenceUpdate(up.partition, up.offset, up.key, up.value,
                                    error="; ".join(failed), error_kind="processing"), now_s))
                continue
            self._count("loaded")
            log.warning(
                "reference loaded for %.100s/%.100s (%d features)",
                profile["model"],
                profile["model_version"] or "*",
                len(profile["features"]),
            )
        return out
