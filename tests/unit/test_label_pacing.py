"""The label pacer's gate without Kafka: labels wait while their prediction partition's
state is restored, and the idle time that lets them go counts from the end of it."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from schemas.topics import TopicNames
from stream_jobs.label_pacing import LabelPacer


class FakeLoop:
    def __init__(self) -> None:
        self.restoring = True
        self.since: float | None = None
        self.asked_at = 0.0  # when the pacer last asked whether the partition is restoring

    def prediction_restoring(self, partition: int) -> bool:
        self.asked_at = time.monotonic()
        return self.restoring

    def prediction_active_since(self, partition: int) -> float | None:
        return self.since


def fake_app() -> SimpleNamespace:
    return SimpleNamespace(
        should_stop=False,
        sensors=SimpleNamespace(add=lambda sensor: None),
        on_partitions_assigned=SimpleNamespace(connect=lambda fn: fn),
        consumer=None,  # no highwater, no committed offset: the idle limit applies
    )


def test_labels_wait_while_their_prediction_partition_is_restored() -> None:
    async def go() -> None:
        pacer = LabelPacer(TopicNames(), max_idle_s=0.5, max_wait_s=60.0)
        loop = FakeLoop()
        pacer.install(fake_app(), loop)
        pacer.labels(0, 9_000)  # a first label batch went through
        asked_from = time.monotonic()
        turn = asyncio.ensure_future(pacer.wait_turn(0))
        # the pacer asked again after twice the idle limit: still restoring, still waiting
        while loop.asked_at < asked_from + 1.0:
            assert time.monotonic() < asked_from + 10, "the pacer stopped asking"
            await asyncio.sleep(0.01)
        assert not turn.done()
        loop.restoring, loop.since = False, time.monotonic()
        await asyncio.wait_for(turn, 5.0)  # no prediction came: idle from the restore's end
        assert time.monotonic() - loop.since >= 0.5
        assert pacer.pauses._value.get() == 1

    asyncio.run(go())


def test_without_the_worker_loop_nothing_is_restoring() -> None:
    async def go() -> None:
        pacer = LabelPacer(TopicNames(), max_idle_s=0.2)
        pacer.install(fake_app())
        pacer.labels(0, 9_000)
        await asyncio.wait_for(pacer.wait_turn(0), 5.0)

    asyncio.run(go())
