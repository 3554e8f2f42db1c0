"""Metrics about the pipeline itself: throughput, dead letters, lag, rebalances."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from schemas.metrics_catalogue import build_info, counter, gauge


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = counter("modelwatch_events_processed_total", registry)
        self.batches = counter("modelwatch_batches_processed_total", registry)
        self.dead_letters = counter("modelwatch_dead_letters_total", registry)
        self.lag = gauge("modelwatch_consumer_lag", registry)
        self.outputs_pending = gauge("modelwatch_outputs_pending", registry)
        self.output_polls = counter("modelwatch_output_polls_total", registry)
        self.rebalances = counter("modelwatch_rebalances_total", registry)
        self.build_info = build_info(registry)
