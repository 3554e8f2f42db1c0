"""The merge stage's book and the drift merger: completeness, duplicates, late partials,
restores, and the same finals whatever the arrival order of the partials."""

from __future__ import annotations

import itertools
import random

import numpy as np
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.drift import DriftConfig, DriftEngine
from stream_jobs.drift.merger import DriftMerger
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.drift.synthetic import SyntheticStream
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.protocol import PartialRecord
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink
from stream_jobs.reference.view import ReferenceView
from stream_jobs.state.metrics import StateMetrics

CFG = DriftConfig(window_ms=10_000, allowed_lateness_ms=1_000, detectors=False)


def rec(p: int, start: int, progress: int, payload: bytes = b"x", offset: int = 0,
        partitions: int = 3) -> PartialRecord:  # fmt: skip
    return PartialRecord("m", "1", "drift", start, start + 10, p, partitions, offset, payload,
                         progress)  # fmt: skip


def test_a_window_waits_for_every_partition_then_is_final_once() -> None:
    book = MergeBook(wait_s=30)
    book.add(rec(0, 0, 10))
    book.add(rec(1, 0, 10))
    assert book.ready(0.0) == []  # partition 2 has said nothing
    book.add(rec(2, 10, 10, b""))  # a marker: partition 2 had no data up to 10
    ((key, parts, complete),) = book.ready(1.0)
    assert key == ("m", "1", "drift", 0) and [p.partition for p in parts] == [0, 1] and complete
    assert book.add(rec(2, 0, 10)) == "late"  # after the final record: dropped
    assert book.add(rec(1, 0, 10)) == "duplicate"  # a replayed copy of a merged partial
    assert book.ready(2.0) == []


def test_duplicates_keep_the_highest_input_offset() -> None:
    book = MergeBook(wait_s=30)
    assert book.add(rec(0, 0, 10, b"old", offset=5)) == "applied"
    assert book.add(rec(0, 0, 10, b"new", offset=9)) == "applied"
    assert book.add(rec(0, 0, 10, b"old", offset=5)) == "duplicate"
    book.add(rec(1, 0, 10, b""))
    book.add(rec(2, 0, 10, b""))
    ((_, parts, _),) = book.ready(0.0)
    assert [p.payload for p in parts] == [b"new"]


def test_a_silent_partition_holds_a_window_for_wait_s_only() -> None:
    book = MergeBook(wait_s=30)
    book.add(rec(0, 0, 10))
    book.add(rec(1, 0, 10))
    assert book.ready(100.0) == []  # overdue from now on
    assert book.ready(129.0) == []
    ((_, parts, complete),) = book.ready(130.0)
    assert len(parts) == 2 and not complete


def test_replayed_partials_offsets_are_skipped_and_the_book_restores() -> None:
    book = MergeBook(wait_s=30)
    book.add(rec(0, 0, 10), offset=0)
    book.add(rec(1, 0, 10), offset=1)
    assert book.add(rec(1, 0, 10), offset=1) == "skipped"
    restored, extra = MergeBook.from_bytes(book.to_bytes({"k": 1}), now_s=0.0)
    assert extra == {"k": 1} and restored.last_offset == 1
    assert restored.add(rec(0, 0, 10), offset=0) == "skipped"
    restored.add(rec(2, 20, 20, b""), offset=2)
    assert [k[3] for k, _, _ in restored.ready(0.0)] == [0]


