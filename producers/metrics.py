"""The SDK's own Prometheus metrics, created once per registry.

Several publishers in one process share the metric objects of their registry (they differ
by the ``model`` label), so constructing a second publisher never raises "Duplicated
timeseries".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class SdkMetrics:
    published: Counter
    dropped: Counter
    send_latency: Histogram
    buffered: Gauge


_lock = threading.Lock()
_by_registry: dict[int, tuple[CollectorRegistry, SdkMetrics]] = {}


def sdk_metrics(registry: CollectorRegistry | None = None) -> SdkMetrics:
    """The SDK metrics registered in ``registry`` (the default registry when None)."""
    reg = REGISTRY if registry is None else registry
    with _lock:
        hit = _by_registry.get(id(reg))
        if hit is not None and hit[0] is reg:
            return hit[1]
        metrics = SdkMetrics(
            published=Counter(
                "modelwatch_sdk_events_published_total",
                "Events the broker acknowledged",
                ["model", "kind"],
                registry=reg,
            ),
            dropped=Counter(
                "modelwatch_sdk_events_dropped_total",
                "Events the SDK gave up on, by reason",
                ["model", "kind", "reason"],
                registry=reg,
            ),
            send_latency=Histogram(
                "modelwatch_sdk_send_latency_seconds",
                "Time from handing a batch to the Kafka client to its delivery report",
                ["model"],
                buckets=(
                    0.001,
                    0.0025,
                    0.005,
                    0.01,
                    0.025,
                    0.05,
                    0.1,
                    0.25,
                    0.5,
                    1,
                    2.5,
                    5,
                    10,
                    30,
                ),
                registry=reg,
            ),
            buffered=Gauge(
                "modelwatch_sdk_buffered_events",
                "Events held by the SDK: not yet sent, or sent and awaiting a delivery report",
                ["model"],
                registry=reg,
            ),
        )
        _by_registry[id(reg)] = (reg, metrics)
        return metrics
