"""Judge one closed, merged window against its reference: the ``WindowStats`` record and
the detections (active *and* inactive, one per evaluated subject, so that the alert
lifecycle can resolve what an earlier window opened).

Per reference feature with at least ``min_sample`` values in the window: the selected
test (see :mod:`stream_jobs.drift.selection`); p-values of all features are adjusted
together by Benjamini–Hochberg; the drift share is the fraction of judged features that
drifted, and the dataset drifts at ``drift_share >= drift_share_threshold``. The
prediction's test joins the same BH family (every p-value test of a window is adjusted
together) but not the drift share. Data-quality
checks (missing-rate rise, out-of-range share, unseen-category share, type violations)
run per reference feature with enough events. A value of the wrong kind (a categorical
feature arriving as numbers, or the reverse) is one type violation of that feature: it is
not counted again as missing in the missing-rate check. Without a reference: statistics only.

In every :class:`DriftVerdict`, ``p_value`` is the BH-adjusted p-value and ``drifted``
is ``p_value <= threshold`` (p-value tests) or ``statistic >= threshold`` (distances).

>>> from stream_jobs.drift.synthetic import SyntheticStream
>>> s = SyntheticStream(n_numeric=2, n_categorical=1, rate_per_s=100, seed=0)
>>> ref = ReferenceView(s.reference())
>>> w = WindowPartial("m", "1", 0, 60_000, ref.partial_spec(400, 100))
>>> w.update(s.batch(0, 2_000))
>>> closed = evaluate_window(w, ref, DriftConfig())
>>> for v in closed.stats["drift"]:
...     print(v["column"], v["test"], v["drifted"])
f0 wasserstein False
f1 wasserstein False
c0 jensenshannon False
__prediction__ wasserstein False
>>> closed.stats["drift_share"], sum(d.active for d in closed.detections), len(closed.detections)
(0.0, 0, 14)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.detection import Detection, DetectionKind
from stream_jobs.drift.bh import benjamini_hochberg
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.result import TestResult
from stream_jobs.drift.selection import TESTS, choose_test, confirming_test
from stream_jobs.reference.view import ReferenceColumn, ReferenceView
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial
from stream_jobs.windows.spec import PREDICTION
from stream_jobs.windows.window import CATEGORICAL, NUMERIC, WindowPartial

QUANTILES = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.5,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
PREDICTION_SUBJECT = "prediction"

Partial = NumericPartial | CategoricalPartial


@dataclass
class ClosedWindow:
    """A closed window: its ``WindowStats`` record and the detections it produced."""

    model: str
    model_version: str
    window_start_ms: int
    window_end_ms: int
    stats: dict[str, Any]
    detections: list[Detection] = field(default_factory=list)
    partial: WindowPartial | None = None


def column_window(name: str, p: Partial) -> dict[str, Any]:
    """The ``ColumnWindow`` record of a column partial."""
    if isinstance(p, NumericPartial):
        has = p.n > 0
        return {
            "name": name, "kind": NUMERIC, "count": p.count, "missing": p.missing,
            "mean": p.mean if has else None, "std": p.std,
            "min": p.min if has else None, "max": p.max if has else None,
            "quantiles": dict(zip(QUANTILES, p.quantiles(list(QUANTILES.values())), strict=False)),
            "kll_sketch": p.sketch.serialize() if has else None,
            "categories": {}, "out_of_range": p.out_of_range, "unseen_categories": 0,
        }  # fmt: skip
    return {
        "name": name, "kind": CATEGORICAL, "count": p.count, "missing": p.missing,
        "mean": None, "std": None, "min": None, "max": None, "quantiles": {},
        "kll_sketch": None, "categories": dict(p.counts), "out_of_range": 0,
        "unseen_categories": p.unseen,
    }  # fmt: skip


def _partial_of(w: WindowPartial, name: str, kind: str) -> Partial | None:
    return w.numeric.get(name) if kind == NUMERIC else w.categorical.get(name)


def _n_values(p: Partial) -> int:
    return p.n if isinstance(p, NumericPartial) else p.count - p.missing


@dataclass
class _Judged:
    """One subject's test; ``confirm`` is the p-value test behind a distance verdict."""

    column: str
    test: str
    threshold: float
    result: TestResult
    confirm: TestResult | None = None
    adjusted: float | None = None  # the family-adjusted p-value (of confirm for distances)

    @property
    def raw_p(self) -> float | None:
        return self.result.p_value if self.confirm is None else self.confirm.p_value

    @property
    def value(self) -> float:
        return self.adjusted if self.result.p_value is not None else self.result.statistic  # type: ignore[return-value]

    def drifted(self, alpha: float) -> bool:
        if self.result.p_value is not None:
            return bool(self.adjusted is not None and self.adjusted <= self.threshold)
        confirmed = self.adjusted is None or self.adjusted <= alpha
        return bool(self.result.statistic >= self.threshold and confirmed)


