"""Online-detector votes decided in event time: the same firings give the same detections
whatever order the input partitions' records reach the merge stage, with or without a
restore of the merge state in the middle; a partition that stays away is waited for
``idle_partition_s`` only."""

from __future__ import annotations

import random

import numpy as np
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.detectors.firing import Firing
from stream_jobs.detectors.vote import VoteCombiner, canonical
from stream_jobs.drift import DriftConfig
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.protocol import PartialRecord
from stream_jobs.merge.stage import MergeStage
from stream_jobs.merge.votes import VOTE_KIND, encode_vote, settled_progress, votes_state
from stream_jobs.outputs import DetectionSink
from stream_jobs.stage import state_key
from stream_jobs.state.metrics import StateMetrics

P = 4
WINDOW = 10_000
CFG = DriftConfig(window_ms=WINDOW, allowed_lateness_ms=1_000, vote_window_ms=30_000,
                  detectors=False, idle_partition_s=30)  # fmt: skip
KEYS = [("x", "adwin"), ("x", "page_hinkley"), ("y", "adwin")]
CHANGES = [95_000, 240_000, 241_000]  # event times where most partitions fire


def partition_records(seed: int = 0, windows: int = 40) -> list[list[PartialRecord]]:
    """Each input partition's records in the order its stage 1 would publish them: the
    firings of the first half of a window (in no particular event-time order), a vote
    progress marker at the half, the firings of the second half, the marker closing it."""
    rng = np.random.default_rng(seed)
    out: list[list[PartialRecord]] = []
    for p in range(P):
        recs: list[PartialRecord] = []
        offset = 0
        for w in range(windows):
            start, end = w * WINDOW, (w + 1) * WINDOW
            fs = []
            for subject, detector in KEYS:
                times = [int(rng.integers(start, end))] if rng.random() < 0.06 else []
                times += [int(c + rng.integers(-12_000, 12_000)) for c in CHANGES
                          if rng.random() < 0.8]  # fmt: skip
                for t in times:
                    if start <= t < end:
                        fs.append(Firing("m", "1", subject, detector, p, offset + len(fs), t, 2.5))
            rng.shuffle(fs)  # type: ignore[arg-type]
            mid = start + WINDOW // 2
            recs += [vote(f) for f in fs if f.event_time_ms < mid]
            recs.append(PartialRecord("m", "", VOTE_KIND, mid, mid, p, P, offset, b"", mid))
            recs += [vote(f) for f in fs if f.event_time_ms >= mid]
            offset += len(fs) + 1
            recs.append(PartialRecord("m", "", "drift", end, end, p, P, offset, b"", end))
        out.append(recs)
    return out


def vote(f: Firing) -> PartialRecord:
    t = f.event_time_ms
    return PartialRecord("m", "1", VOTE_KIND, t, t, f.partition, P, f.offset, encode_vote(f))


def is_firing(r: PartialRecord) -> bool:
    return r.kind == VOTE_KIND and not r.is_marker


def new_stage() -> MergeStage:
    codec, topics = default_codec(), TopicNames()
    r = CollectorRegistry()
    return MergeStage(CFG, DriftMetrics(r), StateMetrics(r), DetectionSink(codec, topics, r),
                      codec, topics)  # fmt: skip


def run(parts: list[list[PartialRecord]], seed: int, restore_at: float | None = None) -> list:
    """Interleave the partitions' records at random (each partition's own order kept, as
    Kafka does), poll at random moments; optionally move the merge state to a fresh stage
    (snapshot + restore) part-way. Returns the detections, decoded."""
    rng = random.Random(seed)
    codec, topics = default_codec(), TopicNames()
    queues = [list(q) for q in parts]
    total = sum(len(q) for q in queues)
    stage = new_stage()
    out = []
    for off in range(total):
        p = rng.choice([i for i, q in enumerate(queues) if q])
        r = queues[p].pop(0)
        stage.observe_partial(0, off, codec.encode("WindowPartial", r.to_record()))
        if rng.random() < 0.2:
            out += [o for o in stage.poll(0.0) if o.topic == topics.detections]
        if restore_at is not None and off == int(total * restore_at):
            data = stage.books[0].to_bytes({"votes": votes_state(stage.votes[0])})
            stage = new_stage()
            stage.on_assign(topics.window_partials, [0], {state_key("merge", 0): data}, 1)
    out += [o for o in stage.poll(0.0) if o.topic == topics.detections]
    return [_fields(codec.decode(o.value).record) for o in out]


def _fields(d: dict) -> tuple:
    return (d["subject"], d["detector"], d["event_time_ms"], d["value"], d["threshold"],
            d["partition"], d["offset"], d["details"]["partitions"])  # fmt: skip


