"""Mergeable regression metrics: MAE, RMSE, MAPE, bias from five sums.

MAPE follows scikit-learn: ``|y - p| / max(|y|, eps)`` averaged over all rows.
Bias is ``mean(prediction - truth)`` (positive: the model over-predicts).

>>> import numpy as np
>>> r = RegressionAccumulator()
>>> r.update(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
>>> m = r.metrics(); m["mae"], m["bias"], round(m["rmse"], 4)
(0.5, -0.16666666666666666, 0.6455)
>>> RegressionAccumulator.from_bytes(r.to_bytes()).metrics() == m
True
"""

from __future__ import annotations

import math
import struct

import numpy as np

EPS = float(np.finfo(np.float64).eps)
_S = struct.Struct("<qdddd")


class RegressionAccumulator:
    def __init__(self) -> None:
        self.n = 0
        self.sum_abs = 0.0
        self.sum_sq = 0.0
        self.sum_err = 0.0
        self.sum_ape = 0.0

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Add rows; rows where either side is NaN are skipped."""
        ok = np.isfinite(y_true) & np.isfinite(y_pred)
        yt, yp = y_true[ok], y_pred[ok]
        if yt.size == 0:
            return
        err = yp - yt
        a = np.abs(err)
        self.n += int(yt.size)
        self.sum_abs += float(a.sum())
        self.sum_sq += float((err * err).sum())
        self.sum_err += float(err.sum())
        self.sum_ape += float((a / np.maximum(np.abs(yt), EPS)).sum())

    def merge(self, other: RegressionAccumulator) -> None:
        self.n += other.n
        self.sum_abs += other.sum_abs
        self.sum_sq += other.sum_sq
        self.sum_err += other.sum_err
        self.sum_ape += other.sum_ape

    def metrics(self) -> dict[str, float]:
        if self.n == 0:
            return {}
        n = self.n
        return {
            "mae": self.sum_abs / n,
            "rmse": math.sqrt(self.sum_sq / n),
            "mape": self.sum_ape / n,
            "bias": self.sum_err / n,
            "labels": float(n),
        }

    def to_bytes(self) -> bytes:
        return _S.pack(self.n, self.sum_abs, self.sum_sq, self.sum_err, self.sum_ape)

    @classmethod
    def from_bytes(cls, data: bytes) -> RegressionAccumulator:
        r = cls()
        r.n, r.sum_abs, r.sum_sq, r.sum_err, r.sum_ape = _S.unpack(data)
        return r