class _Judge:
    def __init__(self, w: WindowPartial, ref: ReferenceView, config: DriftConfig) -> None:
        self.w, self.ref, self.config = w, ref, config
        self.detections: list[Detection] = []

    def detection(self, kind: str, subject: str, detector: str, value: float, threshold: float,
                  active: bool, **details: Any) -> None:  # fmt: skip
        self.detections.append(
            Detection(
                model=self.w.model, model_version=self.w.model_version, kind=kind,
                subject=subject, detector=detector, value=float(value),
                threshold=float(threshold), active=bool(active),
                event_time_ms=self.w.end_ms, window_start_ms=self.w.start_ms,
                window_end_ms=self.w.end_ms,
                details={k: str(v) for k, v in details.items()},
            )
        )  # fmt: skip

    def test(self, col: ReferenceColumn, cur: Partial, name: str) -> _Judged:
        test, threshold = choose_test(
            col.kind, col.unique, col.n, _n_values(cur), self.config,
            self.config.override(self.w.model, name),
        )  # fmt: skip
        r = TESTS[test](col, cur)
        confirm = None
        if r.p_value is None and self.config.confirm_distances:
            confirm = TESTS[confirming_test(test, col.kind, col.unique, self.config)](col, cur)
        return _Judged(name, test, threshold, r, confirm)

    def quality(self, name: str, col: ReferenceColumn, cur: Partial | None) -> None:
        c = self.config
        w = self.w
        bad = w.absent.get(name, 0) + w.wrong_kind.get(name, 0)
        share = bad / w.count if w.count else 0.0
        self.detection(
            DetectionKind.TYPE_VIOLATION, name, "type_check", share, c.type_violation_threshold,
            share > c.type_violation_threshold, expected=col.kind,
            absent=w.absent.get(name, 0), wrong_kind=w.wrong_kind.get(name, 0),
        )  # fmt: skip
        # values of the other kind count as missing in the expected column: they are the
        # type violation above, reported once, not a second time as a missing rate
        wrong = w.wrong_kind.get(name, 0)
        if cur is None or cur.count - wrong < c.min_sample:
            return
        missing = (cur.missing - wrong) / (cur.count - wrong)
        limit = col.missing_ratio + c.missing_rate_rise
        self.detection(
            DetectionKind.MISSING_RATE, name, "missing_rate", missing, limit, missing > limit,
            reference_ratio=round(col.missing_ratio, 6), count=cur.count - wrong,
        )  # fmt: skip
        n = _n_values(cur)
        if n == 0:
            return
        if isinstance(cur, NumericPartial) and col.min is not None:
            r = cur.out_of_range / n
            self.detection(
                DetectionKind.OUT_OF_RANGE, name, "reference_range", r, c.out_of_range_threshold,
                r > c.out_of_range_threshold, min=col.min, max=col.max,
            )  # fmt: skip
        elif isinstance(cur, CategoricalPartial) and not col.capped:
            r = cur.unseen / n
            self.detection(
                DetectionKind.UNSEEN_CATEGORY, name, "reference_categories", r,
                c.unseen_threshold, r > c.unseen_threshold, unseen=cur.unseen,
            )  # fmt: skip

    def run(self) -> tuple[list[dict[str, Any]], float | None, bool]:
        c = self.config
        judged: list[_Judged] = []
        for name, col in self.ref.columns.items():
            cur = _partial_of(self.w, name, col.kind)
            self.quality(name, col, cur)
            if cur is None or _n_values(cur) < c.min_sample or col.n == 0:
                continue
            judged.append(self.test(col, cur, name))
        pred = self.prediction_test()
        # one family: every p-value of the window (features, prediction, and the p-values
        # confirming distance verdicts) is adjusted together
        family = judged + ([pred] if pred is not None else [])
        raw = [j.raw_p for j in family if j.raw_p is not None]
        adjusted = iter(benjamini_hochberg(raw).tolist() if c.benjamini_hochberg else raw)
        for j in family:
            j.adjusted = next(adjusted) if j.raw_p is not None else None
        verdicts = [self.verdict(j) for j in family]
        drifted_n = sum(j.drifted(c.alpha) for j in judged)
        for j in judged:
            self.judged_detection(DetectionKind.FEATURE_DRIFT, j.column, j)
        share = drifted_n / len(judged) if judged else None
        dataset = share is not None and share >= c.drift_share_threshold
        if share is not None:
            self.detection(
                DetectionKind.DATASET_DRIFT, "dataset", "drift_share", share,
                c.drift_share_threshold, dataset, judged=len(judged), drifted=drifted_n,
            )  # fmt: skip
        if pred is not None:
            self.judged_detection(DetectionKind.PREDICTION_DRIFT, PREDICTION_SUBJECT, pred)
        return verdicts, share, dataset

    def judged_detection(self, kind: str, subject: str, j: _Judged) -> None:
        extra = {} if j.confirm is None else {
            "confirm_test": j.confirm.test, "confirm_p_value": j.adjusted,
        }  # fmt: skip
        self.detection(
            kind, subject, j.test, j.value, j.threshold, j.drifted(self.config.alpha),
            statistic=j.result.statistic, p_value=j.result.p_value, **extra,
        )  # fmt: skip

    def prediction_test(self) -> _Judged | None:
        col, cur = self.ref.prediction, self.w.prediction
        if col is None or cur is None or col.n == 0 or _n_values(cur) < self.config.min_sample:
            return None
        if (col.kind == NUMERIC) != isinstance(cur, NumericPartial):
            return None
        j = self.test(col, cur, PREDICTION_SUBJECT)
        j.column = PREDICTION
        return j

    def verdict(self, j: _Judged) -> dict[str, Any]:
        r = j.result
        return {
            "column": j.column, "test": j.test, "statistic": float(r.statistic),
            "p_value": None if r.p_value is None else float(j.adjusted),  # type: ignore[arg-type]
            "threshold": float(j.threshold), "drifted": j.drifted(self.config.alpha),
        }  # fmt: skip