def _partials(seed: int) -> tuple[list[PartialRecord], dict]:
    s = SyntheticStream(n_numeric=3, n_categorical=1, rate_per_s=100, seed=seed)
    engine = DriftEngine(CFG)
    engine.input_partitions = 3
    engine.set_reference(s.reference())
    for i in range(12):  # 0 .. 60 s, spread over 3 partitions
        engine.observe(i % 3, i // 3, s.batch(i * 5_000, 500))
    return engine.drain_partials(), s.reference()


def _finals(records: list[PartialRecord], ref: dict) -> list[tuple]:
    book = MergeBook(wait_s=1e9)
    for r in records:
        book.add(r)
    merger = DriftMerger(CFG)
    out = []
    for key, parts, complete in book.ready(0.0):
        w = merger.merge_closed(parts, ReferenceView(ref))
        out.append((key, complete, w.stats["count"], w.stats["features"][0]["mean"],
                    [(v["column"], v["drifted"]) for v in w.stats["drift"]]))  # fmt: skip
    return out


def test_finals_are_the_same_whatever_the_arrival_order() -> None:
    records, ref = _partials(seed=4)
    want = _finals(records, ref)
    # partition 0 reaches 49.99 s only: 40-50 s is not closed everywhere yet
    assert [k[3] for k, *_ in want] == [0, 10_000, 20_000, 30_000]
    assert all(complete for _, complete, *_ in want)
    assert [n for _, _, n, *_ in want] == [1_000] * 4
    rng = random.Random(0)
    for _ in range(5):
        shuffled = records[:]
        rng.shuffle(shuffled)
        assert _finals(shuffled, ref) == want
    doubled = list(itertools.chain.from_iterable(zip(records, records, strict=True)))
    assert _finals(doubled, ref) == want  # at-least-once copies change nothing


def test_merge_stage_emits_window_stats_once_and_restores() -> None:
    records, ref = _partials(seed=5)
    codec, topics = default_codec(), TopicNames()
    def stage() -> MergeStage:
        r = CollectorRegistry()
        # no wall-clock budget per poll: what one poll merges must not depend on the load
        st = MergeStage(CFG, DriftMetrics(r), StateMetrics(r), DetectionSink(codec, topics, r),
                        codec, topics, slice_s=3600.0)  # fmt: skip
        st.set_reference(ref)
        return st

    a = stage()
    values = [codec.encode("WindowPartial", r.to_record()) for r in records]
    half = len(values) // 2
    for off, v in enumerate(values[:half]):
        a.observe_partial(0, off, v)
    out_a = a.poll(0.0)
    snapshot = [o.value for o in out_a if o.topic == topics.worker_state][-1]
    b = stage()  # the next owner of partials partition 0
    b.on_assign(topics.window_partials, [0], {"merge/0": snapshot}, 1)
    for off, v in enumerate(values):  # replay from the start: the applied half is skipped
        b.observe_partial(0, off, v)
    out_b = b.poll(0.0)

    def starts(out: list) -> list[int]:
        return [codec.decode(o.value).record["window_start_ms"] for o in out
                if o.topic == topics.window_stats]  # fmt: skip

    both = starts(out_a) + starts(out_b)
    assert sorted(both) == [0, 10_000, 20_000, 30_000]
    assert len(set(both)) == len(both)
    counts = [codec.decode(o.value).record["count"] for o in out_a + out_b
              if o.topic == topics.window_stats]  # fmt: skip
    assert counts == [1_000] * 4


def test_late_events_of_a_partition_are_reported_by_its_next_partial() -> None:
    s = SyntheticStream(n_numeric=1, n_categorical=0, rate_per_s=100, seed=9)
    engine = DriftEngine(CFG)
    engine.observe(0, 0, s.batch(0, 1_200))  # 0 .. 12 s: window 0 closes in partition 0
    assert engine.observe(0, 1, s.batch(2_000, 30)) == 30
    engine.observe(0, 2, s.batch(12_000, 1_000))  # to 22 s: window 10 s closes
    drift = [r for r in engine.drain_partials() if not r.is_marker]
    book_late = [DriftMerger(CFG).merge_closed([r], None).stats["late_events"] for r in drift]
    assert book_late == [0, 30]
    assert np.isclose(sum(DriftMerger(CFG).merge_closed([r], None).stats["count"]
                          for r in drift), 2_000)  # fmt: skip


def test_detector_votes_of_partitions_owned_by_different_workers_meet_in_the_merge_stage() -> None:
    """Two workers' engines (partitions 0-1 and 2-3) each see two firings of four
    partitions: neither reaches a majority alone; the merge stage, which sees all four
    partitions' progress and votes, emits one detection — once every partition has
    progressed past the votes (decided in event time), not before."""
    from stream_jobs.detectors.firing import Firing
    from stream_jobs.merge.votes import VOTE_KIND, encode_vote

    codec, topics = default_codec(), TopicNames()
    r = CollectorRegistry()
    stage = MergeStage(CFG, DriftMetrics(r), StateMetrics(r), DetectionSink(codec, topics, r),
                       codec, topics)  # fmt: skip
    records = [rec(p, 0, 10, b"", partitions=4) for p in range(4)]  # progress of 4 partitions
    for p in range(3):
        f = Firing("m", "1", "x", "adwin", p, 1, 1_000 + p, 2.0)
        records.append(PartialRecord("m", "1", VOTE_KIND, f.event_time_ms, f.event_time_ms, p, 4,
                                     1, encode_vote(f)))  # fmt: skip
    records += [rec(p, 10, 10_000, b"", partitions=4) for p in range(3)]
    out = []
    for off, r_ in enumerate(records):
        stage.observe_partial(0, off, codec.encode("WindowPartial", r_.to_record()))
        out += [o for o in stage.poll(0.0) if o.topic == topics.detections]
    assert out == []  # partition 3 has not passed the votes' event time yet
    last = rec(3, 10, 10_000, b"", partitions=4)
    stage.observe_partial(0, len(records), codec.encode("WindowPartial", last.to_record()))
    out += [o for o in stage.poll(0.0) if o.topic == topics.detections]
    (d,) = [codec.decode(o.value).record for o in out]
    assert (d["subject"], d["detector"], d["details"]["partitions"]) == ("x", "adwin", "0,1,2")
    assert d["value"] == 3.0 and d["threshold"] == 3.0  # majority of 4 partitions
