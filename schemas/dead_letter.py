"""Dead-letter records: the original bytes, why they were rejected and where they came from.

One builder for every component (worker, evaluator, notifier), so a dead letter always has
the same shape and always fits in a produce request: a value larger than
:data:`MAX_VALUE_BYTES` is cut to that size and the reason says so, with the SHA-256 of the
whole value (enough to find the original upstream); a reason longer than
:data:`MAX_REASON_CHARS` is cut too (reasons quote producer-controlled text).
"""

from __future__ import annotations

import hashlib
from typing import Any

MAX_VALUE_BYTES = 256 * 1024
MAX_REASON_CHARS = 2_000


def _cap_reason(reason: str) -> str:
    if len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[:MAX_REASON_CHARS] + f"… [{len(reason) - MAX_REASON_CHARS} more chars]"


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
    >>> big = dead_letter_record(key=None, value=b"x" * (MAX_VALUE_BYTES + 1), reason="bad",
    ...                          error_kind="send", topic="t", partition=0, offset=0, now_ms=0)
    >>> len(big["value"]) == MAX_VALUE_BYTES, "sha256=" in big["reason"]
    (True, True)
    """
    reason = _cap_reason(str(reason))
    if value is not None and len(value) > MAX_VALUE_BYTES:
        digest = hashlib.sha256(value).hexdigest()
        reason = (
            f"{reason} [value cut from {len(value)} to {MAX_VALUE_BYTES} bytes; "
            f"sha256={digest}]"
        )
        value = value[:MAX_VALUE_BYTES]
    if key is not None and len(key) > MAX_VALUE_BYTES:
        key = key[:MAX_VALUE_BYTES]
    return {
        "key": key,
        "value": value,
        "reason": reason,
        "error_kind": error_kind,
        "source_topic": topic,
        "source_partition": int(partition),
        "source_offset": int(offset),
        "failed_at_ms": int(now_ms),
        "component": component,
    }
