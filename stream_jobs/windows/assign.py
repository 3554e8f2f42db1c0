"""Event-time window assignment: tumbling (default) or hopping, vectorised per batch.

A window ``[start, start + size)`` is *closed* once ``end + allowed_lateness <= max event
time seen`` (the model's watermark is ``max event time - allowed lateness``). An event
whose newest window is already closed is *late*: it is counted (see :meth:`split_late`)
and never applied, so a closed window's statistics are final.

>>> import numpy as np
>>> a = WindowAssigner(size_ms=60_000)
>>> [(s, len(i)) for s, i in a.assign(np.array([5, 61_000, 7, 119_999]))]
[(0, 2), (60000, 2)]
>>> h = WindowAssigner(size_ms=60_000, hop_ms=30_000)
>>> sorted(s for s, _ in h.assign(np.array([45_000])))
[0, 30000]
>>> a.split_late(np.array([1_000, 65_000]), watermark_ms=60_000)[1]
1
"""

from __future__ import annotations

import numpy as np


class WindowAssigner:
    """Maps event times to window starts; ``hop_ms`` must divide ``size_ms``."""

    def __init__(self, size_ms: int = 60_000, hop_ms: int | None = None) -> None:
        if size_ms <= 0:
            raise ValueError("window size must be positive")
        hop = size_ms if hop_ms is None else int(hop_ms)
        if hop <= 0 or size_ms % hop:
            raise ValueError(f"hop {hop_ms} must be positive and divide the size {size_ms}")
        self.size_ms = int(size_ms)
        self.hop_ms = hop
        self.per_event = self.size_ms // hop

    def newest_end(self, t: np.ndarray) -> np.ndarray:
        """End of the newest window each event belongs to."""
        return (t // self.hop_ms) * self.hop_ms + self.size_ms

    def split_late(self, t: np.ndarray, watermark_ms: float) -> tuple[np.ndarray | None, int]:
        """``(index of on-time events or None for all, late count)`` against a watermark
        (``max event time - allowed lateness``)."""
        if t.size == 0 or watermark_ms == -np.inf:
            return None, 0
        late = self.newest_end(t) <= watermark_ms
        n_late = int(np.count_nonzero(late))
        if n_late == 0:
            return None, 0
        return np.flatnonzero(~late), n_late

    def assign(self, t: np.ndarray) -> list[tuple[int, np.ndarray | None]]:
        """``[(window_start, index into t or None for all rows)]``, one entry per window."""
        out: list[tuple[int, np.ndarray | None]] = []
        if t.size == 0:
            return out
        base = (t // self.hop_ms) * self.hop_ms
        for j in range(self.per_event):
            starts = base - j * self.hop_ms if j else base
            lo, hi = int(starts.min()), int(starts.max())
            if lo == hi:
                out.append((lo, None))
                continue
            uniq, inv = np.unique(starts, return_inverse=True)
            order = np.argsort(inv, kind="stable")
            bounds = np.cumsum(np.bincount(inv, minlength=uniq.size))[:-1]
            out.extend(zip(uniq.tolist(), np.split(order, bounds), strict=True))
        return out
