"""Prometheus export of closed windows and online detections (stable metric names).

Cardinality guard: per model, only the first ``max_features`` feature names ever seen
get series (stable over time); the rest are counted in
``modelwatch_features_not_exported{model}``. No id is ever a label. When a feature's
selected test changes (the window grew past the small-sample limit), the old test's
series is removed so dashboards never show a stale score.

Late events: feed :meth:`DriftMetrics.record_late` with what ``DriftEngine.observe``
returns (the ``late_events`` field of WindowStats is *not* counted again here).

>>> from prometheus_client import CollectorRegistry
>>> from schemas.detection import Detection
>>> reg = CollectorRegistry()
>>> m = DriftMetrics(reg, max_features=1)
>>> m.record_detection(Detection("m", "feature_drift", "x", "adwin", 2, 2, 0))
>>> reg.get_sample_value("modelwatch_detector_detections_total",
...                      {"model": "m", "feature": "x", "detector": "adwin"})
1.0
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.detection import Detection, DetectionKind
from stream_jobs.drift.evaluate import ClosedWindow
from stream_jobs.windows.spec import PREDICTION


class DriftMetrics:
    def __init__(self, registry: CollectorRegistry, max_features: int = 50) -> None:
        self.max_features = max_features
        self._exported: dict[str, set[str]] = {}
        self._test_of: dict[tuple[str, str], str] = {}
        self._pred_test: dict[str, str] = {}
        r = registry
        self.feature_drift_score = Gauge(
            "modelwatch_feature_drift_score",
            "Drift score of a feature in the latest closed window against the reference "
            "(BH-adjusted p-value for ks/chisquare, distance otherwise).",
            ["model", "feature", "test"], registry=r,
        )  # fmt: skip
        self.feature_drift_detected = Gauge(
            "modelwatch_feature_drift_detected",
            "1 while the latest closed window is judged drifted for the feature, else 0.",
            ["model", "feature"], registry=r,
        )  # fmt: skip
        self.drift_share = Gauge(
            "modelwatch_drift_share",
            "Fraction of features judged drifted in the latest closed window.",
            ["model"], registry=r,
        )  # fmt: skip
        self.dataset_drift = Gauge(
            "modelwatch_dataset_drift_detected",
            "1 while the drift share is at or above its threshold, else 0.", ["model"], registry=r,
        )  # fmt: skip
        self.prediction_drift_score = Gauge(
            "modelwatch_prediction_drift_score",
            "Drift score of the prediction distribution against the reference.",
            ["model", "test"], registry=r,
        )  # fmt: skip
        self.detector_detections = Counter(
            "modelwatch_detector_detections_total",
            "Online detector (ADWIN, Page-Hinkley, KSWIN) detections after the partition vote.",
            ["model", "feature", "detector"], registry=r,
        )  # fmt: skip
        self.missing_ratio = Gauge(
            "modelwatch_feature_missing_ratio",
            "Fraction of missing values of a feature in the latest closed window.",
            ["model", "feature"], registry=r,
        )  # fmt: skip
        self.out_of_range_ratio = Gauge(
            "modelwatch_feature_out_of_range_ratio",
            "Fraction of values outside the reference range in the latest closed window.",
            ["model", "feature"], registry=r,
        )  # fmt: skip
        self.unseen = Counter(
            "modelwatch_unseen_categories_total", "Categorical values never seen in the reference.",
            ["model", "feature"], registry=r,
        )  # fmt: skip
        self.window_events = Gauge(
            "modelwatch_window_events", "Events in the latest closed window.", ["model"], registry=r
        )
        self.late_events = Counter(
            "modelwatch_late_events_total",
            "Events later than the allowed lateness (counted, not dropped silently).",
            ["model"], registry=r,
        )  # fmt: skip
        self.windows_closed = Counter(
            "modelwatch_windows_closed_total",
            "Windows closed and published.",
            ["model"],
            registry=r,
        )
        self.not_exported = Gauge(
            "modelwatch_features_not_exported",
            "Features left out of per-feature series by the cardinality cap.",
            ["model"], registry=r,
        )  # fmt: skip

    def _allowed(self, model: str, feature: str) -> bool:
        names = self._exported.setdefault(model, set())
        if feature in names:
            return True
        if len(names) < self.max_features:
            names.add(feature)
            return True
        return False

    def record_late(self, model: str, n: int) -> None:
        if n:
            self.late_events.labels(model).inc(n)

    def record_detection(self, d: Detection) -> None:
        """An online-detector detection (``DriftEngine.poll_detector_firings``)."""
        if d.kind == DetectionKind.PREDICTION_DRIFT or self._allowed(d.model, d.subject):
            self.detector_detections.labels(d.model, d.subject, d.detector).inc()

    def record_window(self, w: ClosedWindow) -> None:
        s = w.stats
        model = w.model
        self.windows_closed.labels(model).inc()
        self.window_events.labels(model).set(s["count"])
        left_out: set[str] = set()
        seen: set[str] = set()
        for cw in s["features"]:
            name = cw["name"]
            if name in seen:  # a wrong-kind duplicate: the reference-kind entry comes first
                continue
            seen.add(name)
            if not self._allowed(model, name):
                left_out.add(name)
                continue
            if cw["count"]:
                self.missing_ratio.labels(model, name).set(cw["missing"] / cw["count"])
            present = cw["count"] - cw["missing"]
            if cw["kind"] == "numeric" and present:
                self.out_of_range_ratio.labels(model, name).set(cw["out_of_range"] / present)
            if cw["unseen_categories"]:
                self.unseen.labels(model, name).inc(cw["unseen_categories"])
        self.not_exported.labels(model).set(len(left_out))
        if not s["drift"] and s["drift_share"] is None:
            return
        drifted: set[str] = set()
        for v in s["drift"]:
            name, test = v["column"], v["test"]
            score = v["p_value"] if v["p_value"] is not None else v["statistic"]
            if name == PREDICTION:
                old = self._pred_test.get(model)
                if old and old != test:
                    self.prediction_drift_score.remove(model, old)
                self._pred_test[model] = test
                self.prediction_drift_score.labels(model, test).set(score)
                continue
            if not self._allowed(model, name):
                continue
            old = self._test_of.get((model, name))
            if old and old != test:
                self.feature_drift_score.remove(model, name, old)
            self._test_of[(model, name)] = test
            self.feature_drift_score.labels(model, name, test).set(score)
            if v["drifted"]:
                drifted.add(name)
        for name in self._exported.get(model, ()):
            self.feature_drift_detected.labels(model, name).set(1 if name in drifted else 0)
        self.drift_share.labels(model).set(s["drift_share"] or 0.0)
        self.dataset_drift.labels(model).set(1 if s["dataset_drift"] else 0)
