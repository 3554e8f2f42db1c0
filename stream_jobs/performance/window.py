"""The performance partial of one (model, version, prediction-time window).

Windows are by **prediction** event time: a label joins the window of its prediction, so
a window's accuracy describes the predictions made then, whenever their labels come.
Besides the metric accumulator it counts the window's predictions (the join-rate
denominator), its joined labels, a fixed-bucket label-delay histogram (label time −
prediction time, seconds) and the per-segment :class:`SliceTable`. Everything is
mergeable and packs to bytes so the join store keeps it across restarts.

>>> import numpy as np
>>> w = WindowPerformance("m", "1", 0, 60_000, task=CLASSIFICATION, positive=1)
>>> w.n_predictions += 4
>>> w.add_delays(np.array([0.5, 2.0, 30.0]))
>>> w.cls.update(np.array([1, 0, 1]), np.array([1, 0, 0]))
>>> s = w.summary(["0", "1"])
>>> s["join_rate"], s["labels_joined"], round(s["accuracy"], 3), s["label_delay_p50_s"]
(0.75, 3.0, 0.667, 5.0)
>>> WindowPerformance.from_bytes(w.to_bytes()).summary(["0", "1"]) == s
True
"""

from __future__ import annotations

import math
import struct

import numpy as np

from stream_jobs.blobs import pack_blobs, unpack_blobs
from stream_jobs.performance.classification import ClassificationAccumulator
from stream_jobs.performance.regression import RegressionAccumulator
from stream_jobs.performance.slices import SliceTable
from stream_jobs.windows.numeric import NumericPartial

CLASSIFICATION, REGRESSION = "classification", "regression"
DELAY_BOUNDS_S = np.array(
    [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400],
    dtype=np.float64,
)
_HEAD = struct.Struct("<qqqqddd")
_I8 = np.dtype("<i8")


class WindowPerformance:
    def __init__(
        self,
        model: str,
        model_version: str,
        start_ms: int,
        end_ms: int,
        *,
        task: str = CLASSIFICATION,
        positive: int = -1,
        auc_bins: int = 200,
        ece_bins: int = 15,
    ) -> None:
        self.model = model
        self.model_version = model_version
        self.start_ms = int(start_ms)
        self.end_ms = int(end_ms)
        self.task = task
        self.n_predictions = 0
        self.n_joined = 0
        self.delay_counts = np.zeros(DELAY_BOUNDS_S.size + 1, dtype=_I8)
        self.delay_sum = 0.0
        self.delay_min = math.inf
        self.delay_max = -math.inf
        self.cls = ClassificationAccumulator(positive, auc_bins, ece_bins)
        self.reg = RegressionAccumulator()
        self.slices = SliceTable()
        self.label_values: NumericPartial | None = None  # regression labels (label drift)

    def add_label_values(self, values: np.ndarray, k: int = 200) -> None:
        if self.label_values is None:
            self.label_values = NumericPartial(k)
        self.label_values.update(values)

    def add_delays(self, delays_s: np.ndarray) -> None:
        """Count joined labels with their delays (seconds)."""
        if delays_s.size == 0:
            return
        self.n_joined += int(delays_s.size)
        idx = np.searchsorted(DELAY_BOUNDS_S, delays_s, side="left")
        self.delay_counts += np.bincount(idx, minlength=DELAY_BOUNDS_S.size + 1)
        self.delay_sum += float(delays_s.sum())
        self.delay_min = min(self.delay_min, float(delays_s.min()))
        self.delay_max = max(self.delay_max, float(delays_s.max()))

    def delay_quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile ``q`` (max delay for the last one)."""
        total = int(self.delay_counts.sum())
        if total == 0:
            return math.nan
        i = int(np.searchsorted(np.cumsum(self.delay_counts), q * total, side="left"))
        return float(DELAY_BOUNDS_S[i]) if i < DELAY_BOUNDS_S.size else self.delay_max

    def merge(self, other: WindowPerformance) -> None:
        self.n_predictions += other.n_predictions
        self.n_joined += other.n_joined
        self.delay_counts += other.delay_counts
        self.delay_sum += other.delay_sum
        self.delay_min = min(self.delay_min, other.delay_min)
        self.delay_max = max(self.delay_max, other.delay_max)
        self.cls.merge(other.cls)
        self.reg.merge(other.reg)
        self.slices.merge(other.slices)
        if other.label_values is not None:
            if self.label_values is None:
                self.label_values = NumericPartial(other.label_values.k)
            self.label_values.merge(other.label_values)

    def metrics(self, class_names: list[str] | None = None) -> dict[str, float]:
        if self.task == REGRESSION or self.reg.n > self.cls.n:
            return self.reg.metrics()
        return self.cls.metrics(class_names)

    def summary(self, class_names: list[str] | None = None) -> dict[str, float]:
        """Flat ``{metric: value}``: the WindowStats ``performance`` map."""
        out = dict(self.metrics(class_names))
        out["predictions"] = float(self.n_predictions)
        out["labels_joined"] = float(self.n_joined)
        if self.n_predictions:
            out["join_rate"] = self.n_joined / self.n_predictions
        if self.n_joined:
            out["label_delay_mean_s"] = self.delay_sum / self.n_joined
            out["label_delay_p50_s"] = self.delay_quantile(0.5)
            out["label_delay_p90_s"] = self.delay_quantile(0.9)
            out["label_delay_max_s"] = self.delay_max
        return out

    def to_bytes(self) -> bytes:
        head = _HEAD.pack(
            self.start_ms,
            self.end_ms,
            self.n_predictions,
            self.n_joined,
            self.delay_sum,
            self.delay_min,
            self.delay_max,
        )
        return pack_blobs(
            head,
            self.model.encode(),
            self.model_version.encode(),
            self.task.encode(),
            self.delay_counts.tobytes(),
            self.cls.to_bytes(),
            self.reg.to_bytes(),
            self.slices.to_bytes(),
            b"" if self.label_values is None else self.label_values.to_bytes(),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowPerformance:
        head, model, version, task, delays, c, r, s, lv = unpack_blobs(data)
        start, end, n_pred, n_joined, dsum, dmin, dmax = _HEAD.unpack(head)
        w = cls(model.decode(), version.decode(), start, end, task=task.decode())
        w.n_predictions, w.n_joined = n_pred, n_joined
        w.delay_sum, w.delay_min, w.delay_max = dsum, dmin, dmax
        w.delay_counts = np.frombuffer(delays, _I8).copy()
        w.cls = ClassificationAccumulator.from_bytes(c)
        w.reg = RegressionAccumulator.from_bytes(r)
        w.slices = SliceTable.from_bytes(s)
        w.label_values = NumericPartial.from_bytes(lv) if lv else None
        return w