def window_stats(w: WindowPartial, late_events: int = 0) -> dict[str, Any]:
    """The ``WindowStats`` record of a merged window, without verdicts."""
    expected = w.spec.expected
    cols = [(n, NUMERIC, p) for n, p in w.numeric.items()]
    cols += [(n, CATEGORICAL, p) for n, p in w.categorical.items()]
    cols.sort(key=lambda c: (c[0], expected.get(c[0], c[1]) != c[1]))
    return {
        "model": w.model,
        "model_version": w.model_version,
        "window_start_ms": w.start_ms,
        "window_end_ms": w.end_ms,
        "count": w.count,
        "errors": w.errors,
        "fallbacks": w.fallbacks,
        "late_events": int(late_events),
        "features": [column_window(n, p) for n, _, p in cols],
        "prediction": None
        if w.prediction is None
        else column_window(PREDICTION_SUBJECT, w.prediction),
        "label": None,
        "performance": {},
        "drift": [],
        "drift_share": None,
        "dataset_drift": False,
    }


def evaluate_window(
    w: WindowPartial, ref: ReferenceView | None, config: DriftConfig, late_events: int = 0
) -> ClosedWindow:
    """Stats, verdicts and detections of one merged window."""
    stats = window_stats(w, late_events)
    out = ClosedWindow(w.model, w.model_version, w.start_ms, w.end_ms, stats, [], w)
    if ref is None:
        return out
    judge = _Judge(w, ref, config)
    stats["drift"], stats["drift_share"], stats["dataset_drift"] = judge.run()
    out.detections = judge.detections
    return out