def arrival_order(parts: list[list[PartialRecord]], seed: int) -> list:
    """What the old combiner did: each firing counted as it arrives (no buffer)."""
    from stream_jobs.merge.votes import decode_vote

    rng = random.Random(seed)
    queues = [[r for r in q if is_firing(r)] for q in parts]
    v = VoteCombiner(CFG.quorum, CFG.vote_window_ms)
    out = []
    while any(queues):
        p = rng.choice([i for i, q in enumerate(queues) if q])
        d = v._count(decode_vote(queues[p].pop(0)), v.needed(P))
        if d is not None:
            out.append((d.subject, d.detector, d.event_time_ms))
    return out


def test_shuffled_arrival_gives_identical_detections() -> None:
    parts = partition_records()
    firings = sum(1 for q in parts for r in q if is_firing(r))
    baseline = run(parts, seed=0)
    assert firings > 30 and len(baseline) >= 3  # the changes are detected, per key
    assert {(s, d) for s, d, *_ in baseline} == set(KEYS)
    for seed in range(1, 120):
        assert run(parts, seed) == baseline, seed
    # the fixture is order-sensitive: counted in arrival order, the answers differ
    assert len({tuple(arrival_order(parts, s)) for s in range(30)}) > 1


def test_a_restore_in_the_middle_changes_nothing() -> None:
    parts = partition_records(seed=3)
    baseline = run(parts, seed=0)
    assert baseline
    for seed in range(1, 25):
        assert run(parts, seed, restore_at=random.Random(seed).random()) == baseline, seed


def test_detections_equal_the_canonical_replay_of_all_firings() -> None:
    """Deciding everything at once, in canonical order, is the reference answer."""
    from stream_jobs.merge.votes import decode_vote

    parts = partition_records(seed=5)
    v = VoteCombiner(CFG.quorum, CFG.vote_window_ms)
    for q in reversed(parts):
        for r in reversed(q):
            if is_firing(r):
                v.add(decode_vote(r))
    every = v.decide("m", {}, expected=P, force=True)
    assert [(d.subject, d.detector, d.event_time_ms, d.details["partitions"]) for d in every] == [
        (s, d, t, ps) for s, d, t, _, _, _, _, ps in run(parts, seed=7)
    ]


def test_a_partition_that_stays_away_is_waited_for_wait_s_then_its_votes_are_late() -> None:
    v = VoteCombiner(quorum=2, vote_window_ms=30_000, wait_s=30)
    f = lambda p, t: Firing("m", "1", "x", "adwin", p, t, t)  # noqa: E731
    v.add(f(0, 5_000)), v.add(f(1, 6_000))
    progress = {0: 20_000, 1: 20_000, 2: 20_000, 3: 0}  # partition 3 stuck at 0
    assert v.decide("m", progress, expected=4, now_s=100.0) == []
    assert v.decide("m", progress, expected=4, now_s=129.0) == []
    (d,) = v.decide("m", progress, expected=4, now_s=130.0)
    assert d.details["partitions"] == "0,1" and d.event_time_ms == 6_000
    assert v.add(f(3, 7_000)) == "late" and v.late == 1  # passed by the timeout: dropped
    # a partition that never reports at all (expected 4, 3 report) is a timeout, too
    v.add(f(0, 50_000)), v.add(f(2, 51_000))
    three = {0: 60_000, 1: 60_000, 2: 60_000}
    assert v.decide("m", three, expected=4, now_s=200.0) == []
    assert [d.event_time_ms for d in v.decide("m", three, expected=4, now_s=230.0)] == [51_000]


