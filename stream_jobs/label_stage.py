"""Adapter between the worker and the pure :class:`~stream_jobs.join.engine.LabelEngine`:
predictions and labels in; joined-performance windows, concept-drift detections and orphan
dead letters out.

Everything the engine emits goes through its **outbox**: the engine stores the encoded
records in the same atomic write as the state change behind them; :meth:`LabelStage.poll`
hands out the records not handed out yet, and :meth:`LabelStage.acknowledge` (called by
the worker once the broker has acknowledged every record it sent) removes them. A crash
in between re-sends them after the restart instead of losing them.

Closed performance windows are published to the window-stats topic as the *performance part*
of a window: a ``WindowStats`` record with the same model/version/window as the distribution
part published when the window closed, no ``features``, and ``performance`` / ``label``
filled. Readers merge the parts by (model, version, window).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from schemas.codec import Codec
from schemas.columnar import LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.dead_letter import dead_letter_record
from stream_jobs.handler import Outgoing
from stream_jobs.join.engine import JoinResult, LabelEngine, LabelOutputs, Orphan
from stream_jobs.label_pacing import LabelPacer
from stream_jobs.outputs import DetectionSink
from stream_jobs.performance.judge import performance_part
from stream_jobs.performance.metrics import LabelMetrics
from stream_jobs.reference.view import ReferenceView

log = logging.getLogger(__name__)
STALE_STORE_GAP = 1_000  # messages: far more than a crash leaves uncommitted (~1 s of batches)


class LabelStage:
    def __init__(
        self,
        engine: LabelEngine,
        metrics: LabelMetrics,
        sink: DetectionSink,
        codec: Codec,
        topics: TopicNames,
        pacer: LabelPacer | None = None,
    ) -> None:
        self.engine = engine
        self.pacer = pacer
        self.metrics = metrics
        self.sink = sink
        self.codec = codec
        self.topics = topics
        self.lock = threading.Lock()  # the metrics scrape reads the engine from another thread
        self._handed_out: set[bytes] = set()
        self._warned: set[tuple[str, int]] = set()

    def set_reference(self, profile: dict[str, Any]) -> None:
        with self.lock:
            self.engine.set_reference(
                profile["model"], profile["model_version"], ReferenceView(profile)
            )

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> None:
        with self.lock:
            result = self.engine.observe_predictions(
                self.topics.predictions, partition, offset, cols
            )
        self._check_skipped(result, self.topics.predictions, partition, offset)
        self.metrics.observe_join(result)
        if self.pacer is not None:
            t = int(cols.event_time_ms.max()) if cols.n else None
            self.pacer.predictions(partition, t)

    def _check_skipped(self, result: JoinResult, topic: str, partition: int, offset: int) -> None:
        """A replay after a crash skips a few batches; skipping far behind means the store
        belongs to an earlier life of the topic (recreated, or an in-memory broker)."""
        if not result.skipped:
            return
        applied = self.engine.applied_offset(topic, partition)
        if applied - offset > STALE_STORE_GAP and (topic, partition) not in self._warned:
            self._warned.add((topic, partition))
            log.error(
                "label store has %s[%d] applied up to offset %d but the broker delivered "
                "offset %d: the store is from an earlier life of the topic, so these "
                "batches are being skipped as already applied. Stop the worker and remove "
                "its data dir (MODELWATCH_DATA_DIR) to start over.",
                topic,
                partition,
                applied,
                offset,
            )

    async def wait_turn(self, partition: int) -> bool:
        """Called by the worker before a label record of ``partition``: waits while that
        partition's event time is ahead of its prediction partition's (reads in step).
        False: a rebalance took the partition away meanwhile (the record is not ours)."""
        return True if self.pacer is None else await self.pacer.wait_turn(partition)

    def observe_labels(self, partition: int, offset: int, labels: LabelColumns) -> list[Outgoing]:
        """Join; labels orphaned at once wait in the outbox for the next :meth:`poll`."""
        with self.lock:
            result: JoinResult = self.engine.observe_labels(
                self.topics.labels,
                partition,
                offset,
                labels,
                encode=self._encoder(partition, offset),
            )
        self._check_skipped(result, self.topics.labels, partition, offset)
        self.metrics.observe_join(result)
        if self.pacer is not None and labels.n:
            self.pacer.labels(partition, int(labels.event_time_ms.max()))
        return []

    def poll(self, now_s: float) -> list[Outgoing]:
        with self.lock:
            self.engine.poll(int(now_s * 1000), encode=self._encoder(-1, -1))
            fresh = [(k, rec) for k, rec in self.engine.outbox() if k not in self._handed_out]
            self._handed_out.update(k for k, _ in fresh)
        return [Outgoing(*rec) for _, rec in fresh]

    def acknowledge(self) -> None:
        """Everything handed out so far is stored by the broker: drop it from the outbox."""
        with self.lock:
            self.engine.clear_outbox(sorted(self._handed_out))
            self._handed_out.clear()

    def _encoder(self, partition: int, offset: int):
        def encode(out: LabelOutputs) -> list[tuple[str, bytes, bytes]]:
            recs = [self.sink.encode_window_stats(performance_part(w)) for w in out.windows]
            recs += self.sink.encode(out.detections)
            recs += [self._orphan(o, partition, offset) for o in out.orphans]
            return [(r.topic, r.key or b"", r.value) for r in recs]

        return encode

    def _orphan(self, orphan: Orphan, partition: int, offset: int) -> Outgoing:
        reason = f"{orphan.reason}: prediction_id {orphan.prediction_id} of model {orphan.model}"
        topic = self.topics.labels if orphan.reason != "no_label" else self.topics.predictions
        record = dead_letter_record(
            key=orphan.prediction_id.encode(),
            value=None,
            reason=reason,
            error_kind="invalid" if orphan.reason == "no_value" else "orphan",
            topic=topic,
            partition=partition,
            offset=offset,
            now_ms=int(time.time() * 1000),
        )
        return Outgoing(
            self.topics.dead_letter,
            orphan.prediction_id.encode(),
            self.codec.encode("DeadLetter", record),
        )


class LockedLabelMetrics(LabelMetrics):
    """:class:`LabelMetrics` whose scrape takes the stage's lock."""

    lock: threading.Lock | None = None

    def collect(self):  # type: ignore[override]
        if self.lock is None:
            yield from super().collect()
            return
        with self.lock:
            families = list(super().collect())
        yield from families
