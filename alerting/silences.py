"""Silences: mute the alerts of a model (optionally of one kind) until a time.

Silences live in the compacted topic ``modelwatch.silences`` keyed by silence id, so every
worker sees the same set. The embedded broker does not compact, so a reader applies the
topic from the beginning and keeps the **last value per key**; a tombstone (null value)
removes the silence, and an expired silence is simply ignored.

>>> store = SilenceStore()
>>> store.apply("s1", Silence(id="s1", model="churn", kind=None, created_at_ms=0,
...                           expires_at_ms=1_000, reason="deploy"))
>>> store.is_silenced("churn", "feature_drift", now_ms=500)
True
>>> store.is_silenced("churn", "feature_drift", now_ms=1_000)
False
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Silence:
    """One silence; ``kind=None`` mutes every kind of the model."""

    id: str
    model: str
    kind: str | None
    created_at_ms: int
    expires_at_ms: int
    reason: str
    created_by: str = ""

    def matches(self, model: str, kind: str) -> bool:
        return self.model == model and (self.kind is None or self.kind == kind)

    def is_active(self, now_ms: int) -> bool:
        return self.created_at_ms <= now_ms < self.expires_at_ms

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Silence:
        return cls(**{k: rec[k] for k in cls.__dataclass_fields__ if k in rec})

    @classmethod
    def new(cls, model: str, kind: str | None, duration_ms: int, reason: str, now_ms: int,
            created_by: str = "") -> Silence:
        if duration_ms <= 0:
            raise ValueError("a silence needs a positive duration")
        return cls(id=uuid.uuid4().hex[:12], model=model, kind=kind, created_at_ms=now_ms,
                   expires_at_ms=now_ms + duration_ms, reason=reason, created_by=created_by)


def silence_key(raw: bytes) -> str:
    """The silence id of a record key; bytes that are not UTF-8 stay distinct, never raise.

    >>> silence_key(b"s1"), silence_key(b"\\xff\\xfe")
    ('s1', '\\\\xff\\\\xfe')
    """
    return raw.decode("utf-8", "backslashreplace")


class SilenceStore:
    """Last value per silence id; tombstones remove."""

    def __init__(self) -> None:
        self._by_id: dict[str, Silence] = {}

    def apply(self, key: str, silence: Silence | None) -> None:
        """Apply one record of the silences topic (``None`` = tombstone)."""
        if silence is None:
            self._by_id.pop(key, None)
        else:
            self._by_id[key] = silence

    def active(self, now_ms: int) -> list[Silence]:
        return sorted((s for s in self._by_id.values() if s.is_active(now_ms)),
                      key=lambda s: s.expires_at_ms)

    def all(self) -> list[Silence]:
        return sorted(self._by_id.values(), key=lambda s: s.created_at_ms)

    def is_silenced(self, model: str, kind: str, now_ms: int) -> bool:
        return any(s.matches(model, kind) for s in self.active(now_ms))

    def get(self, silence_id: str) -> Silence | None:
        return self._by_id.get(silence_id)
