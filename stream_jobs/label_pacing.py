"""Adapter that applies :class:`~stream_jobs.join.in_step.InStep` decisions to the consumer.

The label stage reports event-time positions as it observes batches; when the wanted set of
paused label partitions changes, one applier task pauses / resumes those partitions on the
aiokafka consumer (in the consumer's own thread and event loop, where its fetcher runs).
Pausing there, not in Faust's active-partition set, matters: records of a paused partition
that Faust already fetched are still delivered (Faust would silently skip them), and those
aiokafka had buffered are dropped *without* moving the position, so they are fetched again
on resume. A timer re-decides every second, so an idle prediction partition releases its
labels even when no record arrives to trigger a decision. A rebalance forgets every pause
(aiokafka starts a new assignment unpaused) and every position.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka.structs import TopicPartition
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.topics import TopicNames
from stream_jobs.join.in_step import InStep

log = logging.getLogger(__name__)


class LabelPacer:
    def __init__(
        self,
        topics: TopicNames,
        registry: CollectorRegistry | None = None,
        *,
        slack_ms: int = 0,
        max_idle_s: float = 5.0,
    ) -> None:
        self.topics = topics
        self.in_step = InStep(slack_ms=slack_ms, max_idle_s=max_idle_s)
        self._app: Any = None
        self._applied: set[int] = set()
        self._wake: asyncio.Event | None = None
        self._generation = 0  # bumped by every rebalance
        self.pauses = Counter(
            "modelwatch_label_partition_pauses",
            "Label partitions paused because their event time ran ahead of their "
            "prediction partition's",
            registry=registry,
        )
        self.paused = Gauge(
            "modelwatch_label_partitions_paused",
            "Label partitions paused now, waiting for their predictions",
            registry=registry,
        )

    # ---- positions (called by the label stage, on the worker's event loop) -------------
    def predictions(self, partition: int, offset: int, event_time_ms: int | None) -> None:
        self.in_step.predictions_at(
            partition,
            event_time_ms,
            offset=offset,
            highwater=self._highwater(partition),
            now_s=time.monotonic(),
        )
        self._decide()

    def labels(self, partition: int, event_time_ms: int) -> None:
        self.in_step.labels_at(partition, event_time_ms)
        self._decide()

    def _highwater(self, partition: int) -> int | None:
        app = self._app
        if app is None:
            return None
        try:
            return app.consumer.highwater(TP(self.topics.predictions, partition))
        except Exception:  # consumer not started / partition not assigned
            return None

    def _decide(self) -> None:
        now = time.monotonic()
        for p in self.in_step.paused:  # a paused pair sees no records: refresh its end
            self.in_step.prediction_end(p, self._highwater(p))
        to_pause, to_resume = self.in_step.decide(now)
        if to_pause:
            self.pauses.inc(len(to_pause))
        unapplied = self.in_step.paused != self._applied
        if self._wake is not None and (to_pause or to_resume or unapplied):
            self._wake.set()

    # ---- the Faust side ---------------------------------------------------------------
    def install(self, app: Any) -> None:
        """Register the applier task, the re-decide timer and the rebalance hooks."""
        self._app = app

        @app.task
        async def label_pacer() -> None:
            self._wake = asyncio.Event()
            while not app.should_stop:
                await self._wake.wait()
                self._wake.clear()
                await self._apply()

        @app.timer(1.0)
        async def label_pacer_tick() -> None:
            self._decide()

        @app.on_partitions_revoked.connect
        async def forget_on_revoke(app_: Any, revoked: set, **_: object) -> None:
            self._forget()

        @app.on_partitions_assigned.connect
        async def forget_on_assign(app_: Any, assigned: set, **_: object) -> None:
            self._forget()

    def _forget(self) -> None:
        self.in_step.forget()
        self._applied.clear()
        self._generation += 1
        self.paused.set(0)

    async def _apply(self) -> None:
        want = set(self.in_step.paused)
        pause, resume = want - self._applied, self._applied - want
        if not pause and not resume:
            return
        topic = self.topics.labels
        generation = self._generation
        thread = self._app.consumer._thread

        async def apply() -> None:
            consumer = thread._ensure_consumer()
            assigned = consumer.assignment()
            tps = [TopicPartition(topic, p) for p in sorted(pause)]
            consumer.pause(*[tp for tp in tps if tp in assigned])
            tps = [TopicPartition(topic, p) for p in sorted(resume)]
            consumer.resume(*[tp for tp in tps if tp in assigned])

        try:
            await thread.call_thread(apply)
        except Exception as exc:  # a rebalance under way: the next decision retries
            log.warning("label pacing: pause %s / resume %s failed: %r", pause, resume, exc)
            return
        if generation != self._generation:
            return  # a rebalance in between: the new assignment starts unpaused
        self._applied = want
        self.paused.set(len(want))
