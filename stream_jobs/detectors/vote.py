"""Combine per-partition detector firings into per-model detections by quorum, in event time.

Events are spread over partitions by prediction_id, so every partition sees a random
sample of the model's traffic and a real change makes the detectors of *several*
partitions fire at about the same event time, while false alarms are independent. A
detection is emitted for (model, version, subject, detector) once ``quorum`` distinct
partitions fired within ``vote_window_ms`` of event time; the votes are then cleared and,
for one more ``vote_window_ms``, later firings of the same key are absorbed (the other
partitions seeing the same change do not make a second detection).
``quorum="majority"`` means more than half of the input partitions that report progress
for the model; an integer quorum is capped at that number (one partition decides alone).

**Decided in event time, not in arrival order.** Firings are buffered (:meth:`add`); a
firing at event time ``t`` is decided (:meth:`decide`) once *every* input partition of the
model has progressed past ``t`` — a partition's progress is the event time below which it
sends no more firings, and its records reach the merge stage in order, so by then every
firing before ``t`` has arrived (:func:`stream_jobs.merge.votes.settled_progress`) — and
the buffered firings are processed in the canonical order ``(event time, partition,
offset)``. The same firings thus give the same detections whatever order the partitions'
records arrived in.

**Timeout** (as the merge book does for windows): a partition that never reports for a
model, or stays away, would hold the votes forever. Once some partition has passed a
buffered firing, the firings that were passed then are decided ``wait_s`` seconds of
clock time later without waiting for the rest; firings that arrive afterwards for event
times already decided are *late*: counted and dropped. Only this path depends on timing.
**Duplicates** (the same partition, offset, event time, subject and detector: an
at-least-once replay) are dropped.

The price is latency, not event time: a detection carries the same event time as before
(the firing that completed the quorum) but leaves once every partition has passed it: stage
1 publishes its vote progress (newest event time less the allowed lateness; older events
are not fed to the detectors) at every poll, so that is about ``allowed lateness`` of event
time plus a poll later (measured in ``tests/bench/bench_votes.py``).

>>> v = VoteCombiner(quorum=2, vote_window_ms=60_000, wait_s=30)
>>> f = lambda p, t, o=7: Firing("m", "1", "x", "adwin", p, offset=o, event_time_ms=t)
>>> [v.add(x) for x in (f(3, 30_000), f(1, 40_000), f(0, 1_000), f(0, 1_000))]
['applied', 'applied', 'applied', 'duplicate']
>>> v.decide("m", {0: 50_000, 1: 20_000, 2: 50_000, 3: 50_000}, expected=4, now_s=0)
[]
>>> [(d.event_time_ms, d.details["partitions"], d.value, d.threshold)
...  for d in v.decide("m", dict.fromkeys(range(4), 60_000), expected=4, now_s=1)]
[(30000, '0,3', 2.0, 2.0)]
>>> v.add(f(2, 10_000))  # an event time every partition had passed: late
'late'

Partition 2 stops reporting: its firings and votes are not waited for after ``wait_s``.

>>> v.add(f(0, 200_000)), v.add(f(1, 201_000))
('applied', 'applied')
>>> v.decide("m", {0: 300_000, 1: 300_000, 2: 60_000, 3: 300_000}, 4, now_s=10)
[]
>>> [d.details["partitions"] for d in v.decide("m", {0: 300_000, 1: 300_000, 2: 60_000,
...                                                  3: 300_000}, 4, now_s=40)]
['0,1']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from schemas.detection import Detection, DetectionKind
from stream_jobs.detectors.firing import Firing

PREDICTION_SUBJECT = "prediction"
NEVER = -(2**62)
Key = tuple[str, str, str, str]  # model, version, subject, detector
Ident = tuple[str, str, str, int, int, int]  # version, subject, detector, partition, offset, t


def canonical(f: Firing) -> tuple[int, int, int, str, str, str]:
    """The order in which buffered firings are decided."""
    return (f.event_time_ms, f.partition, f.offset, f.model_version, f.subject, f.detector)


class VoteCombiner:
    def __init__(
        self,
        quorum: int | Literal["majority"] = "majority",
        vote_window_ms: int = 60_000,
        wait_s: float = 30.0,
    ) -> None:
        if quorum != "majority" and int(quorum) < 1:
            raise ValueError("quorum must be >= 1 or 'majority'")
        self.quorum = quorum
        self.vote_window_ms = int(vote_window_ms)
        self.wait_s = float(wait_s)
        self.pending: dict[str, dict[Ident, Firing]] = {}  # model -> buffered firings
        self.votes: dict[Key, dict[int, Firing]] = {}  # decided firings still in the window
        self.emitted: dict[Key, int] = {}  # key -> event time of its last detection
        self.done: dict[str, int] = {}  # model -> firings below this event time are decided
        self.overdue: dict[str, tuple[float, int]] = {}  # model -> (since, cut to decide)
        self.late = 0

    def needed(self, partitions_with_data: int) -> int:
        p = max(1, partitions_with_data)
        return p // 2 + 1 if self.quorum == "majority" else min(int(self.quorum), p)

    # ---- input -------------------------------------------------------------------------
    def add(self, firing: Firing) -> str:
        """Buffer one firing: ``applied``, ``duplicate`` or ``late`` (dropped)."""
        f = firing
        if f.event_time_ms < self.done.get(f.model, NEVER):
            self.late += 1
            return "late"
        box = self.pending.setdefault(f.model, {})
        ident = (f.model_version, f.subject, f.detector, f.partition, f.offset, f.event_time_ms)
        if ident in box:
            return "duplicate"
        box[ident] = f
        return "applied"

    # ---- output ------------------------------------------------------------------------
    def decide(
        self,
        model: str,
        progress: Mapping[int, int],
        expected: int = 0,
        now_s: float = 0.0,
        force: bool = False,
        moved_s: Mapping[int, float] | None = None,
    ) -> list[Detection]:
        """Detections of ``model`` whose firings are settled, in canonical order.

        ``progress``: input partition -> event time below which it sends no more firings;
        ``expected``: the model's input partition count (0: those in
        ``progress``); ``now_s``: clock time, for the timeout only; ``force``: decide
        everything buffered (shutdown, tests); ``moved_s``: input partition -> clock time
        its progress last moved (a partition still behind that moved holds the timeout:
        the wait runs from its last move)."""
        box = self.pending.get(model)
        if not box:
            self.overdue.pop(model, None)
            return []
        if force:
            cut = max(f.event_time_ms for f in box.values()) + 1
        else:
            cut = self._settled(progress, expected)
            passed = max(progress.values(), default=NEVER)
            cut = self._timeout(model, box, cut, passed, now_s, progress, moved_s)
        ready = sorted((f for f in box.values() if f.event_time_ms < cut), key=canonical)
        if cut > self.done.get(model, NEVER):
            self.done[model] = cut
        if not ready:
            return []
        for f in ready:
            del box[(f.model_version, f.subject, f.detector, f.partition, f.offset,
                     f.event_time_ms)]  # fmt: skip
        if not box:
            del self.pending[model]
        need = self.needed(len(progress) or expected)
        out = [d for f in ready if (d := self._count(f, need)) is not None]
        self._forget(model, self.done[model] - self.vote_window_ms)
        return out

    def _settled(self, progress: Mapping[int, int], expected: int) -> int:
        """Event time below which every partition has passed (no firing can still come)."""
        if not progress or len(progress) < expected:
            return NEVER
        return min(progress.values())

    def _timeout(
        self, model: str, box: dict[Ident, Firing], cut: int, passed: int, now_s: float,
        progress: Mapping[int, int], moved_s: Mapping[int, float] | None,
    ) -> int:  # fmt: skip
        """The cut, moved to what some partition passed once that has waited ``wait_s``
        (from the later of the wait's start and the last move of a partition behind)."""
        waiting = self.overdue.get(model)
        if waiting is not None and cut >= waiting[1]:
            waiting = None  # settled in the meantime
        if waiting is None:
            if not any(cut <= f.event_time_ms < passed for f in box.values()):
                self.overdue.pop(model, None)
                return cut
            waiting = self.overdue[model] = (now_s, passed)
        since, target = waiting
        if moved_s:
            behind = [moved_s.get(p, -math.inf) for p, t in progress.items() if t < target]
            since = max(since, *behind) if behind else since
        if now_s - since < self.wait_s or math.isnan(now_s - since):
            return cut
        del self.overdue[model]
        return max(cut, target)

    def _count(self, f: Firing, need: int) -> Detection | None:
        key = (f.model, f.model_version, f.subject, f.detector)
        last = self.emitted.get(key)
        if last is not None and f.event_time_ms - last <= self.vote_window_ms:
            return None  # the same change, seen by another partition: absorbed
        votes = self.votes.setdefault(key, {})
        horizon = f.event_time_ms - self.vote_window_ms
        for p in [p for p, g in votes.items() if g.event_time_ms < horizon]:
            del votes[p]
        votes[f.partition] = f
        if len(votes) < need:
            return None
        del self.votes[key]
        self.emitted[key] = f.event_time_ms
        first = min(g.event_time_ms for g in votes.values())
        kind = (
            DetectionKind.PREDICTION_DRIFT
            if f.subject == PREDICTION_SUBJECT
            else DetectionKind.FEATURE_DRIFT
        )
        return Detection(
            model=f.model,
            model_version=f.model_version,
            kind=kind,
            subject=f.subject,
            detector=f.detector,
            value=float(len(votes)),
            threshold=float(need),
            event_time_ms=f.event_time_ms,
            partition=f.partition,
            offset=f.offset,
            details={
                "mode": "online",
                "partitions": ",".join(str(p) for p in sorted(votes)),
                "first_event_time_ms": str(first),
                "statistic": f"{f.statistic:.6g}",
            },
        )

    def _forget(self, model: str, horizon: int) -> None:
        """Drop what no future firing (all at or after ``done``) can meet: bounded memory."""
        for key in [k for k, t in self.emitted.items() if k[0] == model and t < horizon]:
            del self.emitted[key]
        for key in [k for k in self.votes if k[0] == model]:
            votes = self.votes[key]
            for p in [p for p, g in votes.items() if g.event_time_ms < horizon]:
                del votes[p]
            if not votes:
                del self.votes[key]
