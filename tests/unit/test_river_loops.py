"""The fast detector loops fire where river's own update fires and leave the same state."""

from __future__ import annotations

import numpy as np
import pytest
from river.drift import ADWIN, PageHinkley

from stream_jobs.detectors.river_loops import (
    feed_adwin,
    feed_page_hinkley,
    feed_plain,
    feeder,
)


def _ph() -> PageHinkley:
    return PageHinkley(min_instances=30, delta=0.5, threshold=15.0, mode="both")


def _adwin() -> ADWIN:
    return ADWIN(delta=0.002, clock=1)


def _state(det: object) -> dict:
    skip = ("_helper", "_x_mean")
    out = {k: v for k, v in vars(det).items() if not callable(v) and k not in skip}
    if isinstance(det, PageHinkley):
        out["mean"] = (det._x_mean.n, det._x_mean._mean)
    if isinstance(det, ADWIN):
        out["window"] = (det.width, det.total, det.variance, det.n_detections)
    return out


@pytest.mark.parametrize(("make", "fast"), [(_adwin, feed_adwin), (_ph, feed_page_hinkley)])
def test_same_firings_and_state_as_river(make, fast) -> None:
    rng = np.random.default_rng(7)
    plain, quick = make(), make()
    fired = 0
    for step in range(300):
        shift = (step // 50) % 3 * 2.5  # level changes: both detectors fire and reset
        values = (rng.normal(shift, 1.0, int(rng.integers(0, 40)))).tolist()
        got = fast(quick, values)
        assert got == feed_plain(plain, values)
        assert _state(quick) == _state(plain)
        fired += len(got)
    assert fired >= 3  # the comparison covered detections and the resets after them


def test_feeder_picks_the_fast_loop_only_where_it_applies() -> None:
    assert feeder(_adwin()) is feed_adwin
    assert feeder(_ph()) is feed_page_hinkley
    assert feeder(PageHinkley(mode="up")) is feed_plain
