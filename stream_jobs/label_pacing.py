"""Adapter that holds the label agent back while its partition runs ahead in event time.

The label stage reports event-time positions as it observes batches (predictions and
labels); a Faust sensor reports the offset of every prediction record the consumer hands
over (bad records included). Before the label agent handles a record of partition ``p``,
:meth:`LabelPacer.wait_turn` waits while :class:`~stream_jobs.join.in_step.InStep` says
label partition ``p`` is ahead of prediction partition ``p``, and while it waits the
label partition is also paused on the aiokafka consumer so that no more of it is fetched.

Both halves are needed. A fetch-level pause alone does not hold back records Faust has
already fetched, and a backlog of small label batches arrives whole in the first fetches
(measured: 40-90 % of a 180k-label backlog joined as early labels). The gate alone lets
Faust keep fetching labels into the stream buffer; once that buffer is full Faust's
fetcher blocks on it, for *every* topic, and the predictions the gate waits for stop
coming (a stall until ``max_wait_s``: 15 s by default, so that a stall of that kind, which
the fetch pause below makes rare but cannot rule out for records already buffered, costs
seconds, not a minute; labels released early wait on disk and still join). Pausing in
aiokafka (in the consumer's own thread and loop, where its fetcher runs) and not in
Faust's active-partition set matters: records aiokafka had buffered for a paused partition
are dropped *without* moving its position, so they are fetched again on resume, whereas
Faust silently skips records of partitions it removes from that set in the middle of a
batch. Nothing is skipped or dropped; the waiting record is handled once its predictions
have been read (or the prediction partition is caught up, or idle: see ``InStep``).

Two waits come before that gate, both while a rebalance moves state: the label partition's
join state being settled for the current assignment (:meth:`settle`, ``label_restore``),
and its prediction partition's stage state being restored by the worker loop (its
prediction records wait in the meantime, so labels read then would all run ahead of them).
The idle time that finally lets labels go counts from when the prediction partition became
readable, not from when a label first looked.

**The settle gate closes when a rebalance starts, not when an assignment handler runs.**
Faust resumes the fetch of newly assigned partitions as soon as its table recovery is done
(at once, without tables), while the ``on_partitions_assigned`` receivers are still being
awaited one by one; and those receivers sit in a *set*, so their order is arbitrary. A gate
closed by one of them (it used to be: ``hold`` in the restore's receiver) lets labels
through whenever the worker loop's receiver happens to run first and takes its seconds to
restore stage state: they were joined against a store whose predictions were not restored
yet, became early labels, and the restore then wrote their predictions without joining
them (about 1 run in 3 of ``test_label_rebalance``: every label of the partitions the worker
already owned before the move stuck as an early label). So, with a restore installed
(:meth:`require_settle`), a sensor closes the gate synchronously when the consumer starts a
rebalance (Faust calls it from the rebalance listener, before anything of the new
assignment is fetched), every label partition then waits until the restore settles it for
that rebalance's generation, and a settle of an older generation is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka.structs import TopicPartition
from faust.sensors import Sensor
from faust.types import TP
from prometheus_client import CollectorRegistry

from schemas.metrics_catalogue import counter, gauge
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
        max_wait_s: float = 15.0,
    ) -> None:
        self.topics = topics
        self.in_step = InStep(slack_ms=slack_ms, max_idle_s=max_idle_s, max_wait_s=max_wait_s)
        self._app: Any = None
        self._progress: asyncio.Event | None = None
        self._resumed: set[int] = set()  # prediction partitions whose committed offset is known
        # the settle gate (with a restore installed): label partitions whose join state is
        # settled, with the rebalance generation they are settled for. A rebalance start
        # (from the consumer's thread) only bumps the generation; the tuple is replaced
        # whole, so a settle racing with it is of the old generation, and void
        self._gated = False
        self.generation = 0
        self._settled: tuple[int, frozenset[int]] = (0, frozenset())
        self._assigned: tuple[int, frozenset[int]] = (-1, frozenset())  # (generation, parts)
        # the worker loop's view of prediction partitions: state being restored (their
        # records wait), and the monotonic time each last became active
        self._restoring: Callable[[int], bool] = lambda partition: False
        self._active_since: Callable[[int], float | None] = lambda partition: None
        registry = registry if registry is not None else CollectorRegistry()
        self.pauses = counter("modelwatch_label_partition_pauses_total", registry)
        self.paused = gauge("modelwatch_label_partitions_paused", registry)

    # ---- positions (called on the worker's event loop) ---------------------------------
    def predictions(self, partition: int, event_time_ms: int | None) -> None:
        """The label stage observed a prediction batch reaching ``event_time_ms``."""
        self.in_step.predictions_at(
            partition,
            event_time_ms,
            offset=None,
            highwater=self._highwater(partition),
            now_s=time.monotonic(),
        )
        self._wake()

    def prediction_read(self, partition: int, offset: int) -> None:
        """The consumer delivered a prediction record (valid or not) to the worker."""
        self.in_step.predictions_at(
            partition, None, offset=offset, highwater=None, now_s=time.monotonic()
        )

    def labels(self, partition: int, event_time_ms: int) -> None:
        self.in_step.labels_at(partition, event_time_ms)

    def _highwater(self, partition: int) -> int | None:
        app = self._app
        if app is None:
            return None
        try:
            return app.consumer.highwater(TP(self.topics.predictions, partition))
        except Exception:  # consumer not started / partition not assigned
            return None

    def _stopping(self) -> bool:
        return bool(self._app is not None and getattr(self._app, "should_stop", False))

    def _wake(self) -> None:
        if self._progress is not None:
            self._progress.set()

    # ---- the gate ------------------------------------------------------------------------
    def require_settle(self) -> None:
        """Label partitions wait, after every rebalance start, until :meth:`settle`."""
        self._gated = True

    def rebalance_started(self) -> None:
        """The consumer starts a rebalance (any thread): every label partition waits for
        its join state to be settled again."""
        self.generation += 1

    def assigned(self, generation: int, partitions: set[int]) -> None:
        """The label partitions rebalance ``generation`` assigned here."""
        if generation == self.generation:
            self._assigned = (generation, frozenset(partitions))
            self._wake()

    def settle(self, generation: int, partition: int) -> bool:
        """The join state of label ``partition`` is settled for rebalance ``generation``
        (restored if it had to be): its labels may go. False (ignored) when a newer
        rebalance has started since."""
        if generation != self.generation:
            return False
        current, parts = self._settled
        self._settled = (
            generation,
            (parts if current == generation else frozenset()) | {partition},
        )
        self._wake()
        return True

    def is_settled(self, partition: int) -> bool:
        if not self._gated:
            return True
        generation, parts = self._settled
        return generation == self.generation and partition in parts

    def _revoked(self, partition: int) -> bool:
        generation, parts = self._assigned
        return generation == self.generation and partition not in parts

    async def wait_turn(self, partition: int) -> bool:
        """Return once label partition ``partition`` may go on (at once, usually); False
        when a rebalance took it away meanwhile (leave the record to its new owner)."""
        if self._progress is None:
            self._progress = asyncio.Event()
        while True:
            while not self.is_settled(partition) and not self._stopping():
                if self._revoked(partition):
                    return False
                self._progress.clear()  # its join state is not settled for this assignment
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), 1.0)
            if not self.is_settled(partition):
                return False  # stopping: never handle a label against an unsettled store
            # its prediction partition's state is being restored: no prediction can come
            # yet, and the labels would run ahead of all of them (the restore ends, or
            # fails, and the loop clears the flag either way)
            while self._restoring(partition) and not self._stopping():
                await asyncio.sleep(0.05)
            step = self.in_step
            step.prediction_active_since(partition, self._active_since(partition))
            if not step.should_pause(partition, time.monotonic()):
                return True
            if await self._paused(partition):
                return True
            # a rebalance started while it was paused: settle again, then decide again

    async def _paused(self, partition: int) -> bool:
        """Pause label ``partition`` until its predictions catch up (True), or until a
        rebalance closes the settle gate (False)."""
        assert self._progress is not None
        step = self.in_step
        self.pauses.inc()
        step.paused.add(partition)
        self.paused.set(len(step.paused))
        await self._fetching(partition, False)
        try:
            while self.is_settled(partition):
                step.prediction_end(partition, self._highwater(partition))
                step.prediction_active_since(partition, self._active_since(partition))
                if partition not in self._resumed:
                    committed = await self._committed(partition)
                    if committed is not None:
                        self._resumed.add(partition)
                        step.prediction_resumed_at(partition, committed)
                if not step.should_pause(partition, time.monotonic()):
                    return True
                self._progress.clear()
                # woken by prediction progress; re-checked at least once a second
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), 1.0)
            return False
        finally:
            step.paused.discard(partition)
            self.paused.set(len(step.paused))
            await self._fetching(partition, True)

    async def _committed(self, partition: int) -> int | None:
        return await self.committed(self.topics.predictions, partition)

    async def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed offset of ``topic[partition]`` (-1: none; None: unknown)."""
        app = self._app
        if app is None:
            return None
        tp = TopicPartition(topic, partition)
        try:
            thread = app.consumer._thread

            async def committed() -> int | None:
                consumer = thread._ensure_consumer()
                if tp not in consumer.assignment():
                    return None
                offset = await asyncio.wait_for(consumer.committed(tp), 5.0)
                return -1 if offset is None else offset

            return await thread.call_thread(committed)
        except Exception:  # the broker did not answer, or a rebalance under way
            return None

    async def _fetching(self, partition: int, on: bool) -> None:
        """Pause / resume fetching label ``partition`` (best effort: a rebalance in
        between starts the partition unpaused anyway)."""
        app = self._app
        if app is None:
            return
        tp = TopicPartition(self.topics.labels, partition)
        try:
            thread = app.consumer._thread

            async def apply() -> None:
                consumer = thread._ensure_consumer()
                if tp in consumer.assignment():
                    (consumer.resume if on else consumer.pause)(tp)

            await thread.call_thread(apply)
        except Exception as exc:
            log.warning("label pacing: %s %s failed: %r", "resume" if on else "pause", tp, exc)

    # ---- the Faust side ------------------------------------------------------------------
    def install(self, app: Any, loop: Any = None) -> None:
        """Register the read-offset sensor and forget positions on every rebalance; with
        the worker loop (:class:`~stream_jobs.app.WorkerLoop`), labels also wait while
        their prediction partition is restored, and its idle time counts from then."""
        self._app = app
        if loop is not None:
            self._restoring = loop.prediction_restoring
            self._active_since = loop.prediction_active_since
        app.sensors.add(_ReadOffsets(self))

        @app.on_partitions_assigned.connect
        async def forget_on_assign(app_: Any, assigned: set, **_: object) -> None:
            self.in_step.forget()
            self._resumed.clear()


class _ReadOffsets(Sensor):
    """Offsets of every prediction record the consumer hands to the worker (dead letters
    included, so a partition whose last records are bad still counts as caught up)."""

    def __init__(self, pacer: LabelPacer) -> None:
        super().__init__()
        self.pacer = pacer

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        if tp.topic == self.pacer.topics.predictions:
            self.pacer.prediction_read(tp.partition, offset)

    def on_rebalance_start(self, app: Any) -> dict:
        self.pacer.rebalance_started()  # synchronous: before the new assignment is fetched
        return super().on_rebalance_start(app)
