"""Prometheus export of closed windows and online detections (stable metric names).

Cardinality guard: per model, only the first ``max_features`` feature names ever seen
get series (stable over time); the rest are counted in
``modelwatch_features_not_exported{model}``; model names go through the registry's
:class:`~schemas.label_caps.LabelCaps`. No id is ever a label. When a feature's
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

from prometheus_client import CollectorRegistry

from schemas.detection import Detection, DetectionKind
from schemas.label_caps import LabelCaps, caps_for
from schemas.metrics_catalogue import counter, gauge, remove_series
from stream_jobs.drift.evaluate import ClosedWindow
from stream_jobs.windows.spec import PREDICTION


class DriftMetrics:
    def __init__(
        self, registry: CollectorRegistry, max_features: int = 50, caps: LabelCaps | None = None
    ) -> None:
        self.max_features = max_features
        self.caps = caps if caps is not None else caps_for(registry)
        self._exported: dict[str, set[str]] = {}
        self._test_of: dict[tuple[str, str], str] = {}
        self._pred_test: dict[str, str] = {}
        r = registry
        self.feature_drift_score = gauge("modelwatch_feature_drift_score", r)
        self.feature_drift_detected = gauge("modelwatch_feature_drift_detected", r)
        self.drift_share = gauge("modelwatch_drift_share_ratio", r)
        self.dataset_drift = gauge("modelwatch_dataset_drift_detected", r)
        self.prediction_drift_score = gauge("modelwatch_prediction_drift_score", r)
        self.detector_detections = counter("modelwatch_detector_detections_total", r)
        self.missing_ratio = gauge("modelwatch_feature_missing_ratio", r)
        self.out_of_range_ratio = gauge("modelwatch_feature_out_of_range_ratio", r)
        self.unseen = counter("modelwatch_unseen_categories_total", r)
        self.window_events = gauge("modelwatch_window_events", r)
        self.late_events = counter("modelwatch_late_events_total", r)
        self.windows_closed = counter("modelwatch_windows_closed_total", r)
        self.not_exported = gauge("modelwatch_features_not_exported", r)
        self._all = (
            self.feature_drift_score, self.feature_drift_detected, self.drift_share,
            self.dataset_drift, self.prediction_drift_score, self.detector_detections,
            self.missing_ratio, self.out_of_range_ratio, self.unseen, self.window_events,
            self.late_events, self.windows_closed, self.not_exported,
        )  # fmt: skip
        self.caps.on_forget(self.forget)

    def forget(self, model: str) -> None:
        """Remove every series of ``model`` and what this exporter remembers of it."""
        for metric in self._all:
            remove_series(metric, "model", model)
        self._exported.pop(model, None)
        self._pred_test.pop(model, None)
        for key in [k for k in self._test_of if k[0] == model]:
            del self._test_of[key]

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
            self.late_events.labels(self.caps.model(model)).inc(n)

    def record_detection(self, d: Detection) -> None:
        """An online-detector detection (``DriftEngine.poll_detector_firings``)."""
        model = self.caps.model(d.model)
        if d.kind == DetectionKind.PREDICTION_DRIFT or self._allowed(model, d.subject):
            self.detector_detections.labels(model, d.subject, d.detector).inc()

    def record_window(self, w: ClosedWindow) -> None:
        s = w.stats
        model = self.caps.model(w.model)
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
