"""Online-detector votes across workers: kind ``vote`` on the partials topic.

Each input partition's detectors fire on their own (stage 1); a firing travels as a
:class:`PartialRecord` of kind ``vote`` (payload: version byte ``1`` + JSON of the firing)
to the merge stage that owns the model, where one :class:`VoteCombiner` per partials-topic
partition counts the quorum per model — the same answer whether one worker or ten own the
input partitions. ``partitions_with_data`` is the number of input partitions that have
reported drift progress for the model to this merge stage.

>>> from stream_jobs.detectors.firing import Firing
>>> f = Firing("m", "1", "x", "adwin", 2, 7, 1_000, 1.5)
>>> decode_vote(PartialRecord("m", "1", VOTE_KIND, 0, 0, 2, 4, 7, encode_vote(f))) == f
True
"""

from __future__ import annotations

import json
from typing import Any

from stream_jobs.detectors.firing import Firing
from stream_jobs.detectors.vote import VoteCombiner
from stream_jobs.merge.protocol import PartialRecord

VOTE_KIND = "vote"
_VERSION = 1


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


def votes_state(v: VoteCombiner) -> dict[str, Any]:
    return {
        "votes": [[*k, [[f.partition, f.offset, f.event_time_ms, f.statistic] for f in d.values()]]
                  for k, d in v.votes.items()],
        "emitted": [[*k, t] for k, t in v.emitted.items()],
    }  # fmt: skip


def load_votes(v: VoteCombiner, s: dict[str, Any]) -> VoteCombiner:
    for m, ver, subj, det, fs in s.get("votes", []):
        v.votes[(m, ver, subj, det)] = {
            int(p): Firing(m, ver, subj, det, int(p), int(o), int(t), float(x))
            for p, o, t, x in fs
        }
    for m, ver, subj, det, t in s.get("emitted", []):
        v.emitted[(m, ver, subj, det)] = int(t)
    return v
