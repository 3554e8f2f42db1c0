"""Mergeable classification metrics: confusion counts, log-loss sums, score histograms.

One :class:`ClassificationAccumulator` per (model, version, window) takes joined rows as
class *codes* (indexes into a class list owned by the caller) and keeps only counts:

* a ``k x k`` confusion matrix (rows: true class, columns: predicted) gives accuracy,
  precision, recall and F1 **exactly** (binary: of the positive class; multiclass: macro
  over the classes present in truth or prediction, zero where undefined — scikit-learn's
  ``average="macro", zero_division=0``);
* the sum of ``-log p(true class)`` (probabilities clipped to ``[eps, 1 - eps]``) gives log
  loss exactly for the rows that carry probabilities;
* expected calibration error over ``ece_bins`` equal-width confidence bins (confidence =
  the probability of the predicted class): per bin count, sum of confidences, correct
  count — exact for those bins;
* ROC AUC (binary) from two fixed-bin histograms of the positive-class score (``auc_bins``
  equal-width bins on [0, 1]), one for positive rows, one for negative rows. Pairs in
  different bins are ordered exactly; pairs that share a bin count one half. The error
  against the exact AUC is at most half the share of (positive, negative) pairs that
  share a bin, which :meth:`auc_error_bound` reports (≈ 1/(2 x bins) for spread scores).

Merging adds counts, so partitions and restarts combine exactly.

>>> import numpy as np
>>> acc = ClassificationAccumulator(positive=1)
>>> acc.update(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]), np.array([0.9, 0.2, 0.4, 0.8]))
>>> m = acc.metrics(["0", "1"])
>>> m["accuracy"], round(m["recall"], 3), m["roc_auc"]
(0.75, 0.667, 1.0)
>>> ClassificationAccumulator.from_bytes(acc.to_bytes()).metrics(["0", "1"]) == m
True
"""

from __future__ import annotations

import math
import struct

import numpy as np

from stream_jobs.blobs import pack_blobs, unpack_blobs

EPS = float(np.finfo(np.float64).eps)
_HEAD = struct.Struct("<iiiidqq")
_I8 = np.dtype("<i8")
_F8 = np.dtype("<f8")


