"""The sender never lets one record block the others: an oversize record is dead-lettered
(value capped, hash kept), refusals are retried a bounded number of times, and only when
even the dead letter cannot be stored is a record handed back."""

from __future__ import annotations

import asyncio
import hashlib

from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from stream_jobs.handler import Outgoing
from stream_jobs.sender import Sender, SenderMetrics

DLQ = "dead"


class FakeBroker:
    def __init__(self, max_size: int = 1_000, down: bool = False, flaky: int = 0) -> None:
        self.max_size, self.down, self.flaky = max_size, down, flaky
        self.stored: list[Outgoing] = []

    async def send_one(self, rec: Outgoing):
        if len(rec.value) > self.max_size:
            raise MessageSizeTooLargeError()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        if self.down or self.flaky > 0:
            self.flaky -= 1
            fut.set_exception(KafkaTimeoutError())
        else:
            self.stored.append(rec)
            fut.set_result(None)
        return fut


def sender(broker: FakeBroker) -> Sender:
    return Sender(broker.send_one, default_codec(), DLQ, SenderMetrics(CollectorRegistry()),
                  chunk=2, backoff_s=0.0, max_dead_value=100)  # fmt: skip


def test_an_oversize_record_is_dead_lettered_and_the_rest_go_out() -> None:
    broker = FakeBroker()
    big = Outgoing("out", b"k", b"x" * 5_000)
    records = [Outgoing("out", b"a", b"1"), big, Outgoing("out", b"b", b"2")]
    kept = asyncio.run(sender(broker).send(records))
    assert kept == []
    assert [r.value for r in broker.stored if r.topic == "out"] == [b"1", b"2"]
    (dead,) = [r for r in broker.stored if r.topic == DLQ]
    rec = default_codec().decode(dead.value).record
    assert rec["value"] == b"x" * 100 and rec["error_kind"] == "unsendable"
    assert hashlib.sha256(big.value).hexdigest() in rec["reason"]
    assert rec["source_topic"] == "out"


def test_refusals_are_retried_then_records_come_back_when_the_broker_is_down() -> None:
    flaky = FakeBroker(flaky=2)
    assert asyncio.run(sender(flaky).send([Outgoing("out", None, b"1")])) == []
    assert [r.value for r in flaky.stored] == [b"1"]
    down = FakeBroker(down=True)
    records = [Outgoing("out", None, b"1"), Outgoing("out", None, b"2")]
    assert asyncio.run(sender(down).send(records)) == records


def test_a_record_with_refused_is_handed_back_there_never_dead_lettered() -> None:
    broker = FakeBroker()
    refused: list[Outgoing] = []
    big = Outgoing("state", b"k", b"x" * 5_000)
    kept = asyncio.run(sender(broker).send([big, Outgoing("state", b"j", b"1")], refused))
    assert kept == [] and refused == [big]
    assert [r.value for r in broker.stored] == [b"1"]  # nothing went to dead letters


class SlowToAccept(FakeBroker):
    """A producer whose hand-over sometimes waits (a full batch, metadata): records handed
    over concurrently would reach the partition in whatever order those waits end."""

    async def send_one(self, rec: Outgoing):
        await asyncio.sleep(0.002 * (int(rec.value) % 3))
        return await super().send_one(rec)


def test_records_reach_the_broker_in_the_order_they_were_computed() -> None:
    broker = SlowToAccept()
    records = [Outgoing("out", b"m", str(i).encode()) for i in range(12)]
    s = Sender(broker.send_one, default_codec(), DLQ, SenderMetrics(CollectorRegistry()),
               chunk=12, backoff_s=0.0)  # fmt: skip
    assert asyncio.run(s.send(records)) == []
    assert [r.value for r in broker.stored] == [r.value for r in records]
