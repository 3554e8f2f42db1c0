"""Every worker reads the whole references topic (not as a group member: each worker needs
every model's reference), from the beginning, and keeps following it while it runs, so a new
reference takes effect without a restart. Last value per key wins (Tansu does not compact).

At startup the worker waits until the feed has read every partition to its end and applies
those references before it consumes any prediction (:meth:`ReferenceStage.load_initial`):
the reference in force when a model's first window is judged does not depend on which
thread wins a race, so the same history replayed twice gives the same answers. The end is
the fetch's end-of-partition, not ListOffsets (Tansu's high watermarks are wrong)."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from schemas.codec import Codec, DecodeError
from schemas.kafka import KafkaConfig

log = logging.getLogger("modelwatch.references")


class ReferenceFeed(threading.Thread):
    def __init__(self, kafka: str | KafkaConfig, topic: str, codec: Codec) -> None:
        super().__init__(daemon=True, name="reference-feed")
        self.kafka = KafkaConfig.of(kafka)
        self.topic = topic
        self.codec = codec
        self.updates: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stopping = threading.Event()
        self.caught_up = threading.Event()  # every partition read to its end once

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.updates.get_nowait())
            except queue.Empty:
                return out

    def run(self) -> None:
        consumer = self.kafka.consumer(
            f"modelwatch-refs-{uuid.uuid4().hex}",  # never joins: assign()
            **{"enable.partition.eof": True},
        )
        try:
            meta = consumer.list_topics(self.topic, timeout=30).topics[self.topic]
            behind = set(meta.partitions)
            consumer.assign([TopicPartition(self.topic, p, 0) for p in meta.partitions])
            while not self.stopping.is_set():
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF and behind:
                        behind.discard(msg.partition())
                        if not behind:
                            self.caught_up.set()
                    continue
                if msg is None or msg.value() is None:
                    continue
                try:
                    decoded = self.codec.decode(msg.value(), expect=("ReferenceProfile",))
                except DecodeError as exc:
                    log.warning("skipping reference at offset %s: %s", msg.offset(), exc)
                    continue
                self.updates.put(decoded.record)
        except Exception:
            log.exception("reference feed stopped")
        finally:
            consumer.close()


class ReferenceStage:
    """Hands every reference the feed has read to the engines that use references."""

    def __init__(
        self, feed: ReferenceFeed, listeners: list[Callable[[dict[str, Any]], None]]
    ) -> None:
        self.feed = feed
        self.listeners = listeners

    def load_initial(self, timeout_s: float = 30.0) -> bool:
        """Wait until the feed has read the references topic to its end, then apply what it
        read; call before consuming predictions. False (and a warning) on timeout."""
        caught_up = self.feed.caught_up.wait(timeout_s)
        if not caught_up:
            log.warning("references topic not read to its end within %.0fs; starting anyway "
                        "(a model's first windows may be judged without its reference)",
                        timeout_s)
        self.poll(0.0)
        return caught_up

    def poll(self, now_s: float) -> list:
        for profile in self.feed.drain():
            for listener in self.listeners:
                listener(profile)
            log.warning(
                "reference loaded for %s/%s (%d features)",
                profile["model"],
                profile["model_version"] or "*",
                len(profile["features"]),
            )
        return []
