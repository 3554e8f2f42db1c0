"""Feed a list of values to a river ADWIN or Page–Hinkley detector, as its ``update`` would,
with the per-value method calls taken out of the loop.

The worker feeds ~16 chunk z-scores per column and batch to each detector: ~650 ``update``
calls and ``drift_detected`` reads per 500-event batch, the costliest Python left in the
drift stage. These loops do the same arithmetic in the same order on the detectors' own
state (river 0.26's attributes), so the firings and the state after them are identical to
``for v in values: det.update(v)`` — ``tests/unit/test_river_loops.py`` checks it against
river itself. A detector without those attributes (another river) gets the plain loop.

>>> from river.drift import PageHinkley
>>> a, b = PageHinkley(min_instances=30, delta=0.5, threshold=15.0), PageHinkley(
...     min_instances=30, delta=0.5, threshold=15.0)
>>> values = [0.0] * 40 + [9.0] * 20
>>> feeder(b)(b, values) == feed_plain(a, values), b._sum_increase == a._sum_increase
(True, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Feed = Callable[[Any, list[float]], list[int]]


def feed_plain(det: Any, values: list[float]) -> list[int]:
    """Indices of ``values`` after which ``det`` detected a drift (river's own update)."""
    fired = []
    upd = det.update
    for i, v in enumerate(values):
        upd(v)
        if det.drift_detected:
            fired.append(i)
    return fired


def feed_adwin(det: Any, values: list[float]) -> list[int]:
    """:func:`feed_plain` for ADWIN: its Rust window directly, reset after a detection."""
    fired = []
    drift = det._drift_detected
    update = det._helper.update
    for i, v in enumerate(values):
        if drift:  # river resets on the update after a detection
            det._reset()
            update = det._helper.update
        drift = update(v)
        if drift:
            fired.append(i)
    det._drift_detected = drift
    return fired


def feed_page_hinkley(det: Any, values: list[float]) -> list[int]:
    """:func:`feed_plain` for a two-sided Page–Hinkley, its sums kept in locals."""
    fired = []
    drift = det._drift_detected
    alpha, delta, threshold, min_n = det.alpha, det.delta, det.threshold, det.min_instances
    mean = det._x_mean
    n, m = mean.n, mean._mean
    s_inc, s_dec = det._sum_increase, det._sum_decrease
    min_inc, max_dec = det._min_increase, det._max_decrease
    for i, v in enumerate(values):
        if drift:  # river resets on the update after a detection
            det._reset()
            mean = det._x_mean
            n, m = mean.n, mean._mean
            s_inc, s_dec = det._sum_increase, det._sum_decrease
            min_inc, max_dec = det._min_increase, det._max_decrease
            drift = False
        n += 1.0  # stats.Mean.update with weight 1
        m += (1.0 / n) * (v - m)
        dev = v - m
        s_inc = alpha * s_inc + dev - delta
        s_dec = alpha * s_dec + dev + delta
        if s_inc < min_inc:
            min_inc = s_inc
        if s_dec > max_dec:
            max_dec = s_dec
        if n >= min_n:
            drift = s_inc - min_inc > threshold or max_dec - s_dec > threshold
            if drift:
                fired.append(i)
    mean.n, mean._mean = n, m
    det._sum_increase, det._sum_decrease = s_inc, s_dec
    det._min_increase, det._max_decrease = min_inc, max_dec
    det._drift_detected = drift
    return fired


_ADWIN_STATE = ("_drift_detected", "_helper", "_reset")
_PH_STATE = ("_drift_detected", "_x_mean", "_sum_increase", "_sum_decrease", "_min_increase",
             "_max_decrease", "alpha", "delta", "threshold", "min_instances", "_reset")  # fmt: skip


def feeder(det: Any) -> Feed:
    """The fast loop for ``det`` when it has the state it reads, else :func:`feed_plain`."""
    from river.drift import ADWIN, PageHinkley

    if type(det) is ADWIN and all(hasattr(det, a) for a in _ADWIN_STATE):
        return feed_adwin
    if (
        type(det) is PageHinkley
        and getattr(det, "mode", None) == "both"
        and all(hasattr(det, a) for a in _PH_STATE)
        and all(hasattr(det._x_mean, a) for a in ("n", "_mean"))
    ):
        return feed_page_hinkley
    return feed_plain