def test_a_partition_behind_that_keeps_moving_holds_the_votes_timeout() -> None:
    """A partition still behind whose progress moved is late, not gone: the wait runs from
    its last move (given by the merge book, :meth:`MergeBook.moved`)."""
    v = VoteCombiner(quorum=2, vote_window_ms=30_000, wait_s=30)
    f = lambda p, t: Firing("m", "1", "x", "adwin", p, t, t)  # noqa: E731
    v.add(f(0, 5_000)), v.add(f(1, 6_000))
    progress = {0: 20_000, 1: 20_000, 2: 20_000, 3: 1_000}  # partition 3 behind
    assert v.decide("m", progress, expected=4, now_s=100.0, moved_s={3: 100.0}) == []
    moved = {0: 100.0, 1: 100.0, 2: 100.0, 3: 120.0}  # it moved again at 120 s
    assert v.decide("m", {**progress, 3: 2_000}, 4, now_s=131.0, moved_s=moved) == []
    assert v.decide("m", {**progress, 3: 2_000}, 4, now_s=149.0, moved_s=moved) == []
    (d,) = v.decide("m", {**progress, 3: 2_000}, 4, now_s=150.0, moved_s=moved)
    assert d.details["partitions"] == "0,1"
    # the merge book says when each partition last moved, stamped at the poll that saw it
    book = MergeBook()
    book.add(PartialRecord("m", "", "drift", 20_000, 20_000, 0, 2, 0, b"", 20_000))
    assert book.moved("m", ("drift", VOTE_KIND), now_s=5.0) == {0: 5.0}
    book.add(PartialRecord("m", "", VOTE_KIND, 27_000, 27_000, 1, 2, 0, b"", 27_000))
    book.add(PartialRecord("m", "", "drift", 20_000, 20_000, 0, 2, 1, b"", 20_000))  # no move
    assert book.moved("m", ("drift", VOTE_KIND), now_s=9.0) == {0: 5.0, 1: 9.0}


def test_settled_progress_takes_vote_markers_or_drift_progress_less_the_hop_lag() -> None:
    """With hopping windows an event up to ``window - hop`` before a partition's drift
    progress is still on time there; a vote progress marker says exactly where it is."""
    book = MergeBook()
    book.add(PartialRecord("m", "", "drift", 20_000, 20_000, 0, 2, 0, b"", 20_000))
    book.add(PartialRecord("m", "", "drift", 20_000, 20_000, 1, 2, 0, b"", 20_000))
    book.add(PartialRecord("m", "", VOTE_KIND, 27_000, 27_000, 1, 2, 0, b"", 27_000))
    assert settled_progress(book, "m", lag_ms=5_000) == ({0: 15_000, 1: 27_000}, 2)
    v = VoteCombiner(quorum=1, vote_window_ms=30_000)
    v.add(Firing("m", "1", "x", "adwin", 0, 1, 16_000))
    assert v.decide("m", *settled_progress(book, "m", lag_ms=5_000)) == []
    assert len(v.decide("m", *settled_progress(book, "m", lag_ms=0))) == 1


def test_canonical_order_and_duplicates() -> None:
    a = Firing("m", "1", "x", "adwin", 2, 5, 1_000)
    b = Firing("m", "1", "x", "adwin", 1, 9, 1_000)
    assert sorted([a, b], key=canonical) == [b, a]
    v = VoteCombiner(quorum=1)
    assert [v.add(a), v.add(a), v.add(b)] == ["applied", "duplicate", "applied"]
    book = MergeBook()
    book.add(PartialRecord("m", "", "drift", 10, 10, 0, 2, 0, b"", 10))
    assert book.progress_of("m", "drift") == ({0: 10}, 2)


def test_stage_one_publishes_vote_progress_after_its_firings_at_every_drain() -> None:
    from schemas.columnar import PredictionColumns
    from stream_jobs.drift import DriftEngine
    from stream_jobs.reference.profile import build_profile

    rng = np.random.default_rng(0)
    ref = build_profile("m", "", numeric={"x": rng.normal(size=5_000)})
    engine = DriftEngine(DriftConfig(window_ms=10_000, allowed_lateness_ms=1_000))
    engine.set_reference(ref)

    def batch(t0: int, shift: float, n: int = 2_000) -> PredictionColumns:
        t = t0 + np.arange(n, dtype=np.int64) * 5
        return PredictionColumns("m", "1", [""] * n, t, np.ones(n), np.zeros(n, np.int8),
                                 numeric={"x": rng.normal(shift, 1, n)})  # fmt: skip

    engine.observe(0, 0, batch(0, 0.0))
    engine.observe(0, 1, batch(10_000, 3.0))  # a big shift: the detectors fire
    recs = [r for r in engine.drain_partials() if r.kind == VOTE_KIND]
    assert any(is_firing(r) for r in recs) and recs[-1].is_marker
    assert recs[-1].progress_ms == 19_995 - 1_000  # newest event time less the lateness
    assert engine.drain_partials() == []  # nothing new: no marker either
    state = engine.partition_state(0)
    again = DriftEngine(engine.config)
    again.set_reference(ref)
    again.restore_partition(0, state)
    again.observe(0, 2, batch(18_000, 3.0, n=2))  # older than the vote progress: not fed
    assert [r for r in again.drain_partials() if r.kind == VOTE_KIND] == []
    again.observe(0, 3, batch(20_000, 3.0, n=10))
    (marker,) = [r for r in again.drain_partials() if r.kind == VOTE_KIND]
    assert marker.progress_ms == 20_045 - 1_000
