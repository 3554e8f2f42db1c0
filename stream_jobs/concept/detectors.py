"""river drift detectors for the error stream, by name, with measured defaults.

**Default for classifiers: the pooled CUSUM** (:mod:`stream_jobs.concept.pooled`,
``labels.concept_scope: pooled``). Per-partition detectors see 1/P of the errors and a
quorum needs several of them: on 4 partitions they fire 5-6x later than one detector on
the whole stream. Pooling the partitions' errors in event-time buckets and running one
Bernoulli CUSUM on them is as quick as river's best detector run directly on the whole
stream, and quieter. Measured by ``concept_sweep`` in ``tests/bench/bench_detection.py``
(4 partitions, 60 ms of event time per row, 1 s buckets, 5 seeds; false alarms per 10k
stationary rows at error rates 0.05 / 0.15 / 0.30 — 100k rows each, and 1M rows per rate
for the CUSUM thresholds in brackets; median delay in rows after a jump
0.10→0.21 / 0.20→0.40 / 0.05→0.30 / 0.10→0.15):

==============================  ===================================  =======================
detector                        false alarms / 10k                   delay (rows)
==============================  ===================================  =======================
pooled CUSUM threshold 8        0 / 0 / 0      [0.01 / 0.03 / 0.01]  166 / 50 / 50 / 833
pooled CUSUM threshold 10       0 / 0 / 0      [0.00 / 0.00 / 0.01]  216 / 66 / 66 / 1983
pooled CUSUM threshold 12       0 / 0 / 0                            233 / 83 / 66 / 2033
FHDDM-200 per partition, 2/4    0 / 0 / 0.10                         1299 / 438 / 469 / —
river ADWIN, whole stream       0 / 0.10 / 0                         271 / 111 / 79 / 1135
==============================  ===================================  =======================

(threshold 6: 0.13-0.36 false alarms per 10k.) A longer run settled the default: one
Bernoulli stream per cell, 1 s buckets, 2M stationary rows per rate at 60 ms and at 400 ms
of event time per row (the second: 2.5 rows a bucket, as a 150-rows-a-minute model sends),
median delay over 7 seeds (one stream: ADWIN's 271 compares with the first column):

============  =========================  =========================  ====================
pooled CUSUM  false alarms/10k, 60 ms    ... at 400 ms per row      delay (rows)
============  =========================  =========================  ====================
threshold 10  0.005 / 0.010 / 0          0.005 / 0.015 / 0.010      183 / 133 / 83 / 883
threshold 12  0 / 0 / 0                  0 / 0 / 0                  216 / 150 / 100 / 916
threshold 14  0 / 0 / 0                  0 / 0 / 0                  300 / 150 / 100 / 1716
============  =========================  =========================  ====================

At threshold 10 a two-day backtest of a stable model (432k rows, error rate 0.28, 150 rows
a minute) raised two ``concept_drift`` alarms — the test run offline on the same error
stream fires at the same two places: 37- and 42-row stretches at 0.62-0.65 errors, chance
excursions — and neither at 11 or 12. So the default threshold is **12**: no false alarm in
12M stationary rows (1 per ~1.3M at 10, 1 per ~4M at 11), and an error rate doubling from
10 % is caught in ~220 rows. The price, through the whole pipeline
(``make bench BENCH=bench_detection``, ``concept_vs_river``, 5 seeds of the 10 % → 21 %
stream against river's quickest detector without a false alarm on the same errors):
133-416 rows, 0.87-1.96x river's best (one seed's stream has an early excursion that
threshold 10 takes at 100 rows, 12 at 200); at threshold 10 0.83-0.98x, at 11 up to 1.79x.
It is tuned to a doubling (``concept_ratio: 2``): a one-and-a-half-fold rise (0.10→0.15)
takes ~900-2,000 rows (``concept_long_sweep`` in ``tests/bench/bench_detection.py``
reruns the second table).
Regression models (absolute errors) keep per-partition ADWIN monitors.

The per-partition detectors (``concept_scope: partition`` or ``model``):

Classification feeds a 0/1 error per joined label to one of river's *binary* detectors
(``river.drift.binary``: DDM, EDDM, HDDMA, HDDMW, FHDDM); regression feeds the absolute
error to ADWIN. Defaults come from measurements (``detector_sweep`` in
``tests/bench/bench_labels.py`` reruns them) on Bernoulli error streams of one
partition: false alarms per 10k stationary samples at error rates 0.05 / 0.15 / 0.30
and the median delay (samples) after a jump 0.1→0.2 / 0.2→0.4 / 0.05→0.3, 10-20 seeds;
only *rises* count (see :mod:`stream_jobs.concept.monitor`):

=================================  ===================  ====================  =========
detector (parameters)              false alarms / 10k   delay (samples)       µs/update
=================================  ===================  ====================  =========
ddm (river defaults)               0.65 / 0.10 / 0.00   322 / 267 / 81        1.5
ddm drift_threshold=4              0.05 / 0.00 / 0.00   628 / 510 / 138       1.5
eddm (river defaults)              ≈4.5 per 2k at 0.15  52 (after 0.15→0.35)  0.9
eddm alpha=0.9 beta=0.85           1.30 / 0.95 / 0.15   248 / 360 / 197       0.9
eddm alpha=0.8 beta=0.7            0.15 / 0.10 / 0.00   1505 / 1514 / 220     0.9
hddm_a drift_confidence=1e-3       0.00 / 0.00 / 0.15   475 / 131 / 70        4-16
hddm_w drift_confidence=1e-3       0.00 / 0.05 / 3.65   1595 / 53 / 111       4-14
fhddm (river defaults, window 100) 0.00 / 0.05 / 1.00   1340 / 75 / 81        1.6
fhddm sliding_window_size=200      0.00 / 0.00 / 0.35   403 / 114 / 123       1.6
=================================  ===================  ====================  =========

So the default is **FHDDM with a 200-sample window**: as quiet as HDDM_A, about as quick,
5-10x cheaper per label (HDDM_A's 4-16 µs would bound the join at 60-250k labels/s). EDDM
keeps ``alpha=0.8, beta=0.7`` (quiet but slow); DDM keeps river's thresholds with a
100-sample warm-up. Votes of several partitions (:mod:`stream_jobs.concept.quorum`)
then remove most of what per-partition false alarms remain.

>>> d = make_detector("ddm")
>>> type(d).__name__, d.warm_start
('DDM', 100)
>>> make_detector("adwin", {"delta": 0.001}).delta
0.001
"""