class ClassificationAccumulator:
    """Counts for one window; classes are integer codes ``0..k-1`` that grow on demand."""

    def __init__(self, positive: int = -1, auc_bins: int = 200, ece_bins: int = 15) -> None:
        self.positive = int(positive)  # code of the positive class (binary AUC), -1: none
        self.auc_bins = int(auc_bins)
        self.ece_bins = int(ece_bins)
        self.confusion = np.zeros((0, 0), dtype=_I8)
        self.logloss_sum = 0.0
        self.logloss_n = 0
        self.auc_n = 0
        self.auc_hist = np.zeros((2, self.auc_bins), dtype=_I8)  # [neg, pos] x bins
        self.ece = np.zeros((3, self.ece_bins), dtype=_F8)  # count, sum conf, correct

    # ---- update --------------------------------------------------------------------
    def _grow(self, k: int) -> None:
        old = self.confusion.shape[0]
        if k > old:
            grown = np.zeros((k, k), dtype=_I8)
            grown[:old, :old] = self.confusion
            self.confusion = grown

    def update(
        self,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        pos_score: np.ndarray | None = None,
        p_true: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
    ) -> None:
        """Add rows. ``y_true``/``y_pred``: class codes (``-1`` rows are skipped).

        ``pos_score``: probability of the positive class (binary AUC; NaN = unknown);
        ``p_true``: probability given to the true class (log loss; NaN = unknown);
        ``confidence``: probability of the predicted class (calibration; NaN = unknown).
        """
        y_true = np.asarray(y_true, dtype=np.int64)
        y_pred = np.asarray(y_pred, dtype=np.int64)
        ok = (y_true >= 0) & (y_pred >= 0)
        if not ok.all():
            y_true, y_pred = y_true[ok], y_pred[ok]
            pos_score = None if pos_score is None else pos_score[ok]
            p_true = None if p_true is None else p_true[ok]
            confidence = None if confidence is None else confidence[ok]
        if y_true.size == 0:
            return
        k = int(max(y_true.max(), y_pred.max())) + 1
        self._grow(max(k, self.positive + 1))
        kk = self.confusion.shape[0]
        self.confusion += np.bincount(y_true * kk + y_pred, minlength=kk * kk).reshape(kk, kk)
        if p_true is not None:
            p = p_true[np.isfinite(p_true)]
            if p.size:
                self.logloss_sum += float(-np.log(np.clip(p, EPS, 1 - EPS)).sum())
                self.logloss_n += int(p.size)
        if pos_score is not None and self.positive >= 0:
            s = np.isfinite(pos_score)
            if s.any():
                b = np.clip((pos_score[s] * self.auc_bins).astype(np.int64), 0, self.auc_bins - 1)
                is_pos = (y_true[s] == self.positive).astype(np.int64)
                self.auc_hist += np.bincount(
                    is_pos * self.auc_bins + b, minlength=2 * self.auc_bins
                ).reshape(2, self.auc_bins)
                self.auc_n += int(s.sum())
        if confidence is not None:
            c = np.isfinite(confidence)
            if c.any():
                conf = confidence[c]
                b = np.clip((conf * self.ece_bins).astype(np.int64), 0, self.ece_bins - 1)
                correct = (y_true[c] == y_pred[c]).astype(np.float64)
                self.ece[0] += np.bincount(b, minlength=self.ece_bins)
                self.ece[1] += np.bincount(b, weights=conf, minlength=self.ece_bins)
                self.ece[2] += np.bincount(b, weights=correct, minlength=self.ece_bins)

    def merge(self, other: ClassificationAccumulator) -> None:
        self._grow(other.confusion.shape[0])
        k = other.confusion.shape[0]
        self.confusion[:k, :k] += other.confusion
        self.logloss_sum += other.logloss_sum
        self.logloss_n += other.logloss_n
        self.auc_hist += other.auc_hist
        self.auc_n += other.auc_n
        self.ece += other.ece

    # ---- read ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    def errors(self) -> int:
        return self.n - int(np.trace(self.confusion))

    def auc(self) -> float:
        neg, pos = self.auc_hist[0].astype(np.float64), self.auc_hist[1].astype(np.float64)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos == 0 or n_neg == 0:
            return math.nan
        neg_below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
        return float((pos * (neg_below + 0.5 * neg)).sum() / (n_pos * n_neg))

    def auc_error_bound(self) -> float:
        """Upper bound of |binned AUC - exact AUC|: half the share of tied-bin pairs."""
        neg, pos = self.auc_hist[0].astype(np.float64), self.auc_hist[1].astype(np.float64)
        denom = pos.sum() * neg.sum()
        return math.nan if denom == 0 else float(0.5 * (pos * neg).sum() / denom)

    def metrics(self, class_names: list[str] | None = None) -> dict[str, float]:
        cm = self.confusion.astype(np.float64)
        n = cm.sum()
        if n == 0:
            return {}
        tp = np.diag(cm)
        pred_tot, true_tot = cm.sum(axis=0), cm.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(pred_tot > 0, tp / pred_tot, 0.0)
            rec = np.where(true_tot > 0, tp / true_tot, 0.0)
            f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
        present = (pred_tot + true_tot) > 0
        binary = self.positive >= 0 and int(present.sum()) <= 2
        out: dict[str, float] = {"accuracy": float(tp.sum() / n), "labels": float(n)}
        if binary:
            p = self.positive
            out.update(precision=float(prec[p]), recall=float(rec[p]), f1=float(f1[p]))
        else:
            out.update(
                precision=float(prec[present].mean()),
                recall=float(rec[present].mean()),
                f1=float(f1[present].mean()),
            )
        out["error_rate"] = 1.0 - out["accuracy"]
        if self.logloss_n:
            out["log_loss"] = self.logloss_sum / self.logloss_n
        if self.auc_n:
            auc = self.auc()
            if not math.isnan(auc):
                out["roc_auc"] = auc
        cnt = self.ece[0]
        if cnt.sum() > 0:
            nz = cnt > 0
            gap = np.abs(self.ece[2][nz] / cnt[nz] - self.ece[1][nz] / cnt[nz])
            out["calibration_error"] = float((cnt[nz] * gap).sum() / cnt.sum())
        return out

    # ---- bytes ---------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        head = _HEAD.pack(
            self.positive,
            self.auc_bins,
            self.ece_bins,
            self.confusion.shape[0],
            self.logloss_sum,
            self.logloss_n,
            self.auc_n,
        )
        return pack_blobs(
            head,
            self.confusion.astype(_I8, copy=False).tobytes(),
            self.auc_hist.astype(_I8, copy=False).tobytes(),
            self.ece.astype(_F8, copy=False).tobytes(),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ClassificationAccumulator:
        head, conf, hist, ece = unpack_blobs(data)
        pos, auc_bins, ece_bins, k, ll_sum, ll_n, auc_n = _HEAD.unpack(head)
        acc = cls(pos, auc_bins, ece_bins)
        acc.confusion = np.frombuffer(conf, _I8).reshape(k, k).copy()
        acc.auc_hist = np.frombuffer(hist, _I8).reshape(2, auc_bins).copy()
        acc.ece = np.frombuffer(ece, _F8).reshape(3, ece_bins).copy()
        acc.logloss_sum, acc.logloss_n, acc.auc_n = ll_sum, ll_n, auc_n
        return acc
