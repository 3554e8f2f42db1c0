"""Consume predictions and labels in step by event time: which label partitions to pause.

A label can only join a prediction the worker has read. When both topics hold a backlog
(a restart after downtime, a backfill, a simulator at full speed) the label side has less
work per record and runs ahead; without a brake its labels pile up waiting for
predictions. Like Kafka Streams' task idling, the label partition ``p`` is *paused* while
its event time is ahead of prediction partition ``p`` (same partition: the topics are
co-partitioned), and resumed once the predictions have caught up with it. A pause never
drops anything: labels already fetched still go through the join (and wait on disk as
early labels if their prediction is not there yet).

Three ways out of a pause, so nothing waits for ever:

- the prediction partition's event time reaches the label partition's (plus ``slack_ms``);
- the prediction partition is caught up (its last read offset is at its high watermark):
  there is nothing more to read, the labels' predictions may come later or never;
- the prediction partition made no progress for ``max_idle_s`` (wall clock) while its
  high watermark is unknown, e.g. it is empty (Kafka Streams' ``max.task.idle.ms``); or
  for ``max_wait_s`` while records are known to be there (a last resort: the prediction
  side never waits for labels, so its records do come, only slowly under load).

Positions are the largest event time seen per partition (a watermark), so a pause decided
on one batch is not undone by an older batch after it.

>>> s = InStep(slack_ms=0, max_idle_s=5.0, max_wait_s=60.0)
>>> s.labels_at(0, 2_000); s.predictions_at(0, 1_000, offset=9, highwater=100, now_s=0.0)
>>> s.decide(now_s=0.0)
({0}, set())
>>> s.predictions_at(0, 2_500, offset=10, highwater=100, now_s=1.0)
>>> s.decide(now_s=1.0)
(set(), {0})
>>> s.labels_at(0, 9_000); s.decide(now_s=2.0)      # ahead again
({0}, set())
>>> s.decide(now_s=7.5)                              # records behind: keep waiting
(set(), set())
>>> s.decide(now_s=61.5)                             # no progress for a minute: let go
(set(), {0})
>>> s.predictions_at(0, 3_000, offset=99, highwater=100, now_s=62.0)
>>> s.decide(now_s=62.0)                             # caught up: nothing more to wait for
(set(), set())
"""

from __future__ import annotations

from dataclasses import dataclass

NO_TIME = -(2**62)


@dataclass
class _Predictions:
    event_time_ms: int = NO_TIME
    offset: int = -1
    highwater: int | None = None
    resumed_at: int = 0  # the group's committed offset this worker started the partition at
    progress_s: float | None = None  # wall clock of the last record read

    def caught_up(self) -> bool:
        if self.highwater is None:
            return False
        return max(self.offset + 1, self.resumed_at) >= self.highwater


class InStep:
    """Per-partition event-time positions of both topics in, pause/resume decisions out."""

    def __init__(
        self, slack_ms: int = 0, max_idle_s: float = 5.0, max_wait_s: float = 60.0
    ) -> None:
        self.slack_ms = slack_ms
        self.max_idle_s = max_idle_s
        self.max_wait_s = max_wait_s
        self._predictions: dict[int, _Predictions] = {}
        self._labels: dict[int, int] = {}
        self.paused: set[int] = set()
        self.pauses = 0  # label partitions paused so far (a counter for metrics)

    def _pred(self, partition: int) -> _Predictions:
        p = self._predictions.get(partition)
        if p is None:
            p = self._predictions[partition] = _Predictions()
        return p

    def predictions_at(
        self,
        partition: int,
        event_time_ms: int | None,
        *,
        offset: int | None,
        highwater: int | None,
        now_s: float,
    ) -> None:
        """A prediction record was read (``offset``; the consumer delivered it) or observed
        (``event_time_ms``, its largest event time; None: it held no valid event)."""
        p = self._pred(partition)
        if event_time_ms is not None:
            p.event_time_ms = max(p.event_time_ms, int(event_time_ms))
        if offset is not None:
            p.offset = max(p.offset, offset)
        if highwater is not None:
            p.highwater = highwater
        p.progress_s = now_s

    def prediction_end(self, partition: int, highwater: int | None) -> None:
        """The prediction partition's high watermark as the consumer knows it now."""
        if highwater is not None:
            self._pred(partition).highwater = highwater

    def prediction_resumed_at(self, partition: int, committed: int | None) -> None:
        """The committed offset the group resumed the prediction partition at (a restart
        at the end: no record will come, and none is missing). Not the fetch position:
        records fetched are not yet read, and their labels would come first."""
        if committed is not None:
            p = self._pred(partition)
            p.resumed_at = max(p.resumed_at, committed)

    def prediction_active_since(self, partition: int, since_s: float | None) -> None:
        """The prediction partition became readable at ``since_s`` (its state restored):
        no record could come before, so its idle time counts from then, not from when a
        label first looked (a long restore would otherwise let every label go ahead)."""
        if since_s is None:
            return
        p = self._pred(partition)
        if p.progress_s is None or p.progress_s < since_s:
            p.progress_s = since_s

    def labels_at(self, partition: int, event_time_ms: int) -> None:
        """A label batch of ``partition`` reached ``event_time_ms`` (its largest time)."""
        self._labels[partition] = max(self._labels.get(partition, NO_TIME), int(event_time_ms))

    def knows_labels(self, partition: int) -> bool:
        """Whether label partition ``partition``'s position is known (since the last
        :meth:`forget`)."""
        return partition in self._labels

    def should_pause(self, partition: int, now_s: float) -> bool:
        label_t = self._labels.get(partition)
        if label_t is None:
            return False
        p = self._pred(partition)
        if p.progress_s is None:
            p.progress_s = now_s  # idle time counts from when we first looked
        if label_t <= p.event_time_ms + self.slack_ms or p.caught_up():
            return False
        limit = self.max_idle_s if p.highwater is None else self.max_wait_s
        return now_s - p.progress_s < limit

    def decide(self, now_s: float) -> tuple[set[int], set[int]]:
        """``(to_pause, to_resume)`` label partitions; the caller applies them, and this
        object assumes it did (``paused`` is updated)."""
        want = {p for p in self._labels if self.should_pause(p, now_s)}
        to_pause, to_resume = want - self.paused, self.paused - want
        self.paused = want
        self.pauses += len(to_pause)
        return to_pause, to_resume

    def forget(self, partitions: set[int] | None = None) -> None:
        """After a rebalance: positions of partitions no longer (or newly) ours are stale,
        and the consumer forgets its pauses on a new assignment."""
        if partitions is None:
            self._predictions.clear()
            self._labels.clear()
            self.paused.clear()
            return
        for p in partitions:
            self._predictions.pop(p, None)
            self._labels.pop(p, None)
            self.paused.discard(p)
