"""Process metrics shared by the evaluator and the notifier.

Kafka clients, reading a topic to its end and following it live in :mod:`schemas.kafka`
(the one Kafka I/O module of every process).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from schemas.metrics_catalogue import build_info


def process_registry() -> CollectorRegistry:
    """A metrics registry with the standard process and platform collectors."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    build_info(registry)
    return registry
