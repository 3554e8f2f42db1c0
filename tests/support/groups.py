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

from modelwatch.backtest import group_committed
from schemas.kafka import KafkaConfig, partitions_of, read_to_end
from tests.support.processes import wait_for


def behind(bootstrap: str, group: str, topic: str, timeout_s: float = 15.0) -> dict[int, int]:
    """Partitions of ``topic`` with a record at or after ``group``'s committed offset, and
    that offset (-1: nothing committed); empty when the group has committed everything."""
    reader = KafkaConfig.of(bootstrap).consumer()
    try:
        parts = partitions_of(reader, topic)
    finally:
        reader.close()
    committed = group_committed(bootstrap, group, topic, parts)
    uncommitted = read_to_end(bootstrap, topic, timeout_s=timeout_s, since=committed)
    return {r.partition: committed.get(r.partition, -1) for r in uncommitted}


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
