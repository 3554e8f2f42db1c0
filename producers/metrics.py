"""The SDK's own Prometheus metrics, created once per registry.

Several publishers in one process share the metric objects of their registry (they differ
by the ``model`` label), so constructing a second publisher never raises "Duplicated
timeseries". Names, labels and buckets come from :mod:`schemas.metrics_catalogue`. The
``model`` label is not capped here: a publisher's model is chosen once, by the process that
embeds the SDK, not by the events it sends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from schemas.metrics_catalogue import counter, gauge, histogram


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
            published=counter("modelwatch_sdk_events_published_total", reg),
            dropped=counter("modelwatch_sdk_events_dropped_total", reg),
            send_latency=histogram("modelwatch_sdk_send_latency_seconds", reg),
            buffered=gauge("modelwatch_sdk_buffered_events", reg),
        )
        _by_registry[id(reg)] = (reg, metrics)
        return metrics
