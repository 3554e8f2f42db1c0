"""Thin confluent-kafka helpers shared by the evaluator, the notifier and the CLI.

Consumer settings suit the embedded broker (Tansu): a 6 s session timeout and 1 s
heartbeat (a join waits session/2 there), ``auto.offset.reset=earliest``, manual commits.
Tansu does not compact, so "compacted" topics are read from the beginning with the last
value per key winning (:func:`read_topic`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from schemas.metrics_catalogue import build_info


def consumer_config(bootstrap: str, group_id: str | None = None,
                    **overrides: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id or f"modelwatch-reader-{uuid.uuid4().hex[:8]}",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "log_level": 3,
    }
    conf.update(overrides)
    return conf


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    # no idempotent producer: it does not work against the embedded broker
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                            "log_level": 3}
    conf.update(overrides)
    return conf


def make_producer(bootstrap: str, **overrides: Any) -> Producer:
    return Producer(producer_config(bootstrap, **overrides))


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def partitions_of(consumer: Consumer, topic: str, timeout_s: float = 10.0) -> list[int]:
    meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None:
        raise KafkaException(f"topic {topic} not found: {getattr(meta, 'error', None)}")
    return sorted(meta.partitions)


def read_topic(bootstrap: str, topic: str, partitions: list[int] | None = None,
               upto: Mapping[int, int] | None = None, timeout_s: float = 15.0) -> list[Record]:
    """Every record of ``topic`` (or of some partitions) from the beginning up to now.

    The end of a partition is the fetch's end-of-partition event, not ListOffsets: the
    embedded broker reports wrong high watermarks there (a batch count, not an offset).
    ``upto`` bounds a partition's read to offsets below the given one (e.g. a group's
    committed offset; negative = unbounded). Raises ``TimeoutError`` when the end is not
    reached in time.
    """
    consumer = Consumer(consumer_config(bootstrap, **{"enable.partition.eof": True}))
    try:
        parts = partitions if partitions is not None else partitions_of(consumer, topic)
        bound = {p: upto[p] for p in parts if upto is not None and upto.get(p, -1) >= 0}
        remaining = {p for p in parts if bound.get(p, 1) > 0}
        if not remaining:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in remaining])
        out: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(remaining)} did not "
                                   f"reach their end within {timeout_s}s")
            for msg in consumer.consume(500, timeout=0.1):
                p = msg.partition()
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        remaining.discard(p)
                    continue
                if p not in remaining:
                    continue
                off = msg.offset()
                if p in bound and off >= bound[p]:
                    remaining.discard(p)
                    continue
                out.append(Record(p, off, msg.key(), msg.value()))
                if p in bound and off + 1 >= bound[p]:
                    remaining.discard(p)
        out.sort(key=lambda r: (r.partition, r.offset))
        return out
    finally:
        consumer.close()


def last_per_key(records: list[Record]) -> dict[bytes | None, Record]:
    """Compacted-topic view: the last record per key (tombstones included, as None values)."""
    out: dict[bytes | None, Record] = {}
    for rec in records:
        out[rec.key] = rec
    return out


def process_registry() -> CollectorRegistry:
    """A metrics registry with the standard process and platform collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    build_info(registry)
    return registry
