"""What the worker does with one Kafka record of the predictions topic, free of Faust.

Decode → validate → golden signals → batch observers (drift engine, join, …). Records that
cannot be used become dead letters (returned as outgoing records), so the Faust agent is a
thin adapter that sends whatever this returns.

:meth:`handle` is the poison-pill boundary: rules in :mod:`stream_jobs.decode` reject
what they know to be bad with a precise reason, and any exception that still escapes
(a bug) becomes a dead letter of kind ``processing`` naming the exception, counted in
``modelwatch_dead_letters_total``; ``handle`` itself never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.codec import Codec
from schemas.columnar import LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.dead_letter import dead_letter_record
from stream_jobs.decode import (
    RejectedRecord,
    decode_labels,
    decode_predictions,
    validate_labels,
    validate_rows,
)
from stream_jobs.golden import GoldenSignals
from stream_jobs.input_rules import InputRules
from stream_jobs.pipeline_metrics import PipelineMetrics

log = logging.getLogger("modelwatch.worker")


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes


class _SourceHandler:
    """What both topic handlers share: codec, topics, metrics, and the dead-letter path."""

    source_topic: str

    def __init__(
        self,
        codec: Codec,
        topics: TopicNames,
        pipeline: PipelineMetrics,
        rules: InputRules | None = None,
    ) -> None:
        self.codec = codec
        self.topics = topics
        self.pipeline = pipeline
        self.rules = rules or InputRules()

    # whether the last record handled reached the stages (changed their state); False for
    # a record that was only dead-lettered: nothing waits for a snapshot to cover it
    observed: bool = False

    def handle(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, now_s: float
    ) -> list[Outgoing]:
        """One record in, what to send out; never raises (see the module docstring)."""
        self.observed = False
        try:
            return self._handle(key, value, partition, offset, now_s)
        except Exception as exc:
            log.exception("unexpected error on %s[%d]@%d", self.source_topic, partition, offset)
            reason = f"unexpected {type(exc).__name__}: {exc}"
            return [
                self._dead_letter(
                    key, value, "processing", reason, partition, offset, int(now_s * 1000)
                )
            ]

    def _handle(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, now_s: float
    ) -> list[Outgoing]:
        raise NotImplementedError

    def _dead_letter(
        self,
        key: bytes | None,
        value: bytes | None,
        kind: str,
        reason: str,
        partition: int,
        offset: int,
        now_ms: int,
    ) -> Outgoing:
        """A dead letter for a record of the source topic, counted in the pipeline metrics."""
        self.pipeline.dead_letters.labels(self.source_topic, kind).inc()
        record = dead_letter_record(
            key=key,
            value=value,
            reason=reason,
            error_kind=kind,
            topic=self.source_topic,
            partition=partition,
            offset=offset,
            now_ms=now_ms,
        )
        return Outgoing(self.topics.dead_letter, key, self.codec.encode("DeadLetter", record))


class BatchObserver(Protocol):
    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> object: ...


class PredictionHandler(_SourceHandler):
    def __init__(
        self,
        codec: Codec,
        topics: TopicNames,
        golden: GoldenSignals,
        pipeline: PipelineMetrics,
        observers: Sequence[BatchObserver] = (),
        rules: InputRules | None = None,
    ) -> None:
        super().__init__(codec, topics, pipeline, rules)
        self.source_topic = topics.predictions
        self.golden = golden
        self.observers = list(observers)

    def _handle(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, now_s: float
    ) -> list[Outgoing]:
        topic = self.topics.predictions
        now_ms = int(now_s * 1000)
        try:
            cols = decode_predictions(self.codec, value)
        except RejectedRecord as exc:
            return [self._dead_letter(key, value, exc.kind, exc.reason, partition, offset, now_ms)]
        checked = validate_rows(cols, now_ms, self.rules)
        out: list[Outgoing] = []
        if checked.bad is not None:
            bad_bytes = self.codec.encode("PredictionBatch", checked.bad.to_record())
            out.append(
                self._dead_letter(
                    key,
                    bad_bytes,
                    "invalid",
                    checked.bad_reason,
                    partition,
                    offset,
                    now_ms,
                )
            )
        if checked.good is not None:
            self.observed = True
            self.golden.observe(checked.good, now_s)
            for observer in self.observers:
                try:
                    observer.observe(partition, offset, checked.good)
                except Exception as exc:  # a bug must not stop the worker: keep the record
                    log.exception(
                        "%s failed on %s[%d]@%d", type(observer).__name__, topic, partition, offset
                    )
                    reason = f"{type(observer).__name__} raised {exc!r}"
                    out.append(
                        self._dead_letter(
                            key, value, "processing", reason, partition, offset, now_ms
                        )
                    )
            self.pipeline.events.labels(topic).inc(checked.good.n)
        self.pipeline.batches.labels(topic).inc()
        return out


class LabelObserver(Protocol):
    def observe_labels(
        self, partition: int, offset: int, labels: LabelColumns
    ) -> list[Outgoing]: ...


class LabelHandler(_SourceHandler):
    """One Kafka record of the labels topic: decode, hand to the join, dead-letter the rest."""

    def __init__(
        self,
        codec: Codec,
        topics: TopicNames,
        pipeline: PipelineMetrics,
        observer: LabelObserver,
        rules: InputRules | None = None,
    ) -> None:
        super().__init__(codec, topics, pipeline, rules)
        self.source_topic = topics.labels
        self.observer = observer

    def _handle(
        self, key: bytes | None, value: bytes | None, partition: int, offset: int, now_s: float
    ) -> list[Outgoing]:
        topic = self.topics.labels
        now_ms = int(now_s * 1000)
        try:
            labels = decode_labels(self.codec, value)
        except RejectedRecord as exc:
            return [self._dead_letter(key, value, exc.kind, exc.reason, partition, offset, now_ms)]
        checked = validate_labels(labels, now_ms, self.rules)
        out: list[Outgoing] = []
        if checked.bad is not None:
            bad_bytes = self.codec.encode("LabelBatch", checked.bad.to_record())
            out.append(
                self._dead_letter(
                    key, bad_bytes, "invalid", checked.bad_reason, partition, offset, now_ms
                )
            )
        if checked.good is not None:
            try:
                out += self.observer.observe_labels(partition, offset, checked.good)
            except Exception as exc:  # a bug must not stop the worker: keep the record
                log.exception("label join failed on %s[%d]@%d", topic, partition, offset)
                reason = f"label join raised {exc!r}"
                out.append(
                    self._dead_letter(key, value, "processing", reason, partition, offset, now_ms)
                )
            self.pipeline.events.labels(topic).inc(checked.good.n)
        self.pipeline.batches.labels(topic).inc()
        return out
