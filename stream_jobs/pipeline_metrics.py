"""Metrics about the pipeline itself: throughput, dead letters, lag, rebalances."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "modelwatch_events_processed",
            "Events (rows) decoded and processed, by source topic.",
            ["topic"],
            registry=registry,
        )
        self.batches = Counter(
            "modelwatch_batches_processed",
            "Kafka records (single events or columnar batches) processed, by source topic.",
            ["topic"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "modelwatch_dead_letters",
            "Records sent to the dead-letter topic, by source topic and error kind.",
            ["topic", "error_kind"],
            registry=registry,
        )
        self.lag = Gauge(
            "modelwatch_consumer_lag",
            "Messages between the last processed offset and the partition's high watermark.",
            ["topic", "partition"],
            registry=registry,
        )
        self.outputs_pending = Gauge(
            "modelwatch_outputs_pending",
            "Records the worker has computed (window stats, detections, dead letters) and the "
            "broker has not acknowledged yet.",
            registry=registry,
        )
        self.output_polls = Counter(
            "modelwatch_output_polls",
            "Completed runs of the worker's output poll (windows closed, detections judged and "
            "sent): one that started after the last input was processed means all is out.",
            registry=registry,
        )
        self.rebalances = Counter(
            "modelwatch_rebalances",
            "Consumer-group rebalances seen by this worker.",
            registry=registry,
        )
