"""Reading topics: to their end, or following them.

The end of a partition is the fetch's end-of-partition event (``enable.partition.eof``),
never ListOffsets: the embedded broker (Tansu) answers ListOffsets with wrong high
watermarks (a batch count, not an offset). This is the one reader; the CLI, alerting, the
worker's reference feed and the report use it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from schemas.kafka.config import KafkaConfig, KafkaUnavailable, describe


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = -1


class TopicMissing(KafkaUnavailable):
    """The topic does not exist (or is not readable with these credentials)."""


def partitions_of(consumer: Consumer, topic: str, timeout_s: float = 10.0,
                  where: object = "Kafka") -> list[int]:
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot reach Kafka at {where}: {describe(exc)}") from None
    if meta is None or meta.error is not None or not meta.partitions:
        reason = describe(meta.error) if meta is not None and meta.error else "no partitions"
        raise TopicMissing(f"topic {topic} is not readable on {where}: {reason}")
    return sorted(meta.partitions)


def _record(msg: object) -> Record:
    ts_type, ts = msg.timestamp()  # type: ignore[attr-defined]
    return Record(msg.partition(), msg.offset(), msg.key(), msg.value(),  # type: ignore[attr-defined]
                  ts if ts_type else -1)


def read_to_end(
    conn: str | KafkaConfig, topic: str, partitions: list[int] | None = None,
    upto: Mapping[int, int] | None = None, timeout_s: float = 15.0,
    since: Mapping[int, int] | None = None,
) -> list[Record]:
    """Every record of ``topic`` (or of some partitions) from the beginning up to now,
    sorted by (partition, offset).

    ``upto`` bounds a partition's read to offsets below the given one (e.g. a group's
    committed offset; negative = unbounded); ``since`` starts it at the given offset
    instead of the beginning (negative = the beginning). Raises :class:`KafkaUnavailable` when the
    cluster does not answer, :class:`TopicMissing`, or ``TimeoutError`` when the end is
    not reached in time.
    """
    config = KafkaConfig.of(conn)
    consumer = config.consumer(**{"enable.partition.eof": True})
    try:
        parts = partitions if partitions is not None else partitions_of(
            consumer, topic, min(timeout_s, 10.0), config)
        bound = {p: upto[p] for p in parts if upto is not None and upto.get(p, -1) >= 0}
        remaining = {p for p in parts if bound.get(p, 1) > 0}
        if not remaining:
            return []
        start = {p: (since or {}).get(p, -1) for p in remaining}
        consumer.assign([TopicPartition(topic, p, start[p] if start[p] >= 0 else OFFSET_BEGINNING)
                         for p in remaining])  # fmt: skip
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
                    elif err.fatal():
                        raise KafkaUnavailable(f"reading {topic} on {config}: {err.str()}")
                    continue
                if p not in remaining:
                    continue
                off = msg.offset()
                if p in bound and off >= bound[p]:
                    remaining.discard(p)
                    continue
                out.append(_record(msg))
                if p in bound and off + 1 >= bound[p]:
                    remaining.discard(p)
        out.sort(key=lambda r: (r.partition, r.offset))
        return out
    finally:
        consumer.close()


def follow(
    conn: str | KafkaConfig, topic: str, stop: threading.Event | None = None,
    poll_s: float = 0.5, metadata_timeout_s: float = 30.0,
) -> Iterator[Record]:
    """Every record of every partition of ``topic`` from the beginning, then new ones as
    they come, until ``stop`` is set or the iterator is closed. Not a group member: each
    follower sees everything (assign, no commits)."""
    config = KafkaConfig.of(conn)
    stop = stop or threading.Event()
    consumer = config.consumer()
    try:
        parts = partitions_of(consumer, topic, metadata_timeout_s, config)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        while not stop.is_set():
            for msg in consumer.consume(500, timeout=poll_s):
                err = msg.error()
                if err is not None:
                    if err.fatal():
                        raise KafkaUnavailable(f"following {topic} on {config}: {err.str()}")
                    continue
                yield _record(msg)
    finally:
        consumer.close()


def last_per_key(records: list[Record]) -> dict[bytes | None, Record]:
    """Compacted-topic view: the last record per key (tombstones included, as None values).
    The embedded broker does not compact, so compacted topics are read this way."""
    out: dict[bytes | None, Record] = {}
    for rec in records:
        out[rec.key] = rec
    return out
