"""The concept-drift quorum (VoteBox) judges on the slowest partition's clock: whatever
order the partitions' batches come in, the answer at a given clock is the same."""

from __future__ import annotations

import random

import numpy as np

from stream_jobs.concept.monitor import Fire
from stream_jobs.concept.quorum import VoteBox

P, W, BATCHES, STEP = 4, 20_000, 30, 5_000


def fixture(seed: int = 0) -> list[list[tuple[int, list[Fire]]]]:
    """Per partition, its batches in order: (latest error event time, fires of the batch)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(P):
        batches = []
        for b in range(BATCHES):
            lo, hi = b * STEP, (b + 1) * STEP
            fires = []
            if rng.random() < 0.15 or (60_000 <= lo < 80_000 and rng.random() < 0.7):
                t = int(rng.integers(lo, hi))
                fires.append(Fire(t, 0.1, 0.3, 100, 50))
            batches.append((hi, fires))
        out.append(batches)
    return out


def expected_at(parts: list, clock: int) -> tuple[bool, list[int]]:
    fires = [[f for _, fs in batches for f in fs] for batches in parts]
    voters = [p for p, fs in enumerate(fires) if any(0 <= clock - f.event_time_ms <= W for f in fs)]
    return len(voters) >= 2, voters


def replay(parts: list, seed: int) -> list[tuple[int, bool, list[int]]]:
    rng = random.Random(seed)
    box = VoteBox(fraction=0.5, min_votes=1, vote_window_ms=W, clock=lambda: 0.0)
    for p in range(P):  # every partition has fed errors (before, the quorum is of fewer)
        box.seen(p, 0)
    queues = [list(b) for b in parts]
    seen = []
    while any(queues):
        p = rng.choice([i for i, q in enumerate(queues) if q])
        t, fires = queues[p].pop(0)
        box.seen(p, t)  # as the label engine does: progress, then the batch's fires
        for f in fires:
            box.vote(p, f)
        met, votes = box.evaluate()
        seen.append((box.clock_ms, met, [q for q, _ in votes]))
    return seen


def test_the_answer_at_a_clock_does_not_depend_on_the_interleaving() -> None:
    parts = fixture()
    clocks = set()
    for seed in range(60):
        for clock, met, voters in replay(parts, seed):
            clocks.add(clock)
            assert (met, voters) == expected_at(parts, clock), (seed, clock)
    assert any(expected_at(parts, c)[0] for c in clocks)  # the quorum is met somewhere
    assert len(clocks) > 10


def test_a_partition_ahead_neither_ages_votes_out_nor_votes_early() -> None:
    box = VoteBox(fraction=0.5, min_votes=1, vote_window_ms=10_000, clock=lambda: 0.0)
    for p in range(4):
        box.seen(p, 0)
    box.seen(0, 5_000)
    box.vote(0, Fire(5_000, 0.1, 0.3, 100, 50))
    box.seen(1, 500_000)  # runs far ahead and fires there
    box.vote(1, Fire(400_000, 0.1, 0.3, 100, 50))
    assert box.clock_ms == 0 and box.evaluate() == (False, [])
    box.seen(2, 6_000)
    box.vote(2, Fire(6_000, 0.1, 0.3, 100, 50))
    for p in (0, 2, 3):
        box.seen(p, 8_000)
    met, votes = box.evaluate()
    assert box.clock_ms == 8_000 and met and [p for p, _ in votes] == [0, 2]


def test_a_silent_partition_stops_holding_the_clock_after_stall_s() -> None:
    now = [0.0]
    box = VoteBox(vote_window_ms=10_000, stall_s=60, clock=lambda: now[0])
    box.seen(0, 1_000)
    box.seen(1, 50_000)
    assert box.clock_ms == 1_000
    now[0] = 59.0
    box.seen(1, 60_000)
    assert box.clock_ms == 1_000
    now[0] = 61.0
    assert box.clock_ms == 60_000  # partition 0 silent for 61 s: not waited for


def test_state_round_trip_keeps_every_fire_and_reads_format_1() -> None:
    box = VoteBox(vote_window_ms=10_000, clock=lambda: 0.0)
    box.seen(0, 3_000)
    box.vote(0, Fire(1_000, 0.1, 0.3, 100, 50))
    box.vote(0, Fire(2_000, 0.1, 0.4, 100, 50))
    box.active, box.active_since_ms = True, 2_000
    back = VoteBox(vote_window_ms=10_000, clock=lambda: 0.0).load(box.to_bytes())
    assert back.votes == box.votes and back.partitions == box.partitions
    assert (back.active, back.active_since_ms) == (True, 2_000)
    import struct

    v1 = struct.pack("<qqB", 3_000, 0, 0) + struct.pack("<I", 1) + struct.pack("<iq", 0, 3_000)
    v1 += struct.pack("<I", 1) + struct.pack("<iqddqq", 0, 2_000, 0.1, 0.4, 100, 50)
    old = VoteBox(vote_window_ms=10_000, clock=lambda: 0.0).load(v1)
    assert old.votes == {0: [Fire(2_000, 0.1, 0.4, 100, 50)]} and old.clock_ms == 3_000
