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
from prometheus_client import CollectorRegistry

from schemas.columnar import STATUS_NAMES, PredictionColumns
from schemas.label_caps import LabelCaps, caps_for
from schemas.metrics_catalogue import counter, gauge, remove_series
from stream_jobs.vector_histogram import VectorHistogram


class GoldenSignals:
    """The golden-signal collectors of one registry, built from the metric catalogue.

    ``model``, ``version`` and ``error_type`` go through the registry's
    :class:`~schemas.label_caps.LabelCaps` (an ``other`` bucket past each cap), and a
    forgotten model (the model registry's TTL) has its series removed.
    """

    def __init__(self, registry: CollectorRegistry, caps: LabelCaps | None = None) -> None:
        self.caps = caps if caps is not None else caps_for(registry)
        self.predictions = counter("modelwatch_predictions_total", registry)
        self.errors = counter("modelwatch_prediction_errors_total", registry)
        self.latency = VectorHistogram.from_catalogue(
            "modelwatch_prediction_latency_seconds", registry
        )
        self.delay = VectorHistogram.from_catalogue("modelwatch_processing_delay_seconds", registry)
        self.last_event = gauge("modelwatch_last_event_timestamp_seconds", registry)
        self.request_bytes = counter("modelwatch_request_bytes_total", registry)
        self.response_bytes = counter("modelwatch_response_bytes_total", registry)
        self.caps.on_forget(self.forget)

    def forget(self, model: str) -> None:
        """Remove every series of ``model`` (it has been dropped from the model registry)."""
        for metric in (self.predictions, self.errors, self.last_event, self.request_bytes,
                       self.response_bytes):  # fmt: skip
            remove_series(metric, "model", model)
        self.latency.remove_where(0, model)
        self.delay.remove_where(0, model)

    def observe(self, cols: PredictionColumns, now_s: float) -> None:
        """Account one batch (vectorised: a handful of numpy calls per batch)."""
        model, version = self.caps.model_version(cols.model, cols.model_version)
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
                    name = self.caps.error_type(model, version, name)
                    self.errors.labels(model, version, name).inc(count)
        elif by_status[1]:
            name = self.caps.error_type(model, version, "unknown")
            self.errors.labels(model, version, name).inc(int(by_status[1]))
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
