"""The merge stage's merges and snapshots off the event loop: handed out by later polls, in
order, finals before the snapshot that records them, the same finals and state as on the
loop; a revoke waits for the merges under way and snapshots at once."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink
from stream_jobs.state.metrics import StateMetrics
from tests.unit.test_merge_stage import CFG, _partials

CODEC, TOPICS = default_codec(), TopicNames()


def _stage(ref: dict, off_loop: bool) -> MergeStage:
    r = CollectorRegistry()
    # no wall-clock budget per poll: what one poll merges must not depend on the load
    st = MergeStage(CFG, DriftMetrics(r), StateMetrics(r), DetectionSink(CODEC, TOPICS, r),
                    CODEC, TOPICS, slice_s=3600.0, snapshot_off_loop=off_loop)  # fmt: skip
    st.set_reference(ref)
    return st


def _poll_until_snapshot(st: MergeStage, timeout_s: float = 30.0) -> tuple[list, bytes]:
    polled: list = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = st.poll(0.0)
        st.acknowledge()
        polled += out
        snaps = [o.value for o in out if o.topic == TOPICS.worker_state]
        if snaps:
            return polled, snaps[-1]
        time.sleep(0.01)
    raise AssertionError("no snapshot handed out")


def _starts(out: list) -> list[int]:
    return [CODEC.decode(o.value).record["window_start_ms"] for o in out
            if o.topic == TOPICS.window_stats]  # fmt: skip


def test_off_the_loop_the_finals_come_first_then_the_same_snapshot_as_on_the_loop() -> None:
    records, ref = _partials(seed=5)
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in records]
    half = 3 * len(values) // 4  # some windows final, the last ones not yet
    a = _stage(ref, off_loop=True)
    for off, v in enumerate(values[:half]):
        a.observe_partial(0, off, v)
    polled, snapshot = _poll_until_snapshot(a)
    first_snap = next(i for i, o in enumerate(polled) if o.topic == TOPICS.worker_state)
    assert _starts(polled) and _starts(polled[first_snap:]) == []  # finals, then the snapshot
    assert a.durable_offset(TOPICS.window_partials, 0) == half - 1

    sync = _stage(ref, off_loop=False)  # the same input, merged and snapshotted on the loop
    for off, v in enumerate(values[:half]):
        sync.observe_partial(0, off, v)
    sync_out = sync.poll(0.0)
    assert _starts(sync_out) == _starts(polled)
    assert [o.value for o in sync_out if o.topic == TOPICS.window_stats] == \
        [o.value for o in polled if o.topic == TOPICS.window_stats]
    (sync_snapshot,) = [o.value for o in sync_out if o.topic == TOPICS.worker_state]
    now = time.time()
    assert MergeBook.from_bytes(snapshot, now)[0].to_bytes() == \
        MergeBook.from_bytes(sync_snapshot, now)[0].to_bytes()

    b = _stage(ref, off_loop=True)  # the next owner: restores, replays, emits the rest once
    b.on_assign(TOPICS.window_partials, [0], {"merge/0": snapshot}, 1)
    for off, v in enumerate(values):
        b.observe_partial(0, off, v)
    rest, _ = _poll_until_snapshot(b)
    both = _starts(polled) + _starts(rest)
    assert sorted(both) == [0, 10_000, 20_000, 30_000]


def test_a_revoke_waits_for_the_merges_under_way_and_snapshots_at_once() -> None:
    records, ref = _partials(seed=6)
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in records]
    st = _stage(ref, off_loop=True)
    for off, v in enumerate(values):
        st.observe_partial(0, off, v)
    assert [o for o in st.poll(0.0) if o.topic == TOPICS.window_stats] == []  # on the thread
    out = st.on_revoke(TOPICS.window_partials, [0])  # (its wall clock also ends the last)
    starts = _starts(out)
    assert {0, 10_000, 20_000, 30_000} <= set(starts) and len(set(starts)) == len(starts)
    assert [o.topic for o in out][-1] == TOPICS.worker_state  # after the finals it records
    assert sum(o.topic == TOPICS.worker_state for o in out) == 1
    st.acknowledge()
    assert st.durable_offset(TOPICS.window_partials, 0) == len(values) - 1
