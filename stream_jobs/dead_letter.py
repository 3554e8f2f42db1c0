"""Dead-letter records: the original bytes, why they were rejected and where they came from."""

from __future__ import annotations

from typing import Any


def dead_letter_record(
    *,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error_kind: str,
    topic: str,
    partition: int,
    offset: int,
    now_ms: int,
    component: str = "worker",
) -> dict[str, Any]:
    """A ``DeadLetter`` Avro record.

    >>> rec = dead_letter_record(key=b"k", value=b"v", reason="bad", error_kind="decode",
    ...                          topic="t", partition=1, offset=7, now_ms=0)
    >>> rec["source_partition"], rec["source_offset"]
    (1, 7)
    """
    return {
        "key": key,
        "value": value,
        "reason": reason,
        "error_kind": error_kind,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "failed_at_ms": now_ms,
        "component": component,
    }
