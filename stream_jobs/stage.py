"""The worker's ``Stage`` interface: what the worker loop (``stream_jobs.app``) calls.

The loop owns consumption, locks, rebalances, sending and commits; a stage owns a
computation and, when it keeps state, that state per input partition:

* ``observe`` / ``observe_labels``: one decoded record of an input partition at an offset.
* ``poll``: periodic work (at most a bounded slice of it per call); returns outgoing
  records. Snapshots of partition state (records to the worker-state topic) come *after*
  the outputs they account for; the loop sends them only once those outputs are stored.
* ``acknowledge``: everything the last ``poll`` handed out is stored by the broker.
* ``on_assign``: partitions of ``topic`` now owned, the topic's partition count, and for
  each partition to (re)load a changelog entry under this stage's key
  (``"<name>/<partition>"``): its newest snapshot, or ``b""`` (nothing stored: start it
  clean, forgetting any memory of it). A partition without an entry keeps its memory (it
  was revoked and handed straight back).
* ``after_restore``: blocking work on partitions ``on_assign`` just restored from the
  changelog (reading a topic: the merge stage reads what an earlier owner emitted after
  the snapshot it restored). The loop runs it on a thread after ``on_assign`` and before
  any record of those partitions is handled or any stage is polled; it touches only the
  state of those partitions.
* ``on_revoke``: partitions about to leave; returns the outputs still pending and a final
  snapshot for each (the loop sends them before the group moves on).
* ``snapshot_refused``: the snapshot under this stage's key (``"<name>/<partition>"``)
  handed out by the last ``poll`` was *not* stored (too large, or the broker refused it):
  it must not count as stored at the next ``acknowledge`` (the partition's durable offset
  stays where it was) and the stage should snapshot that partition again.
* ``durable_offset``: the highest input offset of ``(topic, partition)`` whose effects are
  stored (outputs and snapshot); the loop commits nothing beyond it. ``None``: the stage
  keeps no state for that topic and does not hold commits back.

:class:`StageBase` gives every method a do-nothing default, so a stage implements only what
it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from schemas.columnar import LabelColumns, PredictionColumns
from stream_jobs.handler import Outgoing
from stream_jobs.state.changelog import state_record
from stream_jobs.state.metrics import StateMetrics


@runtime_checkable
class Stage(Protocol):
    name: str
    state_topics: tuple[str, ...]  # input topics whose partitions carry this stage's state

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> object: ...

    def observe_labels(
        self, partition: int, offset: int, labels: LabelColumns
    ) -> list[Outgoing]: ...

    def poll(self, now_s: float) -> list[Outgoing]: ...

    def acknowledge(self) -> None: ...

    def on_assign(
        self, topic: str, partitions: list[int], restored: Mapping[str, bytes], total: int
    ) -> None: ...

    def after_restore(self, topic: str, partitions: list[int]) -> None: ...

    def on_revoke(self, topic: str, partitions: list[int]) -> list[Outgoing]: ...

    def snapshot_refused(self, key: str) -> None: ...

    def durable_offset(self, topic: str, partition: int) -> int | None: ...


class StageBase:
    name = "stage"
    state_topics: tuple[str, ...] = ()

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> object:
        return None

    def observe_labels(self, partition: int, offset: int, labels: LabelColumns) -> list[Outgoing]:
        return []

    def poll(self, now_s: float) -> list[Outgoing]:
        return []

    def acknowledge(self) -> None:
        return None

    def on_assign(
        self, topic: str, partitions: list[int], restored: Mapping[str, bytes], total: int
    ) -> None:
        return None

    def after_restore(self, topic: str, partitions: list[int]) -> None:
        return None

    def on_revoke(self, topic: str, partitions: list[int]) -> list[Outgoing]:
        return []

    def snapshot_refused(self, key: str) -> None:
        return None

    def durable_offset(self, topic: str, partition: int) -> int | None:
        return None


class SnapshottingStage(StageBase):
    """What a stage with per-partition snapshots keeps about them: when and at which input
    offset each partition was last snapshotted, which snapshots are handed to the sender
    but not acknowledged yet, and the offset each partition's stored state reflects (the
    worker commits input only up to it)."""

    snapshot_every_s: float = 30.0

    def _init_snapshots(self, snapshot_every_s: float) -> None:
        self.snapshot_every_s = snapshot_every_s
        self._snap_at: dict[int, float] = {}
        self._snap_offset: dict[int, int] = {}
        self._handed: dict[int, int] = {}
        self._durable: dict[int, int] = {}

    def _snapshot_due(self, p: int, offset: int, now_s: float) -> tuple[bool, bool]:
        """(moved since the last snapshot, snapshot interval elapsed)."""
        moved = offset > self._snap_offset.get(p, -1)
        return moved, now_s - self._snap_at.get(p, -1e18) >= self.snapshot_every_s

    def _snapshot_record(
        self, p: int, offset: int, data: bytes, now_s: float, topic: str, metrics: StateMetrics
    ) -> Outgoing:
        self._snap_at[p] = now_s
        self._snap_offset[p] = self._handed[p] = offset
        metrics.snapshots.labels(self.name).inc()
        metrics.snapshot_bytes.labels(self.name).inc(len(data))
        return state_record(topic, state_key(self.name, p), data)

    def acknowledge(self) -> None:
        self._durable.update(self._handed)
        self._handed.clear()

    def snapshot_refused(self, key: str) -> None:
        """Not stored: the durable offset stays, and the partition counts as moved since
        its last snapshot, so the next poll that is due snapshots it again."""
        p = key_partition(key)
        self._handed.pop(p, None)
        self._snap_offset[p] = self._durable.get(p, -1)

    def durable_offset(self, topic: str, partition: int) -> int | None:
        return self._durable.get(partition, -1)


def state_key(stage: str, partition: int) -> str:
    return f"{stage}/{partition}"


def key_partition(key: str) -> int:
    """The partition of a state key (``"<stage>/<partition>"``, maybe group-prefixed)."""
    return int(key.rsplit("/", 1)[1])


class Adapted(StageBase):
    """A stage made of an object with only some of the methods (``observe``, ``poll``,
    ``acknowledge``, ``observe_labels``…): the missing ones do nothing."""

    def __init__(self, inner: object, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or type(inner).__name__
        self.state_topics = tuple(getattr(inner, "state_topics", ()))
        for method in ("observe", "observe_labels", "poll", "acknowledge", "on_assign",
                       "after_restore", "on_revoke", "durable_offset",
                       "snapshot_refused"):  # fmt: skip
            bound = getattr(inner, method, None)
            if bound is not None:
                setattr(self, method, bound)


def as_stage(obj: object) -> Stage:
    return obj if isinstance(obj, StageBase) else Adapted(obj)  # type: ignore[return-value]
