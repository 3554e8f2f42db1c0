"""Online-detector votes across workers: kind ``vote`` on the partials topic.

Each input partition's detectors fire on their own (stage 1); a firing travels as a
:class:`PartialRecord` of kind ``vote`` (payload: version byte ``1`` + JSON of the firing)
to the merge stage that owns the model, where one :class:`VoteCombiner` per partials-topic
partition counts the quorum per model — the same answer whether one worker or ten own the
input partitions. The combiner buffers the firings and decides them once every input
partition of the model has progressed past them, in event-time order: the same firings,
the same detections, in whatever order the partitions' records reached the partials topic.
A ``vote`` record with an empty payload is a *vote progress marker* (sent by stage 1 at
every poll): its partition feeds its detectors nothing older than ``progress_ms`` any more,
so it will send no firing before it. The merge book keeps it as it keeps the drift
progress (:func:`settled_progress` reads both).

>>> from stream_jobs.detectors.firing import Firing
>>> f = Firing("m", "1", "x", "adwin", 2, 7, 1_000, 1.5)
>>> decode_vote(PartialRecord("m", "1", VOTE_KIND, 0, 0, 2, 4, 7, encode_vote(f))) == f
True
>>> v = VoteCombiner(quorum=2)
>>> v.add(f), v.decide("m", {0: 500, 1: 9_000}, expected=2)
('applied', [])
>>> back = load_votes(VoteCombiner(quorum=2), json.loads(json.dumps(votes_state(v))))
>>> back.pending == v.pending, back.done == v.done
(True, True)
"""

from __future__ import annotations

import json
from typing import Any

from stream_jobs.detectors.firing import Firing
from stream_jobs.detectors.vote import NEVER, VoteCombiner
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.protocol import PartialRecord

VOTE_KIND = "vote"
_VERSION = 1
STATE_VERSION = 2  # of votes_state


def encode_vote(f: Firing) -> bytes:
    body = {"s": f.subject, "d": f.detector, "o": f.offset, "t": f.event_time_ms,
            "x": f.statistic}  # fmt: skip
    return bytes([_VERSION]) + json.dumps(body, separators=(",", ":")).encode()


def decode_vote(rec: PartialRecord) -> Firing:
    if not rec.payload or rec.payload[0] != _VERSION:
        raise ValueError(f"vote payload version {rec.payload[:1]!r} is not 1")
    b = json.loads(rec.payload[1:])
    return Firing(rec.model, rec.model_version, b["s"], b["d"], rec.partition, int(b["o"]),
                  int(b["t"]), float(b["x"]))  # fmt: skip


def settled_progress(
    book: MergeBook, model: str, lag_ms: int = 0, drift_kind: str = "drift"
) -> tuple[dict[int, int], int]:
    """``(input partition -> event time below which it sends no more firings, expected
    partitions)`` for :meth:`VoteCombiner.decide`, from what the merge book tracks: a
    partition's vote progress (a ``vote`` marker: its detectors see nothing older), or its
    drift progress less ``lag_ms`` (``window - hop``: with hopping windows an event that
    much older than the progress is still on time), whichever is further."""
    drift, expected = book.progress_of(model, drift_kind)
    out = {p: t - lag_ms for p, t in drift.items()}
    for p, t in book.progress_of(model, VOTE_KIND)[0].items():
        out[p] = max(out.get(p, NEVER), t)
    return out, expected


def _f(f: Firing) -> list[Any]:
    return [f.partition, f.offset, f.event_time_ms, f.statistic]


def votes_state(v: VoteCombiner) -> dict[str, Any]:
    """The combiner's state as plain JSON-able data (version 2): buffered firings, the
    decided votes still in their window, last detections, decided event time per model,
    and the cut each waiting model will be decided to when its timeout expires."""
    return {
        "version": STATE_VERSION,
        "pending": [[f.model, f.model_version, f.subject, f.detector, *_f(f)]
                    for box in v.pending.values() for f in box.values()],
        "votes": [[*k, [_f(f) for f in d.values()]] for k, d in v.votes.items()],
        "emitted": [[*k, t] for k, t in v.emitted.items()],
        "done": [[m, t] for m, t in v.done.items()],
        "overdue": [[m, cut] for m, (_, cut) in v.overdue.items()],
        "late": v.late,
    }  # fmt: skip


def load_votes(
    v: VoteCombiner, s: dict[str, Any], now_s: float | None = 0.0
) -> VoteCombiner:
    """Install :func:`votes_state` output (version 1, before votes were buffered, too);
    a model's timeout wait starts again at ``now_s`` on the new owner, as the book's
    (None: at its next decision, on the caller's clock)."""
    version = s.get("version", 1)
    if version not in (1, STATE_VERSION):
        raise ValueError(f"vote state version {version!r} is not 1 or {STATE_VERSION}")
    for m, ver, subj, det, fs in s.get("votes", []):
        v.votes[(m, ver, subj, det)] = {
            int(p): Firing(m, ver, subj, det, int(p), int(o), int(t), float(x)) for p, o, t, x in fs
        }
    for m, ver, subj, det, t in s.get("emitted", []):
        v.emitted[(m, ver, subj, det)] = int(t)
    for m, ver, subj, det, p, o, t, x in s.get("pending", []):
        v.add(Firing(m, ver, subj, det, int(p), int(o), int(t), float(x)))
    v.done.update({m: int(t) for m, t in s.get("done", [])})
    if now_s is not None:
        v.overdue.update({m: (now_s, int(cut)) for m, cut in s.get("overdue", [])})
    v.late = int(s.get("late", 0))
    return v