from __future__ import annotations

from typing import Any

from river.drift import ADWIN
from river.drift.binary import DDM, EDDM, FHDDM, HDDMA, HDDMW

BINARY = ("ddm", "eddm", "hddm_a", "hddm_w", "fhddm")
REAL = ("adwin",)

DEFAULTS: dict[str, dict[str, Any]] = {
    "ddm": {"warm_start": 100, "warning_threshold": 2.0, "drift_threshold": 3.0},
    "eddm": {"warm_start": 100, "alpha": 0.8, "beta": 0.7},
    "hddm_a": {"drift_confidence": 1e-3, "warning_confidence": 5e-3, "two_sided_test": False},
    "hddm_w": {
        "drift_confidence": 1e-4,
        "warning_confidence": 1e-3,
        "lambda_val": 0.05,
        "two_sided_test": False,
    },
    "fhddm": {"sliding_window_size": 200, "confidence_level": 1e-6},
    "adwin": {"delta": 0.002, "clock": 32, "min_window_length": 5, "grace_period": 100},
}

_CLASSES = {
    "ddm": DDM,
    "eddm": EDDM,
    "hddm_a": HDDMA,
    "hddm_w": HDDMW,
    "fhddm": FHDDM,
    "adwin": ADWIN,
}


def make_detector(name: str, params: dict[str, Any] | None = None) -> Any:
    """A fresh river detector: ``DEFAULTS[name]`` overridden by ``params``."""
    if name not in _CLASSES:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(_CLASSES)}")
    kwargs = {**DEFAULTS[name], **(params or {})}
    return _CLASSES[name](**kwargs)
