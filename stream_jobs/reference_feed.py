"""Every worker reads the whole references topic (not as a group member: each worker needs
every model's reference), from the beginning, and keeps following it while it runs, so a new
reference takes effect without a restart. Last value per key wins (Tansu does not compact)."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import TopicPartition

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

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.updates.get_nowait())
            except queue.Empty:
                return out

    def run(self) -> None:
        consumer = self.kafka.consumer(
            f"modelwatch-refs-{uuid.uuid4().hex}"  # never joins: assign()
        )
        try:
            meta = consumer.list_topics(self.topic, timeout=30).topics[self.topic]
            consumer.assign([TopicPartition(self.topic, p, 0) for p in meta.partitions])
            while not self.stopping.is_set():
                msg = consumer.poll(0.5)
                if msg is None or msg.error() or msg.value() is None:
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
