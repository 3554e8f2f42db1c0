"""Stage 1's side of the partials contract, shared by every kind: one closing step.

A stage 1 (drift, performance) closes a model's windows of one input partition in steps, on
that partition's own event clock: each step closes every window ending at or before a
*boundary* on the window grid. A step sends one :class:`PartialRecord` per window it
closed; a step that closed no window with data sends one *progress marker* instead (empty
payload). The step's **last** record carries ``progress_ms = boundary``, so the merge stage
learns that the partition has nothing more for any window ending at or before the boundary
(:mod:`stream_jobs.merge.book`) only once it has read every partial of the step; the
others carry ``-1`` (no progress). (Measured: when every record of a step carried the
boundary, a merge poll that ran after the first records of a partition's step made the
step's other windows final without that partition's partials — 8 drift windows of a
backtest short by a quarter of their rows in 1 of 6 replays, the partials then dropped as
late.)

>>> [(r.window_start_ms, r.progress_ms, r.is_marker)
...  for r in closing_step("m", "drift", 2, 4, 17, 20, [("1", 0, 10, b"a"), ("1", 10, 20, b"b")])]
[(0, -1, False), (10, 20, False)]
>>> [(r.window_start_ms, r.progress_ms, r.is_marker)
...  for r in closing_step("m", "drift", 2, 4, 17, 30, [])]
[(30, 30, True)]
>>> boundary(25_999, 10_000), boundary(-1, 10_000)
(20000, -10000)
"""

from __future__ import annotations

from schemas.codec import Codec
from stream_jobs.merge.protocol import PartialRecord

Closed = tuple[str, int, int, bytes]  # model version, window start, window end, payload


def boundary(limit_ms: float, hop_ms: int) -> int:
    """The newest window end at or below ``limit_ms`` (window ends lie on the hop grid)."""
    return int(limit_ms // hop_ms) * hop_ms


def closing_step(
    model: str,
    kind: str,
    partition: int,
    partitions: int,
    input_offset: int,
    boundary_ms: int,
    closed: list[Closed],
) -> list[PartialRecord]:
    """The records of one closing step of ``partition`` for ``model`` up to
    ``boundary_ms``: a partial per closed window, or one progress marker."""
    if not closed:
        return [
            PartialRecord(model, "", kind, boundary_ms, boundary_ms, partition, partitions,
                          input_offset, b"", boundary_ms)
        ]  # fmt: skip
    last = len(closed) - 1
    return [
        PartialRecord(model, version, kind, start, end, partition, partitions, input_offset,
                      payload, boundary_ms if i == last else -1)
        for i, (version, start, end, payload) in enumerate(closed)
    ]  # fmt: skip


def partial_message(codec: Codec, topic: str, rec: PartialRecord) -> tuple[str, bytes, bytes]:
    """``(topic, key, value)`` of a record on the window-partials topic (keyed by model)."""
    return topic, rec.model.encode(), codec.encode("WindowPartial", rec.to_record())
