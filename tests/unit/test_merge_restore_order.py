"""The worker loop runs a stage's ``after_restore`` (the merge stage's read of its earlier
owner's output) on a thread, after ``on_assign`` and before the restored partition is
active, and polls no stage meanwhile — not even a tick that was under way when the
assignment began."""

from __future__ import annotations

import asyncio
import threading
import time

from faust.types import TP

from stream_jobs.handler import Outgoing
from stream_jobs.stage import StageBase
from tests.unit.test_worker_loop import CONFIG, Broker, make

PARTIALS = CONFIG.topics.window_partials


class SlowBroker(Broker):
    """Stores a record only once ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send_one(self, rec: Outgoing):
        await self.release.wait()
        return await super().send_one(rec)


class Busy(StageBase):
    """A stage with one output waiting: the tick's first drain takes a while."""

    name = "busy"

    def __init__(self) -> None:
        self.sent = False

    def poll(self, now_s: float) -> list[Outgoing]:
        if self.sent:
            return []
        self.sent = True
        return [Outgoing("out", None, b"x")]


class Restoring(StageBase):
    name = "merge"
    state_topics = (PARTIALS,)

    def __init__(self, loop_holder: list) -> None:
        self.loop_holder = loop_holder
        self.events: list[tuple] = []

    def on_assign(self, topic, partitions, restored, total) -> None:
        self.events.append(("assign", list(partitions), dict(restored)))

    def after_restore(self, topic: str, partitions: list[int]) -> None:
        loop = self.loop_holder[0]
        on_thread = threading.current_thread() is not threading.main_thread()
        self.events.append(("read", list(partitions), on_thread,
                            TP(topic, partitions[0]) in loop.active))  # fmt: skip
        time.sleep(0.3)  # a blocking read
        self.events.append(("read done",))

    def poll(self, now_s: float) -> list[Outgoing]:
        self.events.append(("poll",))
        return []


def test_after_restore_runs_on_a_thread_before_the_partition_is_active_and_no_poll() -> None:
    async def go() -> None:
        holder: list = []
        broker = SlowBroker()
        merge = Restoring(holder)
        loop = make(broker, [Busy(), merge])
        holder.append(loop)
        loop._totals[PARTIALS] = 1

        async def restore(keys: list[str]) -> dict[str, bytes]:
            return {"merge/0": b"snapshot"}

        loop._restore = restore  # type: ignore[method-assign]
        tick = asyncio.create_task(loop.tick(0.0))  # polls Busy, then waits on the broker
        await asyncio.sleep(0.05)
        assign = asyncio.create_task(loop.on_assigned({TP(PARTIALS, 0)}))
        await asyncio.sleep(0.05)
        broker.release.set()  # the tick goes on while the assignment is under way
        await asyncio.gather(tick, assign)
        await loop.tick(0.0)  # settled: polled again

        kinds = [e[0] for e in merge.events]
        assert kinds[kinds.index("assign"):] == ["assign", "read", "read done", "poll"]
        assert merge.events[kinds.index("assign")][2] == {"merge/0": b"snapshot"}
        _, partitions, on_thread, active = merge.events[kinds.index("read")]
        assert partitions == [0] and on_thread and not active
        assert TP(PARTIALS, 0) in loop.active

    asyncio.run(go())
