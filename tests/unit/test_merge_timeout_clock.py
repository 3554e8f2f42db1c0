"""The merge stage's timeouts run on a clock that stands still in a backlog.

A window some partition has passed is final ``idle_partition_s`` later without the
partitions still missing. On the wall clock, a merge stage reading a burst of partials (a
replay closes thousands of windows within a second; the loop merges while it reads) took a
partition whose partials were still unread for silent: a two-day backtest cut 82 drift
windows that way. The timeout clock (:meth:`MergeStage.timeout_clock`) is the send time of
the newest record read plus the time since it was read."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.drift import DriftConfig
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink
from stream_jobs.state.metrics import StateMetrics
from tests.unit.test_closing_step_progress import partials

CODEC, TOPICS = default_codec(), TopicNames()


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def stage(clock: Clock) -> MergeStage:
    r = CollectorRegistry()
    cfg = DriftConfig(window_ms=10_000, allowed_lateness_ms=1_000, detectors=False,
                      idle_partition_s=30)  # fmt: skip
    return MergeStage(cfg, DriftMetrics(r), StateMetrics(r), DetectionSink(CODEC, TOPICS, r),
                      CODEC, TOPICS, slice_s=3600.0, clock=clock)  # fmt: skip


def finals(st: MergeStage, now_s: float) -> list[dict]:
    out = [o for o in st.poll(now_s) if o.topic == TOPICS.window_stats]
    return [CODEC.decode(o.value).record for o in out]


def test_a_partition_further_down_a_backlog_is_not_cut() -> None:
    recs = partials(2)  # partition 0's 8 partials, then partition 1's: one burst
    values = [CODEC.encode("WindowPartial", r.to_record()) for r in recs]
    clock = Clock(1_000.0)
    st = stage(clock)
    got = []
    for off, v in enumerate(values):  # read over 80 s of wall time, all sent at 1,000
        clock.t = 1_000.0 + 5 * off
        st.observe_partial(0, off, v, sent_s=1_000.0)
        got += finals(st, clock.t + 2.0)
    assert len(got) == 8
    assert [w["count"] for w in got] == [200] * 8  # each window: both partitions


def test_a_silent_partition_is_cut_once_others_sent_for_wait_s() -> None:
    recs = [r for r in partials(2) if r.partition == 0]  # partition 1 never reports
    clock = Clock(1_000.0)
    st = stage(clock)
    for off, r in enumerate(recs):
        st.observe_partial(0, off, CODEC.encode("WindowPartial", r.to_record()), 1_000.0)
    assert finals(st, 1_000.0) == []
    clock.t = 1_020.0  # more partials of partition 0, sent 20 s later: not yet
    st.observe_partial(0, 100, CODEC.encode("WindowPartial", recs[-1].to_record()), 1_020.0)
    assert finals(st, 1_020.0) == []
    assert st.timeout_clock(0, 1_025.0) == 1_025.0  # caught up: the wall clock
    got = finals(st, 1_031.0)  # 31 s: cut without partition 1
    assert len(got) == 8 and all(w["count"] == 100 for w in got)


def test_nothing_read_for_wait_s_is_a_timeout_too() -> None:
    recs = [r for r in partials(2) if r.partition == 0]
    clock = Clock(5_000.0)
    st = stage(clock)
    for off, r in enumerate(recs):  # a backlog sent long ago, read now
        st.observe_partial(0, off, CODEC.encode("WindowPartial", r.to_record()), 1_000.0)
    assert finals(st, 5_000.0) == []
    assert finals(st, 5_029.0) == []
    assert len(finals(st, 5_031.0)) == 8
