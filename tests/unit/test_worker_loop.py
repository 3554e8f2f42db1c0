"""The worker loop without Kafka: input records are acknowledged only once the state that
covers them is stored, snapshots go out after the outputs they account for, and a stage
whose records cannot be stored does not hold up another stage."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka.errors import MessageSizeTooLargeError
from faust.types import TP
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from stream_jobs.app import WorkerLoop
from stream_jobs.config import WorkerConfig
from stream_jobs.handler import Outgoing
from stream_jobs.pipeline_metrics import PipelineMetrics
from stream_jobs.sender import Sender, SenderMetrics
from stream_jobs.stage import StageBase
from stream_jobs.state.metrics import StateMetrics

CONFIG = WorkerConfig()
STATE = CONFIG.topics.worker_state


class Broker:
    def __init__(self) -> None:
        self.stored: list[Outgoing] = []
        self.refuse: set[str] = set()

    async def send_one(self, rec: Outgoing):
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        if rec.topic in self.refuse:
            fut.set_exception(TimeoutError("broker unavailable"))
        else:
            self.stored.append(rec)
            fut.set_result(None)
        return fut


class Stateful(StageBase):
    def __init__(self, name: str, topic: str, out_topic: str) -> None:
        self.name, self.state_topics, self.out_topic = name, (topic,), out_topic
        self.applied, self.handed, self.durable = -1, -1, -1

    def observe(self, partition: int, offset: int, cols) -> None:
        self.applied = offset

    def poll(self, now_s: float) -> list[Outgoing]:
        if self.applied == self.handed:
            return []
        self.handed = self.applied
        return [Outgoing(self.out_topic, None, b"out"), Outgoing(STATE, b"k", b"snap")]

    def acknowledge(self) -> None:
        self.durable = self.handed

    def durable_offset(self, topic: str, partition: int) -> int | None:
        return self.durable


class Event:
    def __init__(self) -> None:
        self.message = SimpleNamespace(value=b"v")
        self.value = b"v"
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def make(broker: Broker, stages: list) -> WorkerLoop:
    app = SimpleNamespace(should_stop=False)
    reg = CollectorRegistry()
    sender = Sender(broker.send_one, default_codec(), CONFIG.topics.dead_letter,
                    SenderMetrics(reg), retries=0)  # fmt: skip
    loop = WorkerLoop(app, CONFIG, stages, sender, PipelineMetrics(reg), StateMetrics(reg))
    loop.settled.set()  # assigned
    return loop


def test_records_are_acknowledged_once_their_snapshot_is_stored() -> None:
    async def go() -> None:
        broker = Broker()
        stage = Stateful("a", "in", "out-a")
        loop = make(broker, [stage])
        tp = TP("in", 0)
        events = [Event() for _ in range(3)]
        for off, ev in enumerate(events):
            stage.observe(0, off, None)
            loop.processed(tp, off, ev)
        assert not any(e.acked for e in events) and events[0].message.value is None
        broker.refuse = {"out-a", CONFIG.topics.dead_letter}
        await loop.tick(0.0)  # the output cannot be stored at all: no snapshot, no ack
        assert not any(e.acked for e in events)
        assert [r.topic for r in broker.stored if r.topic == STATE] == []
        broker.refuse = set()
        await loop.tick(1.0)
        assert [r.topic for r in broker.stored] == ["out-a", STATE]  # snapshot after output
        assert all(e.acked for e in events)

    asyncio.run(go())


def test_a_stuck_stage_does_not_hold_up_another() -> None:
    async def go() -> None:
        broker = Broker()
        stuck, fine = Stateful("a", "in-a", "out-a"), Stateful("b", "in-b", "out-b")
        loop = make(broker, [stuck, fine])
        ev_a, ev_b = Event(), Event()
        stuck.observe(0, 0, None)
        fine.observe(0, 0, None)
        loop.processed(TP("in-a", 0), 0, ev_a)
        loop.processed(TP("in-b", 0), 0, ev_b)
        broker.refuse = {"out-a", CONFIG.topics.dead_letter}
        await loop.tick(0.0)
        await loop.tick(1.0)
        assert ev_b.acked and not ev_a.acked
        assert [r.topic for r in broker.stored] == ["out-b", STATE]
        assert len(loop.queues["a"].records) == 2  # kept, in order, for the next tick

    asyncio.run(go())


class TooLarge(Broker):
    """Refuses state records over ``max_size`` as a real producer does."""

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self.max_size = max_size

    async def send_one(self, rec: Outgoing):
        if rec.topic == STATE and len(rec.value) > self.max_size:
            raise MessageSizeTooLargeError()
        return await super().send_one(rec)


class Sized(Stateful):
    """A stage whose snapshot size is set by the test; ``snapshot_refused`` as the real
    stages: the handed offset is forgotten, the durable one stays."""

    def __init__(self) -> None:
        super().__init__("s", "in", "out")
        self.size = 10
        self.refused: list[str] = []

    def poll(self, now_s: float) -> list[Outgoing]:
        if self.applied == self.handed:
            return []
        self.handed = self.applied
        return [Outgoing(self.out_topic, None, b"out"), Outgoing(STATE, b"s/0", b"x" * self.size)]

    def snapshot_refused(self, key: str) -> None:
        self.refused.append(key)
        self.handed = self.durable

    def acknowledge(self) -> None:
        self.durable = self.handed


def test_a_snapshot_too_large_to_store_never_counts_as_stored() -> None:
    async def go() -> None:
        broker = TooLarge(max_size=100)
        stage = Sized()
        loop = make(broker, [stage])
        ev = Event()
        stage.observe(0, 0, None)
        loop.processed(TP("in", 0), 0, ev)
        stage.size = 5_000
        await loop.tick(0.0)
        assert stage.refused == ["s/0"]  # told, without the group prefix
        assert not ev.acked and stage.durable == -1  # the commit point did not move
        assert [r.topic for r in broker.stored] == ["out"]  # no dead-lettered snapshot
        assert loop.state_metrics.refused.labels("s")._value.get() == 1
        stage.size = 10
        await loop.tick(1.0)  # the stage snapshots again: now it fits
        assert ev.acked and stage.durable == 0
        assert [r.topic for r in broker.stored] == ["out", "out", STATE]

    asyncio.run(go())


def test_a_prediction_partition_is_restoring_until_its_state_is_read() -> None:
    async def go() -> None:
        preds = CONFIG.topics.predictions
        loop = make(Broker(), [Stateful("a", preds, "out-a")])
        loop._totals[preds] = 2
        loop.app.conf = SimpleNamespace(broker_session_timeout=6.0)
        seen: list[tuple[bool, bool]] = []

        async def restore(keys: list[str]) -> dict[str, bytes]:
            seen.append((loop.prediction_restoring(0), loop.settled.is_set()))
            return {}

        loop._restore = restore  # type: ignore[method-assign]
        assert not loop.prediction_restoring(0) and loop.prediction_active_since(0) is None
        await loop.on_assigned({TP(preds, 0), TP(CONFIG.topics.labels, 0)})
        assert seen == [(True, False)]  # labels of partition 0 can tell, meanwhile
        assert not loop.prediction_restoring(0)
        since = loop.prediction_active_since(0)
        assert since is not None
        await loop.on_assigned({TP(preds, 0)})  # kept: active all along, same time
        assert loop.prediction_active_since(0) == since
        await loop.on_revoked({TP(preds, 0)})
        assert loop.prediction_active_since(0) is None

    asyncio.run(go())


def test_a_record_that_changed_no_state_is_acknowledged_at_once() -> None:
    """Only dead-lettered (nothing reached the stages): no snapshot will ever cover it, so
    holding it would stop the partition's commits at the end of a run of bad records."""

    async def go() -> None:
        stage = Stateful("a", "in", "out-a")
        loop = make(Broker(), [stage])
        tp = TP("in", 0)
        good, bad = Event(), Event()
        stage.observe(0, 0, None)
        loop.processed(tp, 0, good)
        loop.processed(tp, 1, bad, stateful=False)
        assert bad.acked and not good.acked  # the commit still stops at the held record
        await loop.tick(0.0)
        assert good.acked

    asyncio.run(go())
