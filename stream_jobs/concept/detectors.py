"""river drift detectors for the error stream, by name, with measured defaults.

Classification feeds a 0/1 error per joined label to one of river's *binary* detectors
(``river.drift.binary``: DDM, EDDM, HDDMA, HDDMW, FHDDM); regression feeds the absolute
error to ADWIN. Defaults below come from ``tests/bench/bench_labels.py`` (stationary
Bernoulli error streams, many seeds, per-partition sample sizes): river's own defaults
are kept where they were quiet, tightened where they were not —

* ``eddm``: river's ``alpha=0.95`` alarmed on most stationary streams; ``alpha=0.9,
  beta=0.85`` (drift when the mean distance between errors falls under 85 % of its best)
  with a longer warm-up is much quieter;
* ``ddm``: ``drift_threshold=3`` (river default) with ``warm_start=100``;
* ``hddm_a``/``hddm_w``: one-sided (degradations only) with ``drift_confidence=1e-4``.

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
    "eddm": {"warm_start": 100, "alpha": 0.9, "beta": 0.85},
    "hddm_a": {"drift_confidence": 1e-4, "warning_confidence": 1e-3, "two_sided_test": False},
    "hddm_w": {
        "drift_confidence": 1e-4, "warning_confidence": 1e-3, "lambda_val": 0.05,
        "two_sided_test": False,
    },
    "fhddm": {"sliding_window_size": 100, "confidence_level": 1e-6},
    "adwin": {"delta": 0.002, "clock": 32, "min_window_length": 5, "grace_period": 100},
}

_CLASSES = {
    "ddm": DDM, "eddm": EDDM, "hddm_a": HDDMA, "hddm_w": HDDMW, "fhddm": FHDDM, "adwin": ADWIN,
}


def make_detector(name: str, params: dict[str, Any] | None = None) -> Any:
    """A fresh river detector: ``DEFAULTS[name]`` overridden by ``params``."""
    if name not in _CLASSES:
        raise ValueError(f"unknown detector {name!r}; choose from {sorted(_CLASSES)}")
    kwargs = {**DEFAULTS[name], **(params or {})}
    return _CLASSES[name](**kwargs)
