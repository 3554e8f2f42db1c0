"""Turn what the computations produce (detections, window stats) into outgoing records."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from schemas.codec import Codec
from schemas.columnar import PredictionColumns
from schemas.detection import Detection
from schemas.label_caps import caps_for
from schemas.metrics_catalogue import counter, remove_series
from schemas.topics import TopicNames
from stream_jobs.golden_checks import GoldenChecks
from stream_jobs.handler import Outgoing


class Poller(Protocol):
    def poll(self, now_s: float) -> list[Outgoing]: ...


class DetectionSink:
    """Encodes detections for the detections topic (keyed by model) and counts active ones."""

    def __init__(self, codec: Codec, topics: TopicNames, registry: CollectorRegistry) -> None:
        self.codec = codec
        self.topics = topics
        self.caps = caps_for(registry)
        self.active = counter("modelwatch_detections_total", registry)
        self.caps.on_forget(lambda model: remove_series(self.active, "model", model))

    def encode(self, detections: Iterable[Detection]) -> list[Outgoing]:
        out = []
        for d in detections:
            if d.active:
                self.active.labels(self.caps.model(d.model), str(d.kind)).inc()
            out.append(
                Outgoing(
                    self.topics.detections,
                    d.model.encode(),
                    self.codec.encode("Detection", d.to_record()),
                )
            )
        return out

    def encode_window_stats(self, stats: dict[str, Any]) -> Outgoing:
        return Outgoing(
            self.topics.window_stats,
            stats["model"].encode(),
            self.codec.encode("WindowStats", stats),
        )


class GoldenChecksStage:
    """Feeds batches to :class:`GoldenChecks` and publishes its verdicts every ``every_s``."""

    def __init__(self, checks: GoldenChecks, sink: DetectionSink, every_s: float = 5.0) -> None:
        self.checks = checks
        self.sink = sink
        checks.on_forget.append(sink.caps.forget)  # a forgotten model's series go too
        self.every_s = every_s
        self._last_s = 0.0

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> None:
        self.checks.observe(cols, time.time())

    def poll(self, now_s: float) -> list[Outgoing]:
        if now_s - self._last_s < self.every_s:
            return []
        self._last_s = now_s
        return self.sink.encode(self.checks.evaluate(now_s))
