"""Partition votes combined per model: concept drift needs a quorum of partitions.

Events are spread over partitions by prediction_id, so every partition sees a random
sample of a model's traffic and a real concept change shows in most of them, while a
false alarm is a one-partition accident. A :class:`VoteBox` keeps each partition's
degradation :class:`~stream_jobs.concept.monitor.Fire` s of the last ``vote_window_ms``; at
the model's error-stream clock a partition votes with its latest fire at most
``vote_window_ms`` older than the clock. The quorum is ``max(min_votes, ceil(fraction x
partitions that fed errors))``.

**The clock is the slowest partition's**, not the fastest's: the event time every partition
that feeds errors has reached (the lowest of their latest error event times). A partition
that runs ahead — in a fast replay one partition's labels may be read long before
another's — neither ages the others' votes out of the window nor votes before they caught
up, so the quorum at a given clock does not depend on how the partitions' batches
interleaved. A partition that has fed nothing for ``stall_s`` seconds of wall-clock time
(no traffic, a dead producer) is not waited for (as the pooled test and the merge book do).
As for the pooled test, this holds once every partition has fed its first errors: before,
the quorum is of the partitions heard from.

The price is delay: each partition sees 1/P of the errors, so a quorum needs about P
times the samples one detector on the merged stream needs. Measured in
``tests/bench/bench_labels.py`` (frozen Hoeffding tree, abrupt concept change, 3 seeds,
delay in samples of the whole stream): SEA 1347-2337 with 8 partitions and a 4/8 quorum
against 174-591 for one FHDDM on the merged stream; Agrawal 525-589 vs 58-88; STAGGER
369-507 vs 36-43; no false alarm either way, where one river DDM raised 3 (SEA) and 5
(Agrawal) before the change. ``LabelConfig.concept_scope="model"`` runs one monitor on
the merged stream of the partitions this process owns.

>>> from stream_jobs.concept.monitor import Fire
>>> box = VoteBox(fraction=0.5, min_votes=1, vote_window_ms=60_000)
>>> for p in range(4): box.seen(p, 0)
>>> box.vote(0, Fire(10_000, 0.1, 0.3, 500, 100)); box.seen(0, 10_000); box.evaluate()[0]
False
>>> box.vote(2, Fire(20_000, 0.1, 0.4, 500, 100)); box.seen(2, 20_000); box.evaluate()
(False, [])
>>> for p in (0, 1, 3): box.seen(p, 20_000)
>>> met, votes = box.evaluate(); met, [p for p, _ in votes], box.clock_ms
(True, [0, 2], 20000)
>>> box.evaluate(200_000)[0]
False
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable

from stream_jobs.concept.monitor import Fire

_VOTE = struct.Struct("<iqddqq")
_HEAD = struct.Struct("<qqB")
_MAGIC = b"VBx2"  # state format 2 (format 1 had no header: its first field is a clock)
NEVER = -(2**62)


class VoteBox:
    def __init__(
        self,
        fraction: float = 0.5,
        min_votes: int = 1,
        vote_window_ms: int = 300_000,
        stall_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.fraction = fraction
        self.min_votes = min_votes
        self.vote_window_ms = vote_window_ms
        self.stall_s = stall_s
        self.wall = clock
        self.partitions: dict[int, int] = {}  # partition -> latest error event time
        self.heard: dict[int, float] = {}  # partition -> wall-clock time it last fed errors
        self.votes: dict[int, list[Fire]] = {}  # partition -> fires, oldest first
        self.active = False
        self.active_since_ms = 0

    def seen(self, partition: int, event_time_ms: int) -> None:
        prev = self.partitions.get(partition, NEVER)
        self.partitions[partition] = max(prev, int(event_time_ms))
        self.heard[partition] = self.wall()
        self._forget()

    def vote(self, partition: int, fire: Fire) -> None:
        fires = self.votes.setdefault(partition, [])
        fires.append(fire)
        fires.sort(key=lambda f: f.event_time_ms)

    @property
    def clock_ms(self) -> int:
        """The model's error-stream clock: the latest error event time of the slowest
        partition still feeding errors (see the module's doc)."""
        now = self.wall()
        live = [t for p, t in self.partitions.items()
                if now - self.heard.get(p, now) < self.stall_s]  # fmt: skip
        if live:
            return min(live)
        return max(self.partitions.values(), default=NEVER)

    def required(self) -> int:
        return max(self.min_votes, math.ceil(self.fraction * len(self.partitions)))

    def evaluate(self, clock_ms: int | None = None) -> tuple[bool, list[tuple[int, Fire]]]:
        """``(quorum met, current votes)`` at ``clock_ms`` (default: the error clock)."""
        now = self.clock_ms if clock_ms is None else clock_ms
        live, window = [], self.vote_window_ms
        for p in sorted(self.votes):
            inside = [f for f in self.votes[p] if 0 <= now - f.event_time_ms <= window]
            if inside:
                live.append((p, inside[-1]))
        return len(live) >= self.required(), live

    def _forget(self) -> None:
        """Drop fires no clock to come can count (the clock only moves forward)."""
        horizon = self.clock_ms - self.vote_window_ms
        for p in list(self.votes):
            fires = [f for f in self.votes[p] if f.event_time_ms >= horizon]
            if fires:
                self.votes[p] = fires
            else:
                del self.votes[p]

    def to_bytes(self) -> bytes:
        out = bytearray(_MAGIC + _HEAD.pack(0, self.active_since_ms, int(self.active)))
        out += struct.pack("<I", len(self.partitions))
        for p, t in self.partitions.items():
            out += struct.pack("<iq", p, t)
        fires = [(p, f) for p, fs in self.votes.items() for f in fs]
        out += struct.pack("<I", len(fires))
        for p, f in fires:
            out += _VOTE.pack(p, f.event_time_ms, f.before, f.after, f.n_before, f.n_after)
        return bytes(out)

    def load(self, data: bytes) -> VoteBox:
        """Format 2 (:meth:`to_bytes`) or 1 (one fire per partition, no header); every
        partition counts as heard from now (its stall wait starts again)."""
        pos = len(_MAGIC) if data[: len(_MAGIC)] == _MAGIC else 0
        _, self.active_since_ms, active = _HEAD.unpack_from(data, pos)
        self.active = bool(active)
        pos += _HEAD.size
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        now = self.wall()
        for _ in range(n):
            p, t = struct.unpack_from("<iq", data, pos)
            self.partitions[p] = t
            self.heard[p] = now
            pos += 12
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        for _ in range(n):
            p, t, b, a, nb, na = _VOTE.unpack_from(data, pos)
            self.vote(p, Fire(t, b, a, nb, na))
            pos += _VOTE.size
        return self
