"""Mergeable regression metrics: MAE, RMSE, MAPE, bias from five sums.

MAPE is ``|y - p| / |y|`` averaged over the rows whose label is not zero: a zero label
has no percentage error (scikit-learn divides by ``eps`` there and reports ~1e14), so
those rows are skipped and counted in ``mape_skipped_zero_labels``; with only zero labels
there is no MAPE. Bias is ``mean(prediction - truth)`` (positive: the model
over-predicts).

>>> import numpy as np
>>> r = RegressionAccumulator()
>>> r.update(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
>>> m = r.metrics(); m["mae"], m["bias"], round(m["rmse"], 4)
(0.5, -0.16666666666666666, 0.6455)
>>> RegressionAccumulator.from_bytes(r.to_bytes()).metrics() == m
True
>>> z = RegressionAccumulator(); z.update(np.array([0.0, 2.0]), np.array([1.0, 3.0]))
>>> z.metrics()["mape"], z.metrics()["mape_skipped_zero_labels"]
(0.5, 1.0)
"""

from __future__ import annotations

import math
import struct

import numpy as np

_S0 = struct.Struct("<qdddd")  # before mape_n (every row counted)
_S = struct.Struct("<qddddq")


class RegressionAccumulator:
    def __init__(self) -> None:
        self.n = 0
        self.sum_abs = 0.0
        self.sum_sq = 0.0
        self.sum_err = 0.0
        self.sum_ape = 0.0
        self.mape_n = 0  # rows with a non-zero label (the MAPE's denominator)

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
        nz = yt != 0.0
        self.sum_ape += float((a[nz] / np.abs(yt[nz])).sum())
        self.mape_n += int(nz.sum())

    def merge(self, other: RegressionAccumulator) -> None:
        self.n += other.n
        self.sum_abs += other.sum_abs
        self.sum_sq += other.sum_sq
        self.sum_err += other.sum_err
        self.sum_ape += other.sum_ape
        self.mape_n += other.mape_n

    def metrics(self) -> dict[str, float]:
        if self.n == 0:
            return {}
        n = self.n
        out = {
            "mae": self.sum_abs / n,
            "rmse": math.sqrt(self.sum_sq / n),
            "bias": self.sum_err / n,
            "labels": float(n),
        }
        if self.mape_n:
            out["mape"] = self.sum_ape / self.mape_n
        if self.mape_n < n:
            out["mape_skipped_zero_labels"] = float(n - self.mape_n)
        return out

    def to_bytes(self) -> bytes:
        return _S.pack(self.n, self.sum_abs, self.sum_sq, self.sum_err, self.sum_ape, self.mape_n)

    @classmethod
    def from_bytes(cls, data: bytes) -> RegressionAccumulator:
        r = cls()
        if len(data) == _S0.size:  # state written before zero labels were skipped
            r.n, r.sum_abs, r.sum_sq, r.sum_err, r.sum_ape = _S0.unpack(data)
            r.mape_n = r.n
        else:
            r.n, r.sum_abs, r.sum_sq, r.sum_err, r.sum_ape, r.mape_n = _S.unpack(data)
        return r
