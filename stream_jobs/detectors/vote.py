"""Combine per-partition detector firings into per-model detections by quorum.

Events are spread over partitions by prediction_id, so every partition sees a random
sample of the model's traffic and a real change makes the detectors of *several*
partitions fire at about the same event time, while false alarms are independent. A
detection is emitted for (model, version, subject, detector) once ``quorum`` distinct
partitions fired within ``vote_window_ms`` of event time; the votes are then cleared and,
for one more ``vote_window_ms``, later firings of the same key are absorbed (the other
partitions seeing the same change do not make a second detection).
``quorum="majority"`` means more than half of the partitions that had data for the model
recently; an integer quorum is capped at that number (a worker that sees one partition
decides alone).

>>> v = VoteCombiner(quorum=2, vote_window_ms=60_000)
>>> f = lambda p, t: Firing("m", "1", "x", "adwin", p, offset=7, event_time_ms=t)
>>> v.update(f(0, 1_000), partitions_with_data=4) is None
True
>>> v.update(f(0, 2_000), partitions_with_data=4) is None   # same partition again
True
>>> d = v.update(f(3, 30_000), partitions_with_data=4)
>>> str(d.kind), d.subject, d.detector, d.value, d.threshold, d.partition, d.details["partitions"]
('feature_drift', 'x', 'adwin', 2.0, 2.0, 3, '0,3')
>>> v.update(f(1, 40_000), partitions_with_data=4) is None   # same change: absorbed
True
>>> v.update(f(1, 200_000), partitions_with_data=4) is None  # votes were cleared
True
"""

from __future__ import annotations

from typing import Literal

from schemas.detection import Detection, DetectionKind
from stream_jobs.detectors.firing import Firing

PREDICTION_SUBJECT = "prediction"


class VoteCombiner:
    def __init__(
        self, quorum: int | Literal["majority"] = "majority", vote_window_ms: int = 60_000
    ) -> None:
        if quorum != "majority" and int(quorum) < 1:
            raise ValueError("quorum must be >= 1 or 'majority'")
        self.quorum = quorum
        self.vote_window_ms = int(vote_window_ms)
        self.votes: dict[tuple[str, str, str, str], dict[int, Firing]] = {}
        self.emitted: dict[tuple[str, str, str, str], int] = {}  # key -> event time

    def needed(self, partitions_with_data: int) -> int:
        p = max(1, partitions_with_data)
        return p // 2 + 1 if self.quorum == "majority" else min(int(self.quorum), p)

    def update(self, firing: Firing, partitions_with_data: int) -> Detection | None:
        key = (firing.model, firing.model_version, firing.subject, firing.detector)
        last = self.emitted.get(key)
        if last is not None and firing.event_time_ms - last <= self.vote_window_ms:
            return None
        votes = self.votes.setdefault(key, {})
        horizon = firing.event_time_ms - self.vote_window_ms
        for p in [p for p, f in votes.items() if f.event_time_ms < horizon]:
            del votes[p]
        votes[firing.partition] = firing
        need = self.needed(partitions_with_data)
        if len(votes) < need:
            return None
        del self.votes[key]
        self.emitted[key] = firing.event_time_ms
        first = min(f.event_time_ms for f in votes.values())
        kind = (
            DetectionKind.PREDICTION_DRIFT
            if firing.subject == PREDICTION_SUBJECT
            else DetectionKind.FEATURE_DRIFT
        )
        return Detection(
            model=firing.model,
            model_version=firing.model_version,
            kind=kind,
            subject=firing.subject,
            detector=firing.detector,
            value=float(len(votes)),
            threshold=float(need),
            event_time_ms=firing.event_time_ms,
            partition=firing.partition,
            offset=firing.offset,
            details={
                "mode": "online",
                "partitions": ",".join(str(p) for p in sorted(votes)),
                "first_event_time_ms": str(first),
                "statistic": f"{firing.statistic:.6g}",
            },
        )

    def expire_model(self, model: str, max_event_ms: int) -> None:
        """Forget a model's votes older than the vote window (bounded memory)."""
        horizon = max_event_ms - self.vote_window_ms
        for key in [k for k, t in self.emitted.items() if k[0] == model and t < horizon]:
            del self.emitted[key]
        for key in [k for k in self.votes if k[0] == model]:
            votes = self.votes[key]
            for p in [p for p, f in votes.items() if f.event_time_ms < horizon]:
                del votes[p]
            if not votes:
                del self.votes[key]
