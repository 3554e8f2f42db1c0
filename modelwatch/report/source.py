"""Thin Kafka reader for the report: every record of a few topics, start to high watermark.

No consumer group is joined: all partitions are assigned from offset 0 and read up to the
high watermark observed at the start, within a time budget. Payloads that do not decode
as the expected record type are counted and skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from modelwatch.report.data import Record
from schemas.codec import DecodeError, default_codec
from schemas.topics import TopicNames


class SourceError(RuntimeError):
    """The cluster could not be read (unreachable, missing topic, time budget spent)."""


@dataclass
class TopicRead:
    """Decoded records of one topic and what was skipped."""

    records: list[Record] = field(default_factory=list)
    skipped: int = 0
    filtered: int = 0
    other_keys: set[bytes] = field(default_factory=set)


@dataclass
class ReportRecords:
    """Raw material of a report, as read from the cluster."""

    windows: list[Record]
    references: list[Record]
    alerts: list[Record]
    notes: list[str] = field(default_factory=list)
    other_models: list[str] = field(default_factory=list)


def read_topic(
    bootstrap: str,
    topic: str,
    expect: str,
    *,
    timeout_s: float = 30.0,
    key_filter: Callable[[bytes | None], bool] | None = None,
) -> TopicRead:
    """Every ``expect`` record of ``topic`` from offset 0 to the high watermark.

    ``key_filter`` drops messages by key before decoding (cheap pre-filter).
    Raises :class:`SourceError` when the topic is missing, the cluster does not answer,
    or the watermarks are not reached within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"modelwatch-report-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 10_000,
        "log_level": 2,  # connection failures surface as SourceError, not log spam
    })  # fmt: skip
    codec = default_codec()
    out = TopicRead()
    try:
        try:
            meta = consumer.list_topics(topic, timeout=max(1.0, min(10.0, timeout_s)))
        except KafkaException as exc:
            raise SourceError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None or not tmeta.partitions:
            reason = tmeta.error if tmeta is not None and tmeta.error else "no partitions"
            raise SourceError(f"topic {topic!r} is not readable on {bootstrap}: {reason}")
        remaining: dict[int, int] = {}
        assign = []
        for p in sorted(tmeta.partitions):
            budget = max(0.5, deadline - time.monotonic())
            try:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=min(10.0, budget)
                )
            except KafkaException as exc:
                raise SourceError(f"no watermarks for {topic}[{p}]: {exc}") from None
            if high > low:
                remaining[p] = high
                assign.append(TopicPartition(topic, p, low))
        if not assign:
            return out
        consumer.assign(assign)
        while remaining:
            if time.monotonic() > deadline:
                raise SourceError(
                    f"timed out after {timeout_s:.0f}s reading {topic}: partitions "
                    f"{sorted(remaining)} not read to their end"
                )
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            if not batch:  # offsets may have gaps (control records): ask where we are
                for tp in consumer.position([TopicPartition(topic, p) for p in remaining]):
                    if tp.offset >= 0 and tp.offset >= remaining.get(tp.partition, 0):
                        remaining.pop(tp.partition, None)
            for msg in batch:
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise SourceError(f"error reading {topic}: {err}")
                p, offset = msg.partition(), msg.offset()
                if p in remaining and offset + 1 >= remaining[p]:
                    del remaining[p]
                if key_filter is not None and not key_filter(msg.key()):
                    out.filtered += 1
                    if len(out.other_keys) < 100:
                        out.other_keys.add(msg.key() or b"")
                    continue
                try:
                    out.records.append(codec.decode(msg.value(), expect=(expect,)).record)
                except DecodeError:
                    out.skipped += 1
    finally:
        consumer.close()
    return out


def read_report_records(
    bootstrap: str, model: str, topics: TopicNames | None = None, timeout_s: float = 30.0
) -> ReportRecords:
    """Window stats (pre-filtered by key = model), references and alerts of one cluster."""
    t = topics or TopicNames()
    deadline = time.monotonic() + timeout_s
    model_key = model.encode()

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    windows = read_topic(bootstrap, t.window_stats, "WindowStats", timeout_s=left(),
                         key_filter=lambda k: k is None or k == model_key)  # fmt: skip
    refs = read_topic(bootstrap, t.references, "ReferenceProfile", timeout_s=left())
    alerts = read_topic(bootstrap, t.alerts, "AlertEvent", timeout_s=left())
    notes = [
        f"Skipped {r.skipped} undecodable record(s) on {name}."
        for name, r in ((t.window_stats, windows), (t.references, refs), (t.alerts, alerts))
        if r.skipped
    ]
    others = sorted(k.decode(errors="replace") for k in windows.other_keys)
    return ReportRecords(windows.records, refs.records, alerts.records, notes, others)
