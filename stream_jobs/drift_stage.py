"""Adapter between the worker and the pure :class:`~stream_jobs.drift.engine.DriftEngine`:
feeds it batches and references, publishes closed windows and detections, sets metrics."""

from __future__ import annotations

import logging
from typing import Any

from schemas.columnar import PredictionColumns
from stream_jobs.drift.engine import DriftEngine
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.handler import Outgoing
from stream_jobs.outputs import DetectionSink

log = logging.getLogger("modelwatch.drift")


class DriftStage:
    def __init__(
        self,
        engine: DriftEngine,
        metrics: DriftMetrics,
        sink: DetectionSink,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.sink = sink

    def set_reference(self, profile: dict[str, Any]) -> None:
        self.engine.set_reference(profile)

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> None:
        self.metrics.record_late(cols.model, self.engine.observe(partition, offset, cols))

    def poll(self, now_s: float) -> list[Outgoing]:
        out: list[Outgoing] = []
        for window in self.engine.poll_closed():
            self.metrics.record_window(window)
            out.append(self.sink.encode_window_stats(window.stats))
            out += self.sink.encode(window.detections)
        firings = self.engine.poll_detector_firings()
        for d in firings:
            self.metrics.record_detection(d)
        out += self.sink.encode(firings)
        return out
