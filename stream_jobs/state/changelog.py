"""The worker-state changelog: snapshots of per-partition state, keyed
``<consumer group>/<stage>/<partition>`` (the worker loop adds the group).

Writing is an ordinary outgoing record (:func:`state_record`), sent by the worker loop after
the outputs the snapshot accounts for. Reading (:func:`read_latest`) happens when partitions
are assigned: the whole topic is read to its end (Tansu answers ListOffsets wrongly, so the
end is the fetch's end-of-partition) and the last record per wanted key wins. On a real
cluster the topic is compacted, so a read costs one record per key; on the embedded broker
(no compaction) it grows with the snapshots written, which are proportional to windows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from schemas.kafka.config import KafkaConfig, KafkaUnavailable
from schemas.kafka.read import partitions_of
from stream_jobs.handler import Outgoing
from stream_jobs.state.codec import state_header


def state_record(topic: str, key: str, value: bytes) -> Outgoing:
    return Outgoing(topic, key.encode(), value)


def snapshot_offset(value: bytes) -> int:
    """The input offset a snapshot reflects (``last_offset`` of its header), -1 if unknown."""
    try:
        return int(state_header(value).get("last_offset", -1))
    except (ValueError, TypeError):
        return -1


def read_latest(
    conn: str | KafkaConfig, topic: str, keys: Iterable[str], timeout_s: float = 60.0
) -> tuple[dict[str, bytes], int]:
    """``({key: newest state}, records read)`` for the wanted keys.

    Newest means the highest input offset reflected (:func:`snapshot_offset`), the later
    written on a tie: a worker that lost a partition without knowing it (evicted from the
    group while stalled) may still write an older state after the new owner's, and must not
    win. (A topic recreated from offset 0 is a new life: its old states must be cleared
    first — see the state-identity check.)"""
    wanted = {k.encode() for k in keys}
    best: dict[str, int] = {}
    config = KafkaConfig.of(conn)
    consumer = config.consumer(**{"enable.partition.eof": True, "fetch.max.bytes": 52_428_800})
    latest: dict[str, bytes] = {}
    read = 0
    try:
        parts = partitions_of(consumer, topic, min(timeout_s, 30.0), config)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        todo = set(parts)
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} to its end took over {timeout_s}s")
            for msg in consumer.consume(500, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        todo.discard(msg.partition())
                    elif err.fatal():
                        raise KafkaUnavailable(f"reading {topic} on {config}: {err.str()}")
                    continue
                read += 1
                if msg.key() in wanted and msg.value() is not None:
                    key, version = msg.key().decode(), snapshot_offset(msg.value())
                    if version >= best.get(key, -(2**62)):
                        best[key] = version
                        latest[key] = msg.value()
    finally:
        consumer.close()
    return latest, read


def partition_count(conn: str | KafkaConfig, topic: str, timeout_s: float = 30.0) -> int:
    config = KafkaConfig.of(conn)
    consumer = config.consumer()
    try:
        return len(partitions_of(consumer, topic, timeout_s, config))
    finally:
        consumer.close()
