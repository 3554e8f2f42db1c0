"""Thin Kafka reader for the report: every record of a few topics, start to end.

No consumer group is joined: :func:`schemas.kafka.read_to_end` reads every partition to
its end within a time budget. Payloads that do not decode as the expected record type are
counted and skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelwatch.report.data import Record
from schemas.codec import DecodeError, default_codec
from schemas.kafka import KafkaConfig, KafkaUnavailable, read_to_end
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
    kafka: str | KafkaConfig,
    topic: str,
    expect: str,
    *,
    timeout_s: float = 30.0,
    key_filter: Callable[[bytes | None], bool] | None = None,
) -> TopicRead:
    """Every ``expect`` record of ``topic`` from the beginning to its end now.

    ``key_filter`` drops messages by key before decoding (cheap pre-filter).
    Raises :class:`SourceError` when the topic is missing, the cluster does not answer,
    or the end is not reached within ``timeout_s``.
    """
    codec = default_codec()
    out = TopicRead()
    try:
        raw = read_to_end(kafka, topic, timeout_s=timeout_s)
    except (KafkaUnavailable, TimeoutError) as exc:
        raise SourceError(str(exc)) from None
    for msg in raw:
        if key_filter is not None and not key_filter(msg.key):
            out.filtered += 1
            if len(out.other_keys) < 100:
                out.other_keys.add(msg.key or b"")
            continue
        try:
            out.records.append(codec.decode(msg.value, expect=(expect,)).record)
        except DecodeError:
            out.skipped += 1
    return out


def read_report_records(
    bootstrap: str | KafkaConfig, model: str, topics: TopicNames | None = None,
    timeout_s: float = 30.0,
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
