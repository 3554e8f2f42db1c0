"""Pending predictions move with their partition: the input topics are the changelog.

When the group assigns this worker a partition that another worker processed (the group's
committed offset is past what this worker's label store applied), the label join of that
partition is rebuilt from the topics before its labels are read: the predictions
partition is re-read up to the committed offset (pending records and their expiry,
:meth:`LabelEngine.observe_predictions` with ``restore``), then the labels partition
likewise (:meth:`LabelEngine.restore_labels`: predictions already labelled become joined,
labels still waiting become early labels). Nothing is counted: counts, windows and
detections of those offsets belong to the worker that processed them. The reads use their
own consumer (assigned, no group), in a thread, so the worker's event loop, heartbeats and
other partitions go on; the partition's label agent waits for the restore
(:meth:`LabelPacer.wait_turn`, closed from the start of every rebalance), its prediction
agent does not need to (first write wins).

**Where a restore starts** (so its cost follows what can still join, not topic history).
The owner of a partition samples how far it has processed both topics, at least every
``H/16`` of wall time, into the worker-state changelog (key ``label-restore/<partition>``,
:class:`~stream_jobs.join.restore_points.RestorePoints`), where

    H = join ttl + expiry bucket + input rule max_ahead + 1 min clock margin.

The next owner re-reads predictions from the position sampled at or before ``now - 2H``,
labels from the one at or before ``now - 3H``, and lets no label read before the position
at ``now - H`` wait as an early label. The live join state it gets (pending predictions,
joined markers, early labels, once what expired by ``now`` is expired) is the one a
re-read from offset 0 gives. Why, for a record *read* (processed, by any owner) at wall
time ``r``: the worker rejects event times beyond ``r + max_ahead``, so a prediction or an
early label read before ``now - H`` has expired by ``now`` (expiry is event time + ttl,
rounded up to the bucket, on the wall clock).

- Predictions read before ``now - 2H`` are expired and leave nothing once expired — unless
  a label still alive would find them: a label joins a prediction only while it is alive,
  so before ``now - H``; labels read before ``now - H`` never become early labels here
  (third rule), so such a prediction changes nothing the full re-read would keep.
- A prediction read at or after ``now - 2H`` is re-read; every label that joined it was
  read after ``now - 3H`` (an early label is alive at most ``H`` after it is read), so it
  is re-read too and marks it joined.
- A label read before ``now - H`` whose prediction is not found either joined a prediction
  now expired or waited for one and expired itself: a full re-read keeps nothing of it
  either. A label read after ``now - H`` whose prediction is not in the re-read range
  cannot have joined one read before ``now - 2H`` (that one expired before ``now - H``):
  it is early, as in a full re-read.

Without a sample old enough (a young partition, or a history lost) a range starts at offset
0. The test ``test_label_restore_start`` checks the equality on a workload with ten TTLs
of history. Not restored either way: an orphan dead letter the dead owner owed for a
prediction whose TTL ran out while no worker held the partition.

Metrics: ``modelwatch_label_restore_seconds`` (per partition) and
``modelwatch_label_records_restored_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry

from schemas.codec import Codec
from schemas.kafka.config import KafkaConfig
from schemas.metrics_catalogue import counter, histogram
from schemas.topics import TopicNames
from stream_jobs.decode import RejectedRecord, decode_labels, decode_predictions
from stream_jobs.handler import Outgoing
from stream_jobs.join.restore_points import RestorePoints, RestoreStart, horizon_ms
from stream_jobs.stage import StageBase, state_key
from stream_jobs.state.changelog import read_latest, state_record
from stream_jobs.state.codec import StateCodecError, decode_state, encode_state

log = logging.getLogger(__name__)
KIND = "label-restore"


def read_partition(
    kafka: str | KafkaConfig,
    topic: str,
    partition: int,
    end: int,
    start: int = 0,
    timeout_s: float = 60.0,
) -> Iterator[tuple[int, bytes]]:
    """``(offset, value)`` of ``topic[partition]`` from offset ``start`` through ``end``."""
    if end < start:
        return
    consumer = KafkaConfig.of(kafka).consumer(**{"fetch.max.bytes": 52_428_800})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])  # never joins the group
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error():
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


class LabelRestore(StageBase):
    """Rebuilds the label join of partitions another worker processed (on assignment) and,
    as a stage of the worker loop, keeps their restore points in the changelog."""

    name = KIND

    def __init__(
        self,
        stage: Any,  # LabelStage: its engine, lock and pacer
        kafka: str | KafkaConfig,
        topics: TopicNames,
        codec: Codec,
        registry: CollectorRegistry | None = None,
        *,
        group_id: str = "",
        max_ahead_ms: int = 900_000,
    ) -> None:
        self.stage = stage
        self.kafka = kafka
        self.topics = topics
        self.codec = codec
        self.group_id = group_id
        self.max_ahead_ms = max_ahead_ms
        registry = registry if registry is not None else CollectorRegistry()
        self.seconds = histogram("modelwatch_label_restore_seconds", registry)
        self.records = counter("modelwatch_label_records_restored_total", registry)
        # partition -> (prediction, label) offsets restored through
        self._through: dict[int, tuple[int, int]] = {}
        self.points: dict[int, RestorePoints] = {}
        self._owned: frozenset[int] = frozenset()  # label partitions assigned and settled
        self._task: asyncio.Future | None = None
        self._pacer: Any = None

    @property
    def horizon_ms(self) -> int:
        """H: a record read longer than this ago has expired (see the module doc)."""
        config = self.stage.engine.config
        return horizon_ms(config.ttl_ms, config.expiry_bucket_ms, self.max_ahead_ms)

    # ---- what this store holds -----------------------------------------------------------
    def foreign(self, partition: int, committed_predictions: int) -> bool:
        """Whether the group committed predictions of ``partition`` past what this
        worker's store applied (another worker processed them)."""
        return committed_predictions > 0 and self._position(partition)[0] < (
            committed_predictions - 1
        )

    def _position(self, partition: int) -> tuple[int, int]:
        """(prediction, label) offsets this store reflects: applied or restored through."""
        engine = self.stage.engine
        through = self._through.get(partition, (-1, -1))
        return (
            max(engine.applied_offset(self.topics.predictions, partition), through[0]),
            max(engine.applied_offset(self.topics.labels, partition), through[1]),
        )

    # ---- the restore ---------------------------------------------------------------------
    def start(self, partition: int, now_ms: int) -> RestoreStart:
        points = self.points.get(partition)
        if points is None:
            return RestoreStart(0, 0, 0)
        return points.start(now_ms, self.horizon_ms)

    def restore(
        self, partition: int, end_predictions: int, end_labels: int, now_ms: int | None = None
    ) -> int:
        """Rebuild the join state of ``partition`` from the topics (blocking; run it in a
        thread). Returns the records read."""
        t0 = time.monotonic()
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        start = self.start(partition, now_ms)
        engine, lock, n = self.stage.engine, self.stage.lock, 0
        for offset, value in read_partition(
            self.kafka, self.topics.predictions, partition, end_predictions, start.predictions
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
        for offset, value in read_partition(
            self.kafka, self.topics.labels, partition, end_labels, start.labels
        ):
            n += 1
            try:
                labels = decode_labels(self.codec, value)
            except RejectedRecord:
                continue
            with lock:
                engine.restore_labels(
                    self.topics.labels, partition, offset, labels,
                    early=offset >= start.early_labels,
                )  # fmt: skip
        with lock:
            engine.expire_reread(partition)
        before = self._through.get(partition, (-1, -1))
        self._through[partition] = (max(before[0], end_predictions), max(before[1], end_labels))
        took = time.monotonic() - t0
        self.seconds.observe(took)
        self.records.inc(n)
        log.warning(
            "label join of partition %d restored from the topics: %d records in %.1f s "
            "(predictions %d..%d, labels %d..%d)",
            partition, n, took, start.predictions, end_predictions, start.labels, end_labels,
        )  # fmt: skip
        return n

    def load_points(self, partitions: list[int]) -> None:
        """The restore points of ``partitions`` from the changelog (blocking), newer than
        the ones in memory."""
        if not partitions:
            return
        prefix = f"{self.group_id}/" if self.group_id else ""
        keys = {prefix + state_key(self.name, p): p for p in partitions}
        found, _ = read_latest(self.kafka, self.topics.worker_state, list(keys))
        for key, value in found.items():
            try:
                header, _ = decode_state(value, KIND)
                loaded = RestorePoints.from_header(header)
            except (StateCodecError, ValueError, TypeError, KeyError) as exc:
                log.error("restore points %s unreadable (%r): restoring from offset 0", key, exc)
                continue
            mine = self.points.get(keys[key])
            if mine is None or loaded.to_header()["last_offset"] >= mine.to_header()["last_offset"]:
                self.points[keys[key]] = loaded

    # ---- the stage: restore points into the changelog ----------------------------------
    def poll(self, now_s: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        now_ms = int(now_s * 1000)
        for p in sorted(self._owned):
            with self.stage.lock:
                predictions, labels = self._position(p)
            points = self.points.setdefault(p, RestorePoints())
            if points.add(now_ms, predictions, labels, self.horizon_ms):
                value = encode_state(KIND, {"partition": p, **points.to_header()}, [])
                out.append(state_record(self.topics.worker_state, state_key(self.name, p), value))
        return out

    # ---- the Faust side ------------------------------------------------------------------
    def install(self, app: Any, pacer: Any) -> None:
        """On every assignment: restore the partitions another worker processed. Labels
        wait from the start of every rebalance until their partition is settled here
        (:meth:`LabelPacer.settle`), whatever order Faust runs its assignment receivers
        in."""
        pacer.require_settle()
        self._pacer = pacer

        @app.on_partitions_assigned.connect
        async def restore_on_assign(app_: Any, assigned: set, **_: object) -> None:
            generation = pacer.generation  # the rebalance this assignment belongs to
            parts = sorted({tp.partition for tp in assigned if tp.topic == self.topics.labels})
            pacer.assigned(generation, set(parts))
            self._owned = frozenset()  # no restore points until settled again
            previous = self._task
            self._task = asyncio.ensure_future(
                self._restore_all(parts, pacer, generation, previous)
            )

    async def _restore_all(
        self, parts: list[int], pacer: Any, generation: int, previous: asyncio.Future | None
    ) -> None:
        if previous is not None:  # one restore at a time: the last assignment's comes first
            with contextlib.suppress(BaseException):
                await previous
        committed: dict[int, int | None] = {}
        for p in parts:
            committed[p] = await self._committed(pacer, self.topics.predictions, p)
        foreign = [p for p in parts if committed[p] is not None and self.foreign(p, committed[p])]
        fresh = [p for p in parts if p not in self.points or p in foreign]
        try:
            await asyncio.to_thread(self.load_points, fresh)
        except Exception:
            log.exception("reading restore points failed: partitions %s restore from 0", fresh)
        for p in parts:
            if generation != pacer.generation:
                return  # a newer rebalance started: its own pass settles what it assigns
            try:
                if p in foreign:
                    committed_l = await self._committed(pacer, self.topics.labels, p)
                    end_p = committed[p]
                    assert end_p is not None
                    await asyncio.to_thread(self.restore, p, end_p - 1, (committed_l or 0) - 1)
            except Exception:
                log.exception("restoring the label join of partition %d failed", p)
            finally:
                if pacer.settle(generation, p):
                    self._owned = self._owned | {p}

    async def _committed(self, pacer: Any, topic: str, partition: int) -> int | None:
        """The group's committed offset (-1: none), asked up to 3 times (None: unknown;
        the partition is then taken as is, loudly)."""
        for _ in range(3):
            offset = await pacer.committed(topic, partition)
            if offset is not None:
                return offset
            await asyncio.sleep(1.0)
        log.error("committed offset of %s[%d] unknown: its label join is not restored",
                  topic, partition)  # fmt: skip
        return None
