"""Reading predictions and labels in step: which label partitions wait (pure, no Kafka)."""

from __future__ import annotations

from stream_jobs.join.in_step import InStep


def test_each_partition_pair_is_judged_on_its_own():
    s = InStep(max_idle_s=5.0, max_wait_s=60.0)
    s.predictions_at(0, 10_000, offset=3, highwater=50, now_s=0.0)
    s.predictions_at(1, 1_000, offset=3, highwater=50, now_s=0.0)
    s.labels_at(0, 9_000)
    s.labels_at(1, 9_000)
    assert s.should_pause(0, 1.0) is False
    assert s.should_pause(1, 1.0) is True


def test_an_empty_prediction_partition_releases_its_labels_after_the_idle_time():
    s = InStep(max_idle_s=5.0, max_wait_s=60.0)
    s.labels_at(2, 9_000)
    assert s.should_pause(2, 100.0) is True  # idle time counts from the first look
    assert s.should_pause(2, 104.0) is True
    assert s.should_pause(2, 105.5) is False


def test_a_caught_up_prediction_partition_never_holds_labels():
    s = InStep()
    s.predictions_at(0, 1_000, offset=None, highwater=None, now_s=0.0)
    s.predictions_at(0, None, offset=41, highwater=None, now_s=0.0)  # bad record, read
    s.prediction_end(0, 42)
    s.labels_at(0, 99_000)
    assert s.should_pause(0, 0.5) is False


def test_watermarks_do_not_go_back_and_forget_clears_a_rebalanced_partition():
    s = InStep()
    s.predictions_at(0, 5_000, offset=1, highwater=9, now_s=0.0)
    s.predictions_at(0, 1_000, offset=2, highwater=9, now_s=0.0)  # an older batch
    s.labels_at(0, 4_000)
    s.labels_at(0, 2_000)
    assert s.should_pause(0, 0.0) is False
    s.labels_at(0, 6_000)
    assert s.decide(0.0) == ({0}, set())
    s.forget({0})
    assert s.paused == set() and s.should_pause(0, 0.0) is False


def test_a_consumer_positioned_at_the_end_counts_as_caught_up():
    s = InStep(max_wait_s=60.0)
    s.labels_at(0, 9_000)  # a restart: predictions were all read by the previous life
    s.prediction_end(0, 120)
    assert s.should_pause(0, 0.0) is True
    s.prediction_resumed_at(0, 120)
    assert s.should_pause(0, 0.0) is False


def test_idle_time_counts_from_when_the_prediction_partition_became_readable():
    s = InStep(max_idle_s=5.0, max_wait_s=60.0)
    s.labels_at(2, 9_000)
    assert s.should_pause(2, 100.0) is True
    s.prediction_active_since(2, 103.0)  # its state was being restored until then
    assert s.should_pause(2, 107.0) is True  # 7 s since the first look, 4 s readable
    assert s.should_pause(2, 108.5) is False
    s.prediction_active_since(2, None)  # unknown: nothing changes
    assert s.should_pause(2, 108.5) is False
