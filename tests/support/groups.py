"""Has a consumer group got past every record of a topic? The sentinel tests wait on before
asserting that something did *not* happen (no double count, no duplicate notification, no
alert for a silenced detection).

The worker, the evaluator and the notifier commit an input offset only after what the
record caused is done (metrics counted, outputs acknowledged by the broker, notifications
delivered or dead-lettered). So once a group's committed offset of every partition is the
partition's end, whatever those records would have caused has happened and is visible; a
stable group does not read them again (a record the worker only dead-letters is
acknowledged at once, so a partition that ends in garbage is committed to its end too).

The end is found by reading from the committed offset with ``enable.partition.eof`` (the
embedded broker's ListOffsets is wrong, see :mod:`schemas.kafka.read`): end-of-partition at
once means caught up, a record means not yet.
"""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

from modelwatch.backtest import group_committed
from schemas.kafka import KafkaConfig, partitions_of
from tests.support.processes import wait_for


def behind(bootstrap: str, group: str, topic: str, timeout_s: float = 15.0) -> dict[int, int]:
    """Partitions of ``topic`` with a record at or after ``group``'s committed offset, and
    that offset (-1: nothing committed); empty when the group has committed everything."""
    reader = KafkaConfig.of(bootstrap).consumer(**{"enable.partition.eof": True})
    try:
        parts = partitions_of(reader, topic)
        committed = group_committed(bootstrap, group, topic, parts)
        start = {p: committed[p] if committed.get(p, -1) >= 0 else OFFSET_BEGINNING
                 for p in parts}
        reader.assign([TopicPartition(topic, p, start[p]) for p in parts])
        unknown, late = set(parts), {}
        deadline = time.monotonic() + timeout_s
        while unknown:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(unknown)} gave neither a "
                                   f"record nor their end within {timeout_s}s")
            for msg in reader.consume(100, timeout=0.1):
                p = msg.partition()
                if p not in unknown:
                    continue
                err = msg.error()
                if err is not None and err.code() != KafkaError._PARTITION_EOF:
                    continue
                unknown.discard(p)
                if err is None:  # a record the group has not committed
                    late[p] = committed.get(p, -1)
        return late
    finally:
        reader.close()


def wait_group_done(bootstrap: str, group: str, topics: list[str], timeout_s: float,
                    what: str) -> None:
    """Wait until ``group`` has committed every record of every one of ``topics``."""
    late: dict[str, dict[int, int]] = {}

    def done() -> bool:
        late.clear()
        late.update({t: b for t in topics if (b := behind(bootstrap, group, t))})
        return not late

    try:
        wait_for(done, timeout_s, f"group {group} to commit every record of "
                 f"{', '.join(topics)} ({what})", every_s=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; committed offsets short of the end: {late}") from None
