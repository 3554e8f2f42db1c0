"""The settle gate without Kafka: from the start of a rebalance, no label of a partition goes
through before the restore has settled that partition's join state for that rebalance,
whatever order Faust runs its assignment receivers in (they sit in a set)."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.join.config import LabelConfig
from stream_jobs.label_pacing import LabelPacer
from stream_jobs.label_restore import LabelRestore

TOPICS = TopicNames()


class FakeApp:
    """What the pacer and the restore use of a Faust app: sensors and the assigned signal."""

    def __init__(self) -> None:
        self.should_stop = False
        self.consumer = None
        self.sensors_: list[Any] = []
        self.receivers: list[Any] = []
        self.sensors = SimpleNamespace(add=self.sensors_.append)
        self.on_partitions_assigned = SimpleNamespace(connect=self._connect)

    def _connect(self, fn: Any) -> Any:
        self.receivers.append(fn)
        return fn

    def rebalance_start(self) -> None:
        """What aiokafka's rebalance listener does first (from the consumer's thread)."""
        worker = threading.Thread(
            target=lambda: [s.on_rebalance_start(self) for s in self.sensors_]
        )
        worker.start()
        worker.join()

    async def assign(self, partitions: list[int]) -> None:
        assigned = {TP(t, p) for t in (TOPICS.predictions, TOPICS.labels) for p in partitions}
        for fn in self.receivers:
            await fn(self, assigned)


class SlowRestore(LabelRestore):
    """Every partition is foreign (another worker processed it); restoring takes a while."""

    def __init__(self, pacer: LabelPacer, seconds: float) -> None:
        engine = SimpleNamespace(applied_offset=lambda t, p: -1, config=LabelConfig())
        stage = SimpleNamespace(engine=engine, lock=threading.Lock())
        super().__init__(stage, "unused:9092", TOPICS, default_codec())
        self.pause_s = seconds
        self.done: list[int] = []

    def restore(
        self, partition: int, end_predictions: int, end_labels: int, now_ms: int | None = None
    ) -> int:
        time.sleep(self.pause_s)
        self.done.append(partition)
        return 0

    def load_points(self, partitions: list[int]) -> None:
        return None  # no changelog here: restores start at offset 0


def setup(seconds: float = 0.3) -> tuple[FakeApp, LabelPacer, SlowRestore]:
    app = FakeApp()
    pacer = LabelPacer(TOPICS, max_idle_s=0.1)
    pacer.install(app)
    restore = SlowRestore(pacer, seconds)

    async def committed(topic: str, partition: int) -> int:
        return 10  # the group committed 10 records of every partition

    pacer.committed = committed  # type: ignore[method-assign]
    restore.install(app, pacer)
    return app, pacer, restore


def test_labels_wait_from_the_rebalance_start_until_their_partition_is_restored() -> None:
    async def go() -> None:
        app, pacer, restore = setup()
        app.rebalance_start()
        # records may flow before the restore's receiver even runs (Faust resumes fetching
        # while other assignment receivers are awaited): the gate is already closed
        turn = asyncio.ensure_future(pacer.wait_turn(1))
        await asyncio.sleep(0.5)
        assert not turn.done()
        await app.assign([0, 1])
        assert await asyncio.wait_for(turn, 5.0) is True
        assert restore.done == [0, 1]  # partition 1 went only once restored

    asyncio.run(go())


async def _waits_for_its_assignment(app: FakeApp, pacer: LabelPacer) -> None:
    """A label of partition 0 waits (its join state is not settled) until partition 0 is
    assigned again, then goes."""
    turn = asyncio.ensure_future(pacer.wait_turn(0))
    await asyncio.sleep(0.2)
    assert not turn.done()
    await app.assign([0])
    assert await asyncio.wait_for(turn, 5.0) is True


def test_a_partition_kept_through_a_rebalance_waits_again() -> None:
    async def go() -> None:
        app, pacer, restore = setup(0.0)
        app.rebalance_start()
        await app.assign([0])
        assert await asyncio.wait_for(pacer.wait_turn(0), 5.0) is True
        restore.pause_s = 0.5
        app.rebalance_start()  # another worker joins; partition 0 stays here
        await _waits_for_its_assignment(app, pacer)

    asyncio.run(go())


def test_a_settle_of_an_older_rebalance_opens_nothing() -> None:
    async def go() -> None:
        app, pacer, restore = setup(0.5)
        app.rebalance_start()
        await app.assign([0])  # its restore runs for 0.5 s ...
        first = restore._task
        assert first is not None
        app.rebalance_start()  # ... when the next rebalance starts
        await asyncio.wait_for(first, 10.0)  # the first restore is over: it must not count
        assert not pacer.is_settled(0)
        await _waits_for_its_assignment(app, pacer)

    asyncio.run(go())


def test_a_label_of_a_partition_taken_away_is_left_to_its_owner() -> None:
    async def go() -> None:
        app, pacer, restore = setup(0.0)
        app.rebalance_start()
        turn = asyncio.ensure_future(pacer.wait_turn(3))  # fetched before the rebalance
        await app.assign([0, 1])
        assert await asyncio.wait_for(turn, 5.0) is False
        await asyncio.sleep(0.2)
        assert pacer.is_settled(0) and not pacer.is_settled(3)

    asyncio.run(go())


def test_without_a_restore_the_gate_is_open() -> None:
    async def go() -> None:
        pacer = LabelPacer(TOPICS, max_idle_s=0.1)
        app = FakeApp()
        pacer.install(app)
        app.rebalance_start()
        assert await asyncio.wait_for(pacer.wait_turn(0), 5.0) is True

    asyncio.run(go())
