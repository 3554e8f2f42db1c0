"""Which offsets a consumer may commit when records finish out of order.

Each consumed record is held with a reference count (how many notifications still carry
it); the committable offset of a partition is the lowest offset still held, or one past
the highest offset seen when nothing is held.

>>> t = OffsetTracker()
>>> t.add(0, 5, refs=1); t.add(0, 6, refs=0); t.add(0, 7, refs=2)
>>> t.committable()
{0: 5}
>>> t.release(0, 5); t.release(0, 7)
>>> t.committable()
{0: 7}
>>> t.release(0, 7); t.committable()
{0: 8}
"""

from __future__ import annotations

import threading


class OffsetTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, dict[int, int]] = {}
        self._next: dict[int, int] = {}

    def add(self, partition: int, offset: int, refs: int) -> None:
        with self._lock:
            self._next[partition] = max(self._next.get(partition, 0), offset + 1)
            if refs > 0:
                held = self._held.setdefault(partition, {})
                held[offset] = held.get(offset, 0) + refs

    def release(self, partition: int, offset: int) -> None:
        with self._lock:
            held = self._held.get(partition, {})
            if offset not in held:
                return
            held[offset] -= 1
            if held[offset] <= 0:
                del held[offset]

    def committable(self) -> dict[int, int]:
        with self._lock:
            out = {}
            for p, nxt in self._next.items():
                held = self._held.get(p)
                out[p] = min(held) if held else nxt
            return out

    def forget(self, partitions: list[int]) -> None:
        """Drop partitions lost in a rebalance (their new owner replays what is held)."""
        with self._lock:
            for p in partitions:
                self._held.pop(p, None)
                self._next.pop(p, None)

    def held(self) -> int:
        with self._lock:
            return sum(len(h) for h in self._held.values())
