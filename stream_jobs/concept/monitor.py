"""One partition's error-stream monitor: a river detector plus a degradation check.

Each joined label gives an error (0/1 misclassification, or the absolute error for
regression) stamped with its prediction's event time. The monitor feeds them, in the
order they joined, to its detector. When the detector fires it compares the error over
the last ``recent`` samples (*after*) with the error since the previous alarm excluding
those (*before*): only a rise (``after > before + min_increase``) becomes a
:class:`Fire`; a two-sided detector firing on an improvement is ignored. Either way the
baseline restarts from the recent samples, which describe the new concept.

The state (river detector included) pickles: it is the monitor's own state, kept in the
join store next to the partition's applied offset so that a restart resumes it exactly.

>>> import numpy as np
>>> m = PartitionMonitor("hddm_a", recent=200)
>>> rng = np.random.default_rng(1)
>>> errors = np.concatenate([rng.random(3000) < 0.1, rng.random(3000) < 0.4])
>>> fires = m.update(errors.astype(float), np.arange(6000))
>>> len(fires) >= 1, 3000 <= fires[0].event_time_ms < 3300
(True, True)
>>> round(fires[0].before, 2) <= 0.11 < fires[0].after
True
"""

from __future__ import annotations

import pickle
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream_jobs.concept.detectors import make_detector


@dataclass(frozen=True)
class Fire:
    event_time_ms: int
    before: float
    after: float
    n_before: int
    n_after: int


class PartitionMonitor:
    def __init__(
        self,
        detector: str = "ddm",
        params: dict[str, Any] | None = None,
        *,
        recent: int = 100,
        min_increase: float = 0.0,
    ) -> None:
        self.detector_name = detector
        self.detector = make_detector(detector, params)
        self.recent: deque[float] = deque(maxlen=recent)
        self.recent_sum = 0.0
        self.base_n = 0  # samples since the last alarm, recent ones included
        self.base_sum = 0.0
        self.min_increase = min_increase
        self.seen = 0
        self.alarms = 0  # every detector alarm, improvements included

    def update(self, errors: np.ndarray, event_time_ms: np.ndarray) -> list[Fire]:
        det = self.detector
        rec = self.recent
        fires: list[Fire] = []
        binary = self.detector_name != "adwin"
        invert = self.detector_name == "fhddm"  # FHDDM watches the rate of correct (1) rows
        for x, t in zip(errors.tolist(), event_time_ms.tolist(), strict=True):
            if len(rec) == rec.maxlen:
                self.recent_sum -= rec[0]
            rec.append(x)
            self.recent_sum += x
            self.base_n += 1
            self.base_sum += x
            det.update((bool(x) != invert) if binary else x)
            if det.drift_detected:
                self.alarms += 1
                n_after = len(rec)
                n_before = self.base_n - n_after
                after = self.recent_sum / n_after
                before = (self.base_sum - self.recent_sum) / n_before if n_before else after
                if n_before and after > before + self.min_increase:
                    fires.append(Fire(int(t), before, after, n_before, n_after))
                self.base_n, self.base_sum = n_after, self.recent_sum
        self.seen += errors.size
        return fires

    def to_bytes(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_bytes(data: bytes) -> PartitionMonitor:
        return pickle.loads(data)
