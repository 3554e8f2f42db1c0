"""Stage 1 of drift across a move: what a revoke snapshots, an assignment restores, and the
offset the worker may commit up to."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.drift import DriftConfig, DriftEngine
from stream_jobs.drift.merger import DriftMerger
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.drift.synthetic import SyntheticStream
from stream_jobs.drift_stage import DriftStage
from stream_jobs.state.changelog import snapshot_offset
from stream_jobs.state.metrics import StateMetrics

TOPICS = TopicNames()
CFG = DriftConfig(window_ms=10_000, allowed_lateness_ms=1_000, detectors=False)


def stage() -> DriftStage:
    r = CollectorRegistry()
    return DriftStage(DriftEngine(CFG), DriftMetrics(r), StateMetrics(r), default_codec(), TOPICS)


def test_a_partition_moves_with_its_state_and_its_commit_point() -> None:
    s = SyntheticStream(n_numeric=1, n_categorical=0, rate_per_s=100, seed=2)
    old = stage()
    old.on_assign(TOPICS.predictions, [0, 1], {}, 2)
    old.observe(0, 0, s.batch(0, 500))
    old.observe(0, 1, s.batch(5_000, 300))  # 0 .. 8 s: window 0 still open
    assert old.durable_offset(TOPICS.predictions, 0) == -1  # nothing stored yet
    out = old.on_revoke(TOPICS.predictions, [0, 1])
    (snap,) = [o for o in out if o.topic == TOPICS.worker_state]  # partition 1 had nothing
    assert snap.key == b"drift/0" and snapshot_offset(snap.value) == 1
    old.acknowledge()
    assert old.durable_offset(TOPICS.predictions, 0) == 1

    new = stage()
    new.on_assign(TOPICS.predictions, [0], {"drift/0": snap.value}, 2)
    assert new.durable_offset(TOPICS.predictions, 0) == 1
    new.observe(0, 1, s.batch(5_000, 300))  # replayed: skipped
    new.observe(0, 2, s.batch(8_000, 400))  # to 12 s: window 0 closes here
    (partial,) = [r for r in new.engine.drain_partials() if not r.is_marker]
    assert DriftMerger(CFG).merge_closed([partial], None).stats["count"] == 1_000
    assert partial.partitions == 2

    new.on_assign(TOPICS.predictions, [0], {"drift/0": b""}, 2)  # nothing stored: clean
    assert new.engine.partitions == [] and new.durable_offset(TOPICS.predictions, 0) == -1


def test_a_refused_snapshot_keeps_the_commit_point_and_is_taken_again() -> None:
    s = SyntheticStream(n_numeric=1, n_categorical=0, rate_per_s=100, seed=3)
    st = stage()
    st.on_assign(TOPICS.predictions, [0], {}, 1)
    st.observe(0, 0, s.batch(0, 500))
    assert [o.key for o in st.poll(0.0) if o.topic == TOPICS.worker_state] == [b"drift/0"]
    st.snapshot_refused("drift/0")  # the broker would not store it
    st.acknowledge()
    assert st.durable_offset(TOPICS.predictions, 0) == -1
    again = [o for o in st.poll(1.0) if o.topic == TOPICS.worker_state]  # idle: retaken
    assert [o.key for o in again] == [b"drift/0"]
    st.acknowledge()
    assert st.durable_offset(TOPICS.predictions, 0) == 0


def test_snapshots_are_sliced_over_polls_and_each_wanted_one_comes() -> None:
    s = SyntheticStream(n_numeric=1, n_categorical=0, rate_per_s=100, seed=4)
    r = CollectorRegistry()
    st = DriftStage(DriftEngine(CFG), DriftMetrics(r), StateMetrics(r), default_codec(), TOPICS,
                    slice_s=0.0)  # fmt: skip
    st.on_assign(TOPICS.predictions, [0, 1, 2], {}, 3)
    for p in (0, 1, 2):
        st.observe(p, 0, s.batch(0, 300))
        st.observe(p, 1, s.batch(12_000, 300))  # window 0 closes in every partition
    keys = []
    for t in range(3):  # one snapshot per poll with no time to spare, oldest want first
        snaps = [o.key for o in st.poll(float(t)) if o.topic == TOPICS.worker_state]
        assert len(snaps) == 1
        keys += snaps
        st.acknowledge()
    assert keys == [b"drift/0", b"drift/1", b"drift/2"]
    assert [st.durable_offset(TOPICS.predictions, p) for p in (0, 1, 2)] == [1, 1, 1]
    for p in (0, 1, 2):
        st.observe(p, 2, s.batch(24_000, 300))
    out = st.on_revoke(TOPICS.predictions, [0, 1, 2])  # a revoke: all at once
    assert sorted(o.key for o in out if o.topic == TOPICS.worker_state) == [
        b"drift/0", b"drift/1", b"drift/2"]
