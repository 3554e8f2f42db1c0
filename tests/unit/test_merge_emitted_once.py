"""Each window is emitted once as final, whoever owned the merge partition before: the new
owner of a partials partition restores a snapshot older than the finals its previous owner
emitted (SIGKILL between the finals and the snapshot recording them, a revoke flush out of
time, a snapshot refused as too large), reads window-stats from the offsets the snapshot
carries and never emits those windows again (rule: :mod:`stream_jobs.merge.stage`)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.kafka.read import Record
from schemas.topics import TopicNames
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink
from stream_jobs.state.metrics import StateMetrics
from tests.unit.test_merge_stage import CFG, _partials, rec

CODEC, TOPICS = default_codec(), TopicNames()


class OutputTopic:
    """Window-stats, one partition: what the broker stored, and reads of it from offsets."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.reads: list[dict[int, int]] = []

    def store(self, stage: MergeStage, out: list, acknowledged: bool = True) -> None:
        for o in out:
            if o.topic == TOPICS.window_stats:
                self.values.append(o.value)
                if acknowledged:
                    stage.delivered(0, len(self.values) - 1)

    def read(self, since: Mapping[int, int]) -> list[Record]:
        self.reads.append(dict(since))
        start = max(since.get(0, 0), 0)
        return [Record(0, off, None, v) for off, v in enumerate(self.values) if off >= start]

    def starts(self) -> list[int]:
        return [CODEC.decode(v).record["window_start_ms"] for v in self.values]


def _stage(ref: dict, off_loop: bool, topic: OutputTopic) -> MergeStage:
    r = CollectorRegistry()
    st = MergeStage(CFG, DriftMetrics(r), StateMetrics(r), DetectionSink(CODEC, TOPICS, r),
                    CODEC, TOPICS, slice_s=3600.0, snapshot_off_loop=off_loop,
                    read_outputs=topic.read)  # fmt: skip
    st.set_reference(ref)
    return st


def _poll_stored(st: MergeStage, topic: OutputTopic) -> bytes:
    """Poll (sending every output, acknowledged) until a snapshot is handed out: stored."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = st.poll(0.0)
        topic.store(st, out)
        st.acknowledge()
        snaps = [o.value for o in out if o.topic == TOPICS.worker_state]
        if snaps:
            return snaps[-1]
        time.sleep(0.01)
    raise AssertionError("no snapshot handed out")


def _feed(st: MergeStage, values: list[bytes], start: int = 0) -> None:
    """The partials ``values`` at partials-topic offsets ``start`` onwards."""
    for off, v in enumerate(values, start):
        st.observe_partial(0, off, v)


def _two_halves(st: MergeStage, values: list[bytes], topic: OutputTopic) -> bytes:
    """The first half of ``values``, a stored snapshot, then the second half; returns the
    snapshot (older than the finals the second half makes)."""
    half = len(values) // 2
    _feed(st, values[:half])
    stored = _poll_stored(st, topic)
    _feed(st, values[half:], half)
    return stored


def _take_over(st: MergeStage, snapshot: bytes, values: list[bytes]) -> None:
    """The next owner: restore ``snapshot``, read the output, replay every partial (those
    at or below the snapshot's offset are skipped)."""
    st.on_assign(TOPICS.window_partials, [0], {"merge/0": snapshot}, 1)
    st.after_restore(TOPICS.window_partials, [0])
    _feed(st, values)


@pytest.mark.parametrize("off_loop", [False, True])
def test_finals_emitted_after_the_restored_snapshot_are_not_emitted_again(
    off_loop: bool,
) -> None:
    records, ref = _partials(seed=5)
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in records]
    topic = OutputTopic()
    a = _stage(ref, off_loop, topic)
    half = 3 * len(values) // 4
    _feed(a, values[:half])
    _poll_stored(a, topic)
    first = len(topic.values)
    assert first
    a.observe_partial(0, half, values[half])
    stored = _poll_stored(a, topic)  # the last snapshot stored, captured past ``first``
    before = len(topic.values)
    _feed(a, values[half + 1 :], half + 1)
    # SIGKILL: the finals reached the broker, the snapshot recording them never did
    topic.store(a, a.poll(0.0), acknowledged=False)
    assert len(topic.values) > before
    assert MergeBook.from_bytes(stored, 0.0)[0].last_offset == half

    b = _stage(ref, off_loop, topic)
    _take_over(b, stored, values)
    _poll_stored(b, topic)
    assert sorted(topic.starts()) == [0, 10_000, 20_000, 30_000]  # each once
    if not off_loop:  # the read starts past the finals acknowledged before the snapshot
        assert topic.reads == [{0: first}]


