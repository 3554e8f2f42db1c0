"""Adapter between the worker and the pure :class:`~stream_jobs.join.engine.LabelEngine`:
predictions and labels in; joined-performance windows, concept-drift detections and orphan
dead letters out.

Everything the engine emits goes through its **outbox**: the engine stores the encoded
records in the same atomic write as the state change behind them; :meth:`LabelStage.poll`
hands out the records not handed out yet, and :meth:`LabelStage.acknowledge` (called by
the worker once the broker has acknowledged every record it sent) removes them. A crash
in between re-sends them after the restart instead of losing them.

Performance windows are kept per input partition and closed on that partition's label
clock (:mod:`stream_jobs.join.engine`); each closed window (or a progress marker) goes to
the window-partials topic as a ``PartialRecord`` of kind ``performance``, keyed by model.
The merge stage merges the partitions' partials and publishes the *performance part* of the
window to window-stats (a ``WindowStats`` record with the same model/version/window as the
distribution part, no ``features``, ``performance`` / ``label`` filled) with its
detections, once per (model, version, window), whichever worker owns which partitions.
Readers merge the parts by (model, version, window).

**State that moves with its partition.** The join (pending predictions, early labels) lives
in the engine's store on local disk and is rebuilt from the topics by a new owner
(:mod:`stream_jobs.label_restore`). A partition's open performance windows and label clocks
are also snapshotted to the worker-state changelog (``labels/<partition>``): when the
partition made a closing step, every ``snapshot_every_s`` if it moved, once it stops moving,
and on revoke — after the partials they account for. Both input topics (predictions and
labels) are committed only up to the offsets of the partition's last stored snapshot
(:meth:`durable_offset`), so the next owner restores the snapshot and the replay from the
committed offsets updates only the join state for what the snapshot counted
(:meth:`~stream_jobs.join.engine.LabelEngine.restore_partition`). A worker whose own store
has applied at least as much of the partition (restarted after a crash, or handed the
partition straight back) keeps its store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.codec import Codec
from schemas.columnar import LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.dead_letter import dead_letter_record
from stream_jobs.handler import Outgoing
from stream_jobs.join.engine import JoinResult, LabelEngine, LabelOutputs, Orphan
from stream_jobs.label_pacing import LabelPacer
from stream_jobs.merge.progress import partial_message
from stream_jobs.outputs import DetectionSink
from stream_jobs.performance.metrics import LabelMetrics
from stream_jobs.reference.view import ReferenceView
from stream_jobs.stage import SnapshottingStage, key_partition, state_key
from stream_jobs.state.metrics import StateMetrics

log = logging.getLogger(__name__)
STALE_STORE_GAP = 1_000  # messages: far more than a crash leaves uncommitted (~1 s of batches)


class LabelStage(SnapshottingStage):
    name = "labels"

    def __init__(
        self,
        engine: LabelEngine,
        metrics: LabelMetrics,
        sink: DetectionSink,
        codec: Codec,
        topics: TopicNames,
        pacer: LabelPacer | None = None,
        state_metrics: StateMetrics | None = None,
        snapshot_every_s: float = 30.0,
    ) -> None:
        self.engine = engine
        self.pacer = pacer
        self.metrics = metrics
        self.sink = sink
        self.codec = codec
        self.topics = topics
        self.state_topics = (topics.labels, topics.predictions)
        self.state_metrics = state_metrics or StateMetrics(CollectorRegistry())
        self.lock = threading.Lock()  # the metrics scrape reads the engine from another thread
        self._handed_out: set[bytes] = set()
        self._warned: set[tuple[str, int]] = set()
        self._init_snapshots(snapshot_every_s)
        # (predictions, labels) offsets of each partition's snapshots: handed out, stored
        self._handed_pair: dict[int, tuple[int, int]] = {}
        self._durable_pair: dict[int, tuple[int, int]] = {}
        self._polled: dict[int, tuple[int, int]] = {}  # offsets seen by the previous poll

    def set_reference(self, profile: dict[str, Any]) -> None:
        with self.lock:
            self.engine.set_reference(
                profile["model"], profile["model_version"], ReferenceView(profile)
            )

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> None:
        with self.lock:
            result = self.engine.observe_predictions(
                self.topics.predictions, partition, offset, cols,
                encode=self._encoder(partition, offset),
            )  # fmt: skip
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
        False: a rebalance took the partition away meanwhile (the record is not ours).

        The pacer learns a label partition's position from the records it has observed;
        until then (after every rebalance) the partition's label clock, kept with its
        windows, stands in, so the first label record after an assignment waits for its
        predictions like any other (else it could close windows whose predictions are not
        read yet)."""
        if self.pacer is None:
            return True
        if not self.pacer.in_step.knows_labels(partition):
            with self.lock:
                t = self.engine.label_position(partition)
            if t is not None:
                self.pacer.labels(partition, t)
        return await self.pacer.wait_turn(partition)

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

    def poll(self, now_s: float, partitions: list[int] | None = None) -> list[Outgoing]:
        """The outbox records not handed out yet, then the partitions' snapshots that are
        due (``partitions``: those, now — a revoke)."""
        with self.lock:
            self.engine.poll(int(now_s * 1000), encode=self._encoder(-1, -1))
            fresh = [(k, rec) for k, rec in self.engine.outbox() if k not in self._handed_out]
            self._handed_out.update(k for k, _ in fresh)
            out = [Outgoing(*rec) for _, rec in fresh]
            stepped, self.engine.stepped = self.engine.stepped, set()
            for p in self.engine.partitions() if partitions is None else partitions:
                pair = self._offsets(p)
                moved, due = self._snapshot_due(p, sum(pair), now_s)
                idle = pair == self._polled.get(p)
                self._polled[p] = pair
                if p in stepped or (moved and (due or idle)) or partitions is not None:
                    out.append(self._snapshot(p, pair, now_s))
        return out

    def _offsets(self, p: int) -> tuple[int, int]:
        e, t = self.engine, self.topics
        return e.applied_offset(t.predictions, p), e.applied_offset(t.labels, p)

    def _snapshot(self, p: int, pair: tuple[int, int], now_s: float) -> Outgoing:
        data = self.engine.partition_state(p, self.topics.predictions, self.topics.labels)
        self._handed_pair[p] = pair
        return self._snapshot_record(
            p, sum(pair), data, now_s, self.topics.worker_state, self.state_metrics
        )

    def acknowledge(self) -> None:
        """Everything handed out so far is stored by the broker: drop it from the outbox;
        the snapshots handed out are durable."""
        with self.lock:
            self.engine.clear_outbox(sorted(self._handed_out))
            self._handed_out.clear()
            self._durable_pair.update(self._handed_pair)
            self._handed_pair.clear()
            super().acknowledge()

    def snapshot_refused(self, key: str) -> None:
        self._handed_pair.pop(key_partition(key), None)
        super().snapshot_refused(key)

    def on_assign(
        self, topic: str, partitions: list[int], restored: Mapping[str, bytes], total: int
    ) -> None:
        """Newly owned partitions take the windows of their stored snapshot when it is
        newer than this store's; the partition count goes into every partial (the merge
        stage waits for that many partitions)."""
        with self.lock:
            self.engine.input_partitions = total
            if topic != self.topics.labels:
                return  # one restore per partition (the topics are co-partitioned)
            keep = set(partitions)
            for d in (self._durable, self._snap_offset, self._handed, self._handed_pair,
                      self._durable_pair, self._polled):  # fmt: skip
                for p in [p for p in d if p not in keep]:
                    d.pop(p, None)
            for p in partitions:
                data = restored.get(state_key(self.name, p))
                if data is None:
                    continue  # kept in memory
                self._restore(p, data)

    def _restore(self, p: int, data: bytes) -> None:
        for d in (self._handed, self._handed_pair):
            d.pop(p, None)
        self._durable_pair.pop(p, None)
        self._durable[p] = self._snap_offset[p] = -1
        if not data:
            return
        try:
            taken = self.engine.restore_partition(
                p, data, self.topics.predictions, self.topics.labels
            )
            pair = self.engine.snapshot_offsets(data)
        except ValueError:
            log.exception("performance state of partition %d unreadable: not restored", p)
            return
        # the stored snapshot's offsets are durable whichever state this worker keeps
        self._durable_pair[p] = pair
        self._durable[p] = self._snap_offset[p] = sum(pair)
        if taken:
            self.state_metrics.restored.labels(self.name).inc()
            log.warning("performance windows of partition %d restored at offsets %s", p, pair)

    def on_revoke(self, topic: str, partitions: list[int]) -> list[Outgoing]:
        if topic != self.topics.labels:
            return []
        return self.poll(time.time(), partitions)

    def durable_offset(self, topic: str, partition: int) -> int | None:
        """Input is committed only up to the offsets of the partition's last stored
        snapshot (the next owner replays from there)."""
        pair = self._durable_pair.get(partition)
        if pair is None:
            return -1
        return pair[0] if topic == self.topics.predictions else pair[1]

    def _encoder(self, partition: int, offset: int):
        def encode(out: LabelOutputs) -> list[tuple[str, bytes, bytes]]:
            part = self.topics.window_partials
            msgs = [partial_message(self.codec, part, r) for r in out.partials]
            recs = self.sink.encode(out.detections)
            recs += [self._orphan(o, partition, offset) for o in out.orphans]
            return msgs + [(r.topic, r.key or b"", r.value) for r in recs]

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
