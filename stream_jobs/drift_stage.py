"""Stage 1 of drift, per input partition: feeds the pure
:class:`~stream_jobs.drift.engine.DriftEngine` and publishes what it closes (drift partials,
progress markers, detector votes) to the window-partials topic, keyed by model, plus a
snapshot of each partition's state to the worker-state changelog (``drift/<partition>``):
when the partition closed a window, every ``snapshot_every_s`` if it moved, once it stops
moving (so the committed offset catches up when a backlog is read), and on revoke.
Input offsets are committed only up to the last stored snapshot (:meth:`durable_offset`), so
a crash replays from there and the restored engine skips what it had applied.

Snapshots are encoded on the event loop (open windows are mutable sketches), so a poll
encodes them for at most ``slice_s`` seconds (at least one): partitions wanting one and not
reached wait for the next poll, oldest want first. A revoke snapshots every partition."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from schemas.codec import Codec
from schemas.columnar import PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.drift.engine import DriftEngine
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.handler import Outgoing
from stream_jobs.merge.progress import partial_message
from stream_jobs.merge.protocol import PartialRecord
from stream_jobs.stage import SnapshottingStage, state_key
from stream_jobs.state.metrics import StateMetrics

log = logging.getLogger("modelwatch.drift")


class DriftStage(SnapshottingStage):
    name = "drift"

    def __init__(
        self,
        engine: DriftEngine,
        metrics: DriftMetrics,
        state_metrics: StateMetrics,
        codec: Codec,
        topics: TopicNames,
        snapshot_every_s: float = 30.0,
        slice_s: float = 0.2,
    ) -> None:
        self.engine = engine
        self.slice_s = slice_s
        self.metrics = metrics
        self.state_metrics = state_metrics
        self.codec = codec
        self.topics = topics
        self.state_topics = (topics.predictions,)
        self._init_snapshots(snapshot_every_s)
        self._polled: dict[int, int] = {}  # last offset seen by the previous poll
        self._wanted: dict[int, None] = {}  # partitions owed a snapshot, oldest first

    def set_reference(self, profile: dict[str, Any]) -> None:
        self.engine.set_reference(profile)

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> None:
        self.metrics.record_late(cols.model, self.engine.observe(partition, offset, cols))

    def encode(self, rec: PartialRecord) -> Outgoing:
        return Outgoing(*partial_message(self.codec, self.topics.window_partials, rec))

    def _snapshot(self, p: int, now_s: float) -> Outgoing:
        return self._snapshot_record(
            p, self.engine.last_offset(p), self.engine.partition_state(p), now_s,
            self.topics.worker_state, self.state_metrics,
        )

    def poll(self, now_s: float, partitions: list[int] | None = None) -> list[Outgoing]:
        recs = self.engine.drain_partials(partitions)
        out = [self.encode(r) for r in recs]
        closed = {r.partition for r in recs if r.kind != "vote"}
        for p in self.engine.partitions if partitions is None else partitions:
            offset = self.engine.last_offset(p)
            moved, due = self._snapshot_due(p, offset, now_s)
            idle = offset == self._polled.get(p)  # nothing new since the last poll
            self._polled[p] = offset
            if p in closed or (moved and (due or idle)):
                self._wanted.setdefault(p, None)
        if partitions is not None:  # revoke: every one of them, now
            for p in partitions:
                self._wanted.pop(p, None)
                out.append(self._snapshot(p, now_s))
            return out
        until = time.perf_counter() + self.slice_s
        for p in list(self._wanted):
            if p not in self.engine.partitions:
                del self._wanted[p]
                continue
            out.append(self._snapshot(p, now_s))
            del self._wanted[p]
            if time.perf_counter() > until:  # the rest at the next poll
                break
        return out

    def on_revoke(self, topic: str, partitions: list[int]) -> list[Outgoing]:
        owned = [p for p in partitions if p in self.engine.partitions]
        return self.poll(time.time(), owned) if owned else []

    def on_assign(
        self, topic: str, partitions: list[int], restored: Mapping[str, bytes], total: int
    ) -> None:
        self.engine.input_partitions = total
        keep = set(partitions)
        self.engine.drop_partitions([p for p in self.engine.partitions if p not in keep])
        self._wanted = {p: None for p in self._wanted if p in keep}
        for p in list(self._durable) + list(self._handed):
            if p not in keep:
                for d in (self._durable, self._snap_offset, self._handed):
                    d.pop(p, None)
        for p in partitions:
            data = restored.get(state_key(self.name, p))
            if data is None:
                continue  # kept in memory
            self._handed.pop(p, None)
            self._durable[p] = self._snap_offset[p] = -1
            self.engine.drop_partitions([p])
            if not data:
                continue
            try:
                windows = self.engine.restore_partition(p, data)
            except ValueError:
                log.exception("drift state of partition %d unreadable: starting it clean", p)
                continue
            self._durable[p] = self._snap_offset[p] = self.engine.last_offset(p)
            self.state_metrics.restored.labels(self.name).inc()
            log.warning(
                "drift partition %d restored at offset %d (%d open windows)",
                p, self.engine.last_offset(p), windows,
            )  # fmt: skip
