"""Golden signals per model and version: traffic, latency, errors, saturation.

Pure computation over a :class:`~schemas.columnar.PredictionColumns` batch into Prometheus
collectors on an injected registry (no I/O here; the HTTP exporter is the worker's job).

>>> from prometheus_client import CollectorRegistry
>>> from schemas.columnar import PredictionColumns
>>> reg = CollectorRegistry()
>>> golden = GoldenSignals(reg)
>>> cols = PredictionColumns.from_events([
...     {"prediction_id": "a", "model": "m", "model_version": "1", "event_time_ms": 1000,
...      "latency_ms": 12.0, "status": "ok"},
...     {"prediction_id": "b", "model": "m", "model_version": "1", "event_time_ms": 1000,
...      "latency_ms": 30.0, "status": "error", "error_type": "Timeout"}])
>>> golden.observe(cols, now_s=2.0)
>>> reg.get_sample_value("modelwatch_predictions_total",
...                      {"model": "m", "version": "1", "status": "error"})
1.0
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.columnar import STATUS_NAMES, PredictionColumns
from stream_jobs.vector_histogram import DELAY_BUCKETS, LATENCY_BUCKETS, VectorHistogram


class GoldenSignals:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = Counter(
            "modelwatch_predictions",
            "Predictions seen, by model, version and status (ok, error, fallback).",
            ["model", "version", "status"],
            registry=registry,
        )
        self.errors = Counter(
            "modelwatch_prediction_errors",
            "Predictions that failed, by error type.",
            ["model", "version", "error_type"],
            registry=registry,
        )
        self.latency = VectorHistogram(
            "modelwatch_prediction_latency_seconds",
            "Model serving latency reported by the model server.",
            ["model", "version"],
            LATENCY_BUCKETS,
            registry=registry,
        )
        self.delay = VectorHistogram(
            "modelwatch_processing_delay_seconds",
            "Processing delay: worker wall time minus the prediction's event time.",
            ["model"],
            DELAY_BUCKETS,
            registry=registry,
        )
        self.last_event = Gauge(
            "modelwatch_last_event_timestamp_seconds",
            "Largest prediction event time seen, by model and version (for no-traffic alerts).",
            ["model", "version"],
            registry=registry,
        )
        self.request_bytes = Counter(
            "modelwatch_request_bytes",
            "Request payload bytes reported by the model server.",
            ["model", "version"],
            registry=registry,
        )
        self.response_bytes = Counter(
            "modelwatch_response_bytes",
            "Response payload bytes reported by the model server.",
            ["model", "version"],
            registry=registry,
        )

    def observe(self, cols: PredictionColumns, now_s: float) -> None:
        """Account one batch (vectorised: a handful of numpy calls per batch)."""
        model, version = cols.model, cols.model_version
        by_status = np.bincount(cols.status, minlength=3)
        for code, count in enumerate(by_status.tolist()):
            if count:
                self.predictions.labels(model, version, STATUS_NAMES[code]).inc(count)
        if cols.error_type is not None and by_status[1]:
            codes = cols.error_type.codes[cols.status == 1]
            per_type = np.bincount(codes + 1, minlength=len(cols.error_type.dictionary) + 1)
            for code, count in enumerate(per_type.tolist()):
                if count:
                    name = "unknown" if code == 0 else cols.error_type.dictionary[code - 1]
                    self.errors.labels(model, version, name).inc(count)
        elif by_status[1]:
            self.errors.labels(model, version, "unknown").inc(int(by_status[1]))
        self.latency.observe_many((model, version), cols.latency_ms / 1000.0)
        event_s = cols.event_time_ms / 1000.0
        self.delay.observe_many((model,), now_s - event_s)
        latest = float(event_s.max())
        gauge = self.last_event.labels(model, version)
        if latest > gauge._value.get():  # noqa: SLF001 - monotone max without a second map
            gauge.set(latest)
        if cols.request_bytes is not None:
            self.request_bytes.labels(model, version).inc(int(cols.request_bytes.sum()))
        if cols.response_bytes is not None:
            self.response_bytes.labels(model, version).inc(int(cols.response_bytes.sum()))
