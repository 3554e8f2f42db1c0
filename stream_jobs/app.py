"""The Faust worker loop: consumption, rebalances, sending and commits around the stages.

Faust's per-message path costs ~160 µs, so records are columnar batches (DESIGN.md) and
everything per-event happens in numpy inside the handler and the stages
(:mod:`stream_jobs.stage`). Processing is at-least-once, and the loop keeps it exact:

* **Commits follow durable state.** Input records of a topic whose stages keep state
  (``Stage.state_topics``: predictions for drift, window-partials for the merge stage) are
  acknowledged to Faust — and so committed — only up to the offset that every such stage
  reports as stored (outputs sent, snapshot on the worker-state changelog). After a crash
  the next owner restores the snapshot and the replayed records at or below its offset
  are skipped.
* **Rebalances are explicit steps.** Revoke: every stage returns its pending outputs and a
  final snapshot of the revoked partitions; they are sent before the group moves on.
  Assign: newly owned partitions are restored from the changelog (read to its end) before
  their first record is handled, and no stage is polled until every restore (including
  a stage's ``after_restore`` reads, on a thread) is done; partitions revoked and handed
  straight back keep their memory. Restore time and partitions restored are metrics.
* **Nothing blocks the loop.** Each stage has its own outgoing queue; a stage is polled
  only when its previous output has been stored, and queues are sent in chunks within a
  time budget per tick. A record that cannot be stored is dead-lettered after bounded
  retries (:mod:`stream_jobs.sender`) and never holds the others back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry, disable_created_metrics

from schemas.codec import default_codec
from schemas.columnar import LabelColumns
from schemas.health import ProgressTracker, start_metrics_and_health
from schemas.kafka import read_to_end
from schemas.kafka.faust_settings import faust_settings
from schemas.topics import STATE_MAX_BYTES
from stream_jobs import fetch
from stream_jobs.config import WorkerConfig
from stream_jobs.golden import GoldenSignals
from stream_jobs.handler import LabelHandler, Outgoing, PredictionHandler
from stream_jobs.loop_watch import install_from_env
from stream_jobs.merge.stage import MergeStage
from stream_jobs.pipeline_metrics import PipelineMetrics
from stream_jobs.sender import Sender, SenderMetrics
from stream_jobs.stage import Stage, as_stage, state_key
from stream_jobs.state.changelog import partition_count, read_latest
from stream_jobs.state.metrics import StateMetrics

log = logging.getLogger("modelwatch.worker")
TICK_BUDGET_S = 0.5  # sending time per output tick; the rest waits for the next tick
READY_TIMEOUT_S = 120.0
SLOW_POLL_S = 0.2  # a stage poll longer than this is logged (it holds the event loop)


@dataclass
class Worker:
    app: faust.App
    config: WorkerConfig
    registry: CollectorRegistry
    handler: PredictionHandler
    loop: WorkerLoop | None = None
    health: ProgressTracker = field(default_factory=ProgressTracker)


def faust_app(config: WorkerConfig) -> faust.App:
    app = faust.App(
        config.group_id,
        # broker list, credentials, group timeouts (profile), acks=all: the client properties
        **faust_settings(config.kafka),
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,  # topics are created explicitly with their partition counts
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_compression_type="lz4",
        # state snapshots above Kafka's 1 MB default (merge partitions with many open
        # partials); other topics keep their broker limit (a refused record is dead-lettered)
        producer_max_request_size=STATE_MAX_BYTES,
        processing_guarantee="at_least_once",
        stream_wait_empty=False,  # records wait for their state snapshot to be acknowledged
        datadir=config.data_dir,
    )
    fetch.install(app)  # a short fetch wait: a fetch of caught-up partitions stalls the rest
    return app


@dataclass
class _Queue:
    records: deque[Outgoing] = field(default_factory=deque)
    unacknowledged: bool = False  # handed out by poll, not all stored yet


class WorkerLoop:
    """Owns the stages' queues, held input records, assignment and restores."""

    def __init__(
        self,
        app: faust.App,
        config: WorkerConfig,
        stages: Sequence[Stage],
        sender: Sender,
        pipeline: PipelineMetrics,
        state_metrics: StateMetrics,
    ) -> None:
        self.app = app
        self.config = config
        self.stages = list(stages)
        self.sender = sender
        self.pipeline = pipeline
        self.state_metrics = state_metrics
        self.queues = {s.name: _Queue() for s in self.stages}
        self.state_topics = {t for s in self.stages for t in s.state_topics}
        self.held: dict[TP, deque[tuple[int, Any]]] = {}
        self.active: set[TP] = set()  # assigned and restored: records may be handled
        self.restoring: set[TP] = set()  # assigned, state being restored: records wait
        self.active_since: dict[TP, float] = {}  # monotonic clock it last became active
        self.memory: dict[str, set[int]] = {t: set() for t in self.state_topics}
        self._totals: dict[str, int] = {}
        self._send_lock = asyncio.Lock()
        self._largest: dict[str, int] = {}  # per stage, for the snapshot-size log
        self.settled = asyncio.Event()  # no rebalance under way (clear until the first)

    # ---- records ---------------------------------------------------------------------
    async def ready(self, tp: TP) -> bool:
        """Wait while a rebalance is under way (``tp``'s state may be being restored);
        False if ``tp`` is not ours once it has settled (the record is left unacknowledged
        for its owner)."""
        if tp.topic not in self.state_topics or tp in self.active:
            return True
        deadline = time.monotonic() + READY_TIMEOUT_S
        while tp not in self.active and time.monotonic() < deadline:
            if self.app.should_stop or (self.settled.is_set() and tp not in self.active):
                break
            await asyncio.sleep(0.05)
        return tp in self.active

    def processed(self, tp: TP, offset: int, event: Any, stateful: bool = True) -> None:
        """``stateful=False``: the record changed no stage's state (it was only
        dead-lettered), so no snapshot will ever cover it: acknowledged now. (Commits still
        stop at the first record not acknowledged, so this never skips a held one.)"""
        if tp.topic in self.state_topics and stateful:
            # held until a snapshot covers it: keep the ack handle, not the record's bytes
            event.message.value = None
            event.value = None
            self.held.setdefault(tp, deque()).append((offset, event))
        else:
            event.ack()

    async def send_now(self, records: list[Outgoing]) -> None:
        """An agent's own records (dead letters, label outputs): sent before the record
        counts as processed; retried while the broker cannot take them."""
        kept = await self.sender.send(records)
        while kept and not self.app.should_stop:
            log.warning("%d records kept: broker unavailable, retrying", len(kept))
            await asyncio.sleep(1.0)
            kept = await self.sender.send(kept)

    def _ack_durable(self) -> None:
        for tp, held in self.held.items():
            limits = [
                s.durable_offset(tp.topic, tp.partition)
                for s in self.stages
                if tp.topic in s.state_topics
            ]
            limit = min((x for x in limits if x is not None), default=None)
            if limit is None:
                continue
            while held and held[0][0] <= limit:
                held.popleft()[1].ack()

    # ---- outputs ---------------------------------------------------------------------
    async def _drain(self, stage: Stage, deadline: float) -> bool:
        """Send the stage's queue (outputs before the snapshots that follow them) within
        the deadline; True when it is empty and the stage was told."""
        q = self.queues[stage.name]
        state_topic = self.config.topics.worker_state
        first = True  # one chunk per stage and tick whatever the budget: none starves
        while q.records and (first or time.monotonic() < deadline):
            first = False
            is_state = q.records[0].topic == state_topic
            chunk: list[Outgoing] = []
            while q.records and len(chunk) < self.sender.chunk:
                if (q.records[0].topic == state_topic) != is_state:
                    break
                chunk.append(q.records.popleft())
            refused: list[Outgoing] | None = None
            if is_state:
                chunk = [self._owned_key(r) for r in chunk]
                refused = []
            kept = await self.sender.send(chunk, refused)
            for rec in refused or ():
                self._refused(stage, rec)
            for rec in chunk if is_state else ():
                self._note_size(stage.name, len(rec.value))
            if kept:
                q.records.extendleft(reversed(kept))
                log.warning("%s: %d records kept for the next tick", stage.name, len(kept))
                return False
        if not q.records and q.unacknowledged:
            q.unacknowledged = False
            stage.acknowledge()
        return not q.records

    def _refused(self, stage: Stage, rec: Outgoing) -> None:
        """A snapshot was not stored: it must not count as saved (the stage keeps the
        partition's commits where they were and snapshots it again)."""
        key = (rec.key or b"").decode(errors="replace")
        key = key.removeprefix(f"{self.config.group_id}/")
        self.state_metrics.refused.labels(stage.name).inc()
        log.error("%s: snapshot %s of %d bytes not stored: its input stays uncommitted",
                  stage.name, key, len(rec.value))  # fmt: skip
        try:
            stage.snapshot_refused(key)
        except Exception:  # a stage bug must not stop the loop; nothing was acknowledged
            log.exception("%s.snapshot_refused failed", stage.name)

    def _note_size(self, stage: str, size: int) -> None:
        """Log a stage's snapshot size each time it doubles the largest seen (growth shows
        in the log without one line per snapshot)."""
        if size >= 2 * self._largest.get(stage, 32_768):
            self._largest[stage] = size
            log.warning("%s: largest state snapshot so far: %d bytes", stage, size)

    def _owned_key(self, rec: Outgoing) -> Outgoing:
        """State keys carry the consumer group: two applications (or test runs) sharing a
        cluster never restore each other's partitions."""
        prefix = f"{self.config.group_id}/".encode()
        if rec.key is None or rec.key.startswith(prefix):
            return rec
        return Outgoing(rec.topic, prefix + rec.key, rec.value)

    async def tick(self, now_s: float) -> bool:
        """Poll the stages and send; True when every stage's output is stored (a complete
        output poll: what was computed before it is out)."""
        if not self.settled.is_set():  # a rebalance is under way: it flushes for itself
            return False
        done = True
        deadline = time.monotonic() + TICK_BUDGET_S
        async with self._send_lock:
            if not self.settled.is_set():  # it began while this tick waited for the lock
                return False
            for stage in self.stages:
                q = self.queues[stage.name]
                if not q.records and not q.unacknowledged:
                    started = time.perf_counter()
                    try:
                        out = stage.poll(now_s)
                    except Exception:  # a stage bug must not stop the loop
                        log.exception("%s.poll failed", stage.name)
                        out = []
                    took = time.perf_counter() - started
                    if took > SLOW_POLL_S:  # it held the event loop that long
                        log.warning("%s.poll held the event loop %.3f s (%d records, %d bytes)",
                                    stage.name, took, len(out),
                                    sum(len(r.value or b"") for r in out))  # fmt: skip
                    if out:
                        q.records.extend(out)
                        q.unacknowledged = True
                    else:
                        stage.acknowledge()
                done &= await self._drain(stage, deadline)
            self._ack_durable()
        return done

    # ---- rebalances ------------------------------------------------------------------
    async def on_revoked(self, revoked: set[TP]) -> None:
        self.settled.clear()
        deadline = time.monotonic() + float(self.app.conf.broker_session_timeout) / 2
        async with self._send_lock:
            for stage in self.stages:
                for topic in stage.state_topics:
                    parts = sorted(tp.partition for tp in revoked if tp.topic == topic)
                    if not parts:
                        continue
                    out = stage.on_revoke(topic, parts)
                    if out:
                        self.queues[stage.name].records.extend(out)
                        self.queues[stage.name].unacknowledged = True
                if not await self._drain(stage, deadline):
                    self._abandon(stage)
            self._ack_durable()
        for tp in revoked:
            self.active.discard(tp)
            self.active_since.pop(tp, None)
            self.held.pop(tp, None)

    def _abandon(self, stage: Stage) -> None:
        """The revoke flush did not complete: drop what was not sent (a snapshot sent after
        giving a partition up could overwrite the next owner's), never tell the stage it
        was stored, and restore every partition of its topics from the changelog on the
        next assignment (the replay from the committed offset makes the outputs again)."""
        log.error("%s: revoke flush incomplete: %d records dropped, its partitions restore "
                  "from their last stored snapshot", stage.name,
                  len(self.queues[stage.name].records))  # fmt: skip
        self.queues[stage.name] = _Queue()
        for topic in stage.state_topics:
            self.memory[topic] = set()

    def prediction_restoring(self, partition: int) -> bool:
        """Whether prediction partition ``partition`` is assigned here and its state is
        being restored (its records wait; the label pacer holds its labels meanwhile)."""
        return TP(self.config.topics.predictions, partition) in self.restoring

    def prediction_active_since(self, partition: int) -> float | None:
        """Monotonic time prediction partition ``partition`` last became active here."""
        return self.active_since.get(TP(self.config.topics.predictions, partition))

    async def on_assigned(self, assigned: set[TP]) -> None:
        self.settled.clear()
        self.pipeline.rebalances.inc()
        self.active &= assigned
        self.active_since = {tp: t for tp, t in self.active_since.items() if tp in self.active}
        self.restoring = {
            tp for tp in assigned if tp.topic in self.state_topics and tp not in self.active
        }
        try:
            async with self._send_lock:  # no poll while partitions are being restored
                await self._assign(assigned)
        finally:
            self.restoring.clear()
            now = time.monotonic()
            for tp in self.active - set(self.active_since):
                self.active_since[tp] = now
        self.settled.set()

    async def _assign(self, assigned: set[TP]) -> None:
        for topic in sorted(self.state_topics):
            parts = sorted(tp.partition for tp in assigned if tp.topic == topic)
            new = [p for p in parts if p not in self.memory[topic]]
            stages = [s for s in self.stages if topic in s.state_topics]
            keys = [state_key(s.name, p) for s in stages for p in new]
            started = time.perf_counter()
            restored: dict[str, bytes] = {}
            if keys:  # b"": nothing stored, the partition starts clean
                restored = {k: b"" for k in keys} | await self._restore(keys)
            total = self._totals.get(topic)
            if total is None:
                total = self._totals[topic] = await asyncio.to_thread(
                    partition_count, self.config.kafka, topic
                )
            for s in stages:
                try:
                    s.on_assign(topic, parts, restored, total)
                except Exception:
                    log.exception("%s.on_assign failed", s.name)
            for s in stages if new else ():  # blocking reads of the restored partitions
                try:
                    await asyncio.to_thread(s.after_restore, topic, new)
                except Exception:
                    log.exception("%s.after_restore failed", s.name)
            for s in stages:
                self.state_metrics.restore_seconds.labels(s.name).observe(
                    time.perf_counter() - started
                )
            self.memory[topic] = set(parts)
            self.active |= {TP(topic, p) for p in parts}
            self.restoring -= {TP(topic, p) for p in parts}
            found = sum(1 for v in restored.values() if v)
            log.warning("assigned %s %s (%d of %d partition states restored in %.2f s)", topic,
                        parts, found, len(keys), time.perf_counter() - started)  # fmt: skip
        self.active |= {tp for tp in assigned if tp.topic not in self.state_topics}

    async def _restore(self, keys: list[str]) -> dict[str, bytes]:
        for attempt in range(3):
            try:
                prefix = f"{self.config.group_id}/"
                restored, read = await asyncio.to_thread(
                    read_latest, self.config.kafka, self.config.topics.worker_state,
                    [prefix + k for k in keys],
                )  # fmt: skip
                self.state_metrics.changelog_records_read.inc(read)
                return {k.removeprefix(prefix): v for k, v in restored.items()}
            except Exception:
                log.exception("reading the state changelog failed (attempt %d)", attempt + 1)
                await asyncio.sleep(1.0)
        log.error("state changelog unreadable: partitions %s start clean", keys)
        return {}


