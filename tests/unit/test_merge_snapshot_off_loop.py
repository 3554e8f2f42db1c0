"""The merge stage's snapshots encoded off the event loop: handed out by a later poll, after
the finals they record, restoring to the same finals; a revoke still snapshots at once."""

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


def test_a_snapshot_encoded_off_the_loop_follows_its_finals_and_restores_the_same() -> None:
    records, ref = _partials(seed=5)
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in records]
    half = 3 * len(values) // 4  # some windows final, the last ones not yet
    a = _stage(ref, off_loop=True)
    for off, v in enumerate(values[:half]):
        a.observe_partial(0, off, v)
    first = a.poll(0.0)
    assert _starts(first) and not [o for o in first if o.topic == TOPICS.worker_state]
    a.acknowledge()
    later, snapshot = _poll_until_snapshot(a)
    assert _starts(later) == []  # the finals went out before: the snapshot only records them
    assert a.durable_offset(TOPICS.window_partials, 0) == half - 1

    sync = _stage(ref, off_loop=False)  # the same input, snapshotted on the loop
    for off, v in enumerate(values[:half]):
        sync.observe_partial(0, off, v)
    sync_out = sync.poll(0.0)
    assert _starts(sync_out) == _starts(first)
    (sync_snapshot,) = [o.value for o in sync_out if o.topic == TOPICS.worker_state]
    now = time.time()
    assert MergeBook.from_bytes(snapshot, now)[0].to_bytes() == \
        MergeBook.from_bytes(sync_snapshot, now)[0].to_bytes()

    b = _stage(ref, off_loop=True)  # the next owner: restores, replays, emits the rest once
    b.on_assign(TOPICS.window_partials, [0], {"merge/0": snapshot}, 1)
    for off, v in enumerate(values):
        b.observe_partial(0, off, v)
    both = _starts(first) + _starts(b.poll(0.0))
    assert sorted(both) == [0, 10_000, 20_000, 30_000]


def test_a_revoke_snapshots_at_once_superseding_an_encoding_under_way() -> None:
    records, ref = _partials(seed=6)
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in records]
    st = _stage(ref, off_loop=True)
    for off, v in enumerate(values):
        st.observe_partial(0, off, v)
    st.poll(0.0)  # finals out, an encoding started
    assert 0 in st._encoding
    out = st.on_revoke(TOPICS.window_partials, [0])
    snaps = [o for o in out if o.topic == TOPICS.worker_state]
    assert len(snaps) == 1 and 0 not in st._encoding
    st.acknowledge()
    assert st.durable_offset(TOPICS.window_partials, 0) == len(values) - 1
