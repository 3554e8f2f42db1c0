"""Pending predictions move with their partition: the input topic is the changelog.

When the group assigns this worker a partition that another worker processed (the group's
committed offset is past what this worker's label store applied), the label join of that
partition is rebuilt from the topics before its labels are read: the predictions
partition is re-read from its start up to the committed offset (pending records and their
expiry, :meth:`LabelEngine.observe_predictions` with ``restore``), then the labels
partition likewise (:meth:`LabelEngine.restore_labels`: predictions already labelled become
joined, labels still waiting become early labels). Nothing is counted: counts, windows and
detections of those offsets belong to the worker that processed them. The reads use their
own consumer (assigned, no group), in a thread, so the worker's event loop, heartbeats and
other partitions go on; the partition's label agent waits for the restore
(:meth:`LabelPacer.wait_turn`), its prediction agent does not need to (first write wins).

Metrics: ``modelwatch_label_restore_seconds`` (per partition) and
``modelwatch_label_records_restored_total``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from schemas.codec import Codec
from schemas.metrics_catalogue import counter, histogram
from schemas.topics import TopicNames
from stream_jobs.decode import RejectedRecord, decode_labels, decode_predictions

log = logging.getLogger(__name__)


def read_partition(bootstrap: str, topic: str, partition: int, end: int, timeout_s: float = 60.0):
    """``(offset, value)`` of ``topic[partition]`` from its start through offset ``end``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"modelwatch-restore-{uuid.uuid4().hex}",  # never joins: assign()
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            deadline = time.monotonic() + timeout_s
            if msg.offset() > end:
                return
            yield msg.offset(), msg.value()
            if msg.offset() >= end:
                return
        raise TimeoutError(f"{topic}[{partition}] gave nothing for {timeout_s}s before {end}")
    finally:
        consumer.close()


class LabelRestore:
    def __init__(
        self,
        stage: Any,  # LabelStage: its engine, lock and pacer
        bootstrap: str,
        topics: TopicNames,
        codec: Codec,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.stage = stage
        self.bootstrap = bootstrap
        self.topics = topics
        self.codec = codec
        registry = registry if registry is not None else CollectorRegistry()
        self.seconds = histogram("modelwatch_label_restore_seconds", registry)
        self.records = counter("modelwatch_label_records_restored_total", registry)

    def foreign(self, partition: int, committed_predictions: int) -> bool:
        """Whether the group committed predictions of ``partition`` past what this
        worker's store applied (another worker processed them)."""
        applied = self.stage.engine.applied_offset(self.topics.predictions, partition)
        # as of the assignment: the partition's predictions may be flowing again by now
        applied = getattr(self.stage, "applied_at_assign", {}).get(partition, applied)
        return committed_predictions > 0 and applied < committed_predictions - 1

    def restore(self, partition: int, end_predictions: int, end_labels: int) -> int:
        """Rebuild the join state of ``partition`` from the topics (blocking; run it in a
        thread). Returns the records read."""
        t0 = time.monotonic()
        engine, lock, n = self.stage.engine, self.stage.lock, 0
        if end_predictions >= 0:
            for offset, value in read_partition(
                self.bootstrap, self.topics.predictions, partition, end_predictions
            ):
                n += 1
                try:
                    cols = decode_predictions(self.codec, value)
                except RejectedRecord:
                    continue  # dead-lettered by whoever read it first
                with lock:
                    engine.observe_predictions(
                        self.topics.predictions, partition, offset, cols, restore=True
                    )
        if end_labels >= 0:
            for offset, value in read_partition(
                self.bootstrap, self.topics.labels, partition, end_labels
            ):
                n += 1
                try:
                    labels = decode_labels(self.codec, value)
                except RejectedRecord:
                    continue
                with lock:
                    engine.restore_labels(self.topics.labels, partition, offset, labels)
        self.seconds.observe(time.monotonic() - t0)
        self.records.inc(n)
        log.warning(
            "label join of partition %d restored from the topics: %d records in %.1f s",
            partition,
            n,
            time.monotonic() - t0,
        )
        return n

    def install(self, app: Any, pacer: Any) -> None:
        """On every assignment: restore the partitions another worker processed."""

        @app.on_partitions_assigned.connect
        async def restore_on_assign(app_: Any, assigned: set, **_: object) -> None:
            parts = sorted({tp.partition for tp in assigned if tp.topic == self.topics.labels})
            for p in parts:
                pacer.hold(p)  # its labels wait until we know (and have rebuilt) its state
            self._task = asyncio.ensure_future(self._restore_all(parts, pacer))

    async def _restore_all(self, parts: list[int], pacer: Any) -> None:
        for p in parts:
            try:
                committed_p = await pacer.committed(self.topics.predictions, p)
                if committed_p is not None and self.foreign(p, committed_p):
                    committed_l = await pacer.committed(self.topics.labels, p)
                    await asyncio.to_thread(
                        self.restore, p, committed_p - 1, (committed_l or 0) - 1
                    )
            except Exception:
                log.exception("restoring the label join of partition %d failed", p)
            finally:
                pacer.release(p)