class _LabelFanOut:
    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages

    def observe_labels(self, partition: int, offset: int, labels: LabelColumns) -> list[Outgoing]:
        out: list[Outgoing] = []
        for s in self.stages:
            out += s.observe_labels(partition, offset, labels) or []
        return out


def create_worker(
    config: WorkerConfig,
    registry: CollectorRegistry,
    stages: Sequence[object] = (),
    merge: MergeStage | None = None,
    labels: bool = False,
    state_metrics: StateMetrics | None = None,
) -> Worker:
    """The Faust app around the stages: predictions feed every stage's ``observe``; labels
    (when ``labels``) every stage's ``observe_labels``; the merge stage (when given) reads
    the window-partials topic; every stage is polled every ``window_poll_s``."""
    app = faust_app(config)
    pipeline = PipelineMetrics(registry)
    state_metrics = state_metrics or StateMetrics(registry)
    codec = default_codec()
    all_stages = [as_stage(s) for s in stages] + ([merge] if merge is not None else [])
    handler = PredictionHandler(
        codec, config.topics, GoldenSignals(registry), pipeline, list(all_stages),
        rules=config.input_rules,
    )

    async def send_one(rec: Outgoing) -> Any:
        delivery = await app.send(rec.topic, key=rec.key, value=rec.value,
                                  key_serializer="raw", value_serializer="raw")  # fmt: skip
        if merge is not None and rec.topic == config.topics.window_stats:
            delivery.add_done_callback(_stored_final)
        return delivery

    def _stored_final(delivery: asyncio.Future) -> None:
        """The merge stage learns where its finals were stored (its snapshots say from
        where a new owner reads the output)."""
        if merge is not None and not delivery.cancelled() and delivery.exception() is None:
            meta = delivery.result()
            merge.delivered(meta.partition, meta.offset)

    if merge is not None and merge.read_outputs is None:
        merge.read_outputs = lambda since: read_to_end(
            config.kafka, config.topics.window_stats, since=since, timeout_s=60.0
        )

    sender = Sender(send_one, codec, config.topics.dead_letter, SenderMetrics(registry))
    loop = WorkerLoop(app, config, all_stages, sender, pipeline, state_metrics)
    worker = Worker(app, config, registry, handler, loop, ProgressTracker(config.health_stall_s))

    def raw_topic(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                         value_serializer="raw")  # fmt: skip

    def record_lag(topic: str, partition: int, offset: int) -> None:
        highwater = app.consumer.highwater(TP(topic, partition))
        if highwater is not None:
            pipeline.lag.labels(topic, str(partition)).set(max(0, highwater - offset - 1))
        worker.health.progress(topic, partition, offset, (highwater or 0) - offset - 1)

    @app.agent(raw_topic(config.topics.predictions), name="predictions")
    async def on_predictions(stream: faust.StreamT) -> AsyncIterator[None]:
        async for event in stream.noack().events():
            msg = event.message
            tp = TP(msg.topic, msg.partition)
            if not await loop.ready(tp):
                continue
            outgoing = handler.handle(msg.key, msg.value, msg.partition, msg.offset, time.time())
            if outgoing:
                await loop.send_now(outgoing)
            loop.processed(tp, msg.offset, event, stateful=handler.observed)
            record_lag(msg.topic, msg.partition, msg.offset)
            yield None

    if labels:
        label_handler = LabelHandler(
            codec, config.topics, pipeline, _LabelFanOut(all_stages), rules=config.input_rules
        )

        turns = [getattr(getattr(s, "inner", s), "wait_turn", None) for s in all_stages]
        wait_turn = next((t for t in turns if t is not None), None)  # in step with predictions

        @app.agent(raw_topic(config.topics.labels), name="labels")
        async def on_labels(stream: faust.StreamT) -> AsyncIterator[None]:
            async for event in stream.noack().events():
                msg = event.message
                tp = TP(msg.topic, msg.partition)
                if not await loop.ready(tp):
                    continue
                if wait_turn is not None and await wait_turn(msg.partition) is False:
                    continue  # revoked while it waited: left unacknowledged for its owner
                outgoing = label_handler.handle(
                    msg.key, msg.value, msg.partition, msg.offset, time.time()
                )
                if outgoing:
                    await loop.send_now(outgoing)
                loop.processed(tp, msg.offset, event)
                record_lag(msg.topic, msg.partition, msg.offset)
                yield None

    if merge is not None:

        @app.agent(raw_topic(config.topics.window_partials), name="merge")
        async def on_partials(stream: faust.StreamT) -> AsyncIterator[None]:
            async for event in stream.noack().events():
                msg = event.message
                tp = TP(msg.topic, msg.partition)
                if not await loop.ready(tp):
                    continue
                merge.observe_partial(msg.partition, msg.offset, msg.value, msg.timestamp)
                loop.processed(tp, msg.offset, event)
                record_lag(msg.topic, msg.partition, msg.offset)
                yield None

    @app.timer(config.window_poll_s)
    async def poll_outputs() -> None:
        worker.health.beat("output timer")  # a stalled event loop stops beating
        for tp in app.consumer.assignment():  # new input for an agent that stopped moving
            highwater = app.consumer.highwater(tp)
            if highwater is not None:
                worker.health.highwater(tp.topic, tp.partition, highwater)
        if not app.producer.started or app.should_stop:
            return
        # The tick (polls, then sends awaiting the broker's acks: seconds under load) runs
        # as its own task: the timer keeps its 1 s beat, and a tick still sending when the
        # next one is due is not doubled (the next timer run starts the next tick).
        if ticking and not ticking[0].done():
            return
        ticking[:] = [asyncio.ensure_future(output_tick())]

    ticking: list[asyncio.Future] = []

    async def output_tick() -> None:
        try:
            if await loop.tick(time.time()):
                pipeline.output_polls.inc()
            worker.health.beat("output tick")  # a sender stuck on the broker stops beating
        except Exception:  # never let one out
            log.exception("output tick failed")
        pipeline.outputs_pending.set(sum(len(q.records) for q in loop.queues.values()))

    @app.on_partitions_revoked.connect
    async def on_revoked(app_: faust.App, revoked: set[TP], **_: object) -> None:
        try:
            await loop.on_revoked(set(revoked))
        except Exception:
            log.exception("revoke failed: the next owner replays from the last snapshot")

    @app.on_partitions_assigned.connect
    async def on_assigned(app_: faust.App, assigned: set[TP], **_: object) -> None:
        await loop.on_assigned(set(assigned))

    return worker


def run_worker(worker: Worker) -> None:
    """Run until SIGINT/SIGTERM (Faust installs the signal handlers)."""
    config = worker.config
    install_from_env()
    disable_created_metrics()
    start_metrics_and_health(
        config.metrics_port, config.metrics_host, worker.registry, worker.health
    )
    log.warning("metrics on http://%s:%d/metrics (health: /healthz)", config.metrics_host,
                config.metrics_port)
    faust_worker = faust.Worker(worker.app, loglevel=config.log_level, quiet=True)
    faust_worker.execute_from_commandline()