def test_a_revoke_snapshot_not_stored_leaves_the_new_owner_an_older_one() -> None:
    """The revoking owner sends its last finals, its revoke snapshot is refused (too large):
    the new owner restores the snapshot before and still emits nothing twice."""
    records, ref = _partials(seed=6)
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in records]
    topic = OutputTopic()
    a = _stage(ref, False, topic)
    older = _two_halves(a, values, topic)
    half = len(values) // 2
    out = a.on_revoke(TOPICS.window_partials, [0])
    topic.store(a, out)  # the finals are stored; the snapshot after them is refused
    a.snapshot_refused("merge/0")
    assert a.durable_offset(TOPICS.window_partials, 0) == half - 1

    b = _stage(ref, False, topic)
    _take_over(b, older, values)
    _poll_stored(b, topic)
    assert sorted(topic.starts()) == [0, 10_000, 20_000, 30_000]


def test_a_window_emitted_before_becomes_final_once_and_is_taken_as_emitted() -> None:
    book = MergeBook(wait_s=30)
    book.add(rec(0, 0, 10))
    assert book.mark_emitted(("m", "1", "drift", 0))  # open here, emitted by the old owner
    assert not book.mark_emitted(("m", "1", "drift", 0))
    assert book.mark_emitted(("m", "1", "drift", 10))  # no partial here yet
    book = MergeBook.from_bytes(book.to_bytes(), 0.0)[0]  # noted in the snapshot too
    for r in (rec(1, 0, 10), rec(2, 0, 10), rec(0, 10, 20), rec(1, 10, 20), rec(2, 10, 20)):
        assert book.add(r) == "applied"  # collected as any window's: the state needs them
    got = book.ready(0.0)
    assert [(k[3], len(parts), complete) for k, parts, complete in got] == [
        (0, 3, True), (10, 3, True)]  # fmt: skip
    assert [book.take_emitted(k) for k, _, _ in got] == [True, True]
    assert not book.take_emitted(got[0][0]) and not book.emitted
    assert book.add(rec(0, 0, 10)) == "duplicate" and book.ready(1.0) == []
    assert not book.mark_emitted(("m", "1", "drift", 0))  # final here already


def test_windows_emitted_before_still_move_the_ranking_baseline_as_one_owners_did() -> None:
    """Performance windows the old owner emitted after its snapshot are merged again on the
    new owner for their state only: its ranking baselines end where a single owner's do,
    and nothing is emitted twice."""
    from stream_jobs.drift.config import DriftConfig
    from stream_jobs.performance.merger import PerformanceMerger
    from tests.unit.test_join_engine import LT, PT, labels, preds
    from tests.unit.test_performance_partials import CFG as LCFG
    from tests.unit.test_performance_partials import W, engine

    e = engine()
    e.input_partitions = 1
    rng = np.random.default_rng(3)
    for k in range(6):  # six windows, each with a slice table to feed the baseline
        ids = [f"w{k}-{i}" for i in range(40)]
        times = k * W + 1_000 + np.arange(40) * 100
        seg = {"region": rng.choice(["eu", "us"], 40).tolist()}
        e.observe_predictions(PT, 0, k, preds(ids, times, rng.random(40), segments=seg))
        e.observe_labels(LT, 0, k, labels(ids, times + 2_000, rng.choice(["0", "1"], 40)))
    # both streams of the partition run past every window: they all close
    e.observe_predictions(PT, 0, 99, preds(["end"], [20 * W], [0.5]))
    e.observe_labels(LT, 0, 99, labels(["end"], [20 * W], ["1"]))
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in e.drain_partials()]

    def stage(topic: OutputTopic) -> tuple[MergeStage, PerformanceMerger]:
        reg = CollectorRegistry()
        perf = PerformanceMerger(LCFG)
        st = MergeStage(DriftConfig(), DriftMetrics(reg), StateMetrics(reg),
                        DetectionSink(CODEC, TOPICS, reg), CODEC, TOPICS, mergers=[perf],
                        slice_s=3600.0, read_outputs=topic.read)  # fmt: skip
        return st, perf

    one, perf_one = stage(OutputTopic())
    _feed(one, values)
    one.poll(0.0)
    want = perf_one.baselines[("m", "1")].to_bytes()

    topic = OutputTopic()
    a, _ = stage(topic)
    stored = _two_halves(a, values, topic)
    topic.store(a, a.poll(0.0))  # SIGKILL before the snapshot recording these finals
    emitted = len(topic.values)
    b, perf_b = stage(topic)
    _take_over(b, stored, values)
    topic.store(b, b.poll(0.0))
    assert len(topic.values) == emitted  # nothing twice
    assert sorted(topic.starts()) == [k * W for k in range(6)]
    assert perf_b.baselines[("m", "1")].to_bytes() == want
