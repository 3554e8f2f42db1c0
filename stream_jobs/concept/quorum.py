"""Partition votes combined per model: concept drift needs a quorum of partitions.

Events are spread over partitions by prediction_id, so every partition sees a random
sample of a model's traffic and a real concept change shows in most of them, while a
false alarm is a one-partition accident. A :class:`VoteBox` keeps each partition's latest
degradation :class:`~stream_jobs.concept.monitor.Fire`; a vote counts while it is at most
``vote_window_ms`` of event time older than the model's error-stream clock. The quorum is
``max(min_votes, ceil(fraction x partitions that fed errors))``.

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
>>> box.vote(0, Fire(10_000, 0.1, 0.3, 500, 100)); box.evaluate(10_000)[0]
False
>>> box.vote(2, Fire(20_000, 0.1, 0.4, 500, 100)); met, votes = box.evaluate(20_000); met
True
>>> box.evaluate(200_000)[0]
False
"""

from __future__ import annotations

import math
import struct

from stream_jobs.concept.monitor import Fire

_VOTE = struct.Struct("<iqddqq")
_HEAD = struct.Struct("<qqB")


class VoteBox:
    def __init__(self, fraction: float = 0.5, min_votes: int = 1, vote_window_ms: int = 300_000):
        self.fraction = fraction
        self.min_votes = min_votes
        self.vote_window_ms = vote_window_ms
        self.partitions: dict[int, int] = {}  # partition -> latest error event time
        self.votes: dict[int, Fire] = {}
        self.clock_ms = -(2**62)
        self.active = False
        self.active_since_ms = 0

    def seen(self, partition: int, event_time_ms: int) -> None:
        prev = self.partitions.get(partition, -(2**62))
        self.partitions[partition] = max(prev, int(event_time_ms))
        self.clock_ms = max(self.clock_ms, int(event_time_ms))

    def vote(self, partition: int, fire: Fire) -> None:
        self.votes[partition] = fire
        self.clock_ms = max(self.clock_ms, fire.event_time_ms)

    def required(self) -> int:
        return max(self.min_votes, math.ceil(self.fraction * len(self.partitions)))

    def evaluate(self, clock_ms: int | None = None) -> tuple[bool, list[tuple[int, Fire]]]:
        """``(quorum met, current votes)`` at ``clock_ms`` (default: the error clock)."""
        now = self.clock_ms if clock_ms is None else clock_ms
        live = [
            (p, f)
            for p, f in sorted(self.votes.items())
            if now - f.event_time_ms <= self.vote_window_ms
        ]
        return len(live) >= self.required(), live

    def to_bytes(self) -> bytes:
        out = bytearray(_HEAD.pack(self.clock_ms, self.active_since_ms, int(self.active)))
        out += struct.pack("<I", len(self.partitions))
        for p, t in self.partitions.items():
            out += struct.pack("<iq", p, t)
        out += struct.pack("<I", len(self.votes))
        for p, f in self.votes.items():
            out += _VOTE.pack(p, f.event_time_ms, f.before, f.after, f.n_before, f.n_after)
        return bytes(out)

    def load(self, data: bytes) -> VoteBox:
        self.clock_ms, self.active_since_ms, active = _HEAD.unpack_from(data)
        self.active = bool(active)
        pos = _HEAD.size
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        for _ in range(n):
            p, t = struct.unpack_from("<iq", data, pos)
            self.partitions[p] = t
            pos += 12
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        for _ in range(n):
            p, t, b, a, nb, na = _VOTE.unpack_from(data, pos)
            self.votes[p] = Fire(t, b, a, nb, na)
            pos += _VOTE.size
        return self
