"""A Prometheus histogram that takes a whole numpy array per call.

``prometheus_client.Histogram.observe`` costs ~1 µs per value in Python; a batch of 500
latencies would cost more than decoding it. This collector bins the array with one
``np.searchsorted`` + ``np.bincount`` and exports the usual ``_bucket``/``_sum``/``_count``.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> reg = CollectorRegistry()
>>> h = VectorHistogram("demo_seconds", "demo", ["model"], buckets=(0.1, 1.0), registry=reg)
>>> h.observe_many(("m",), np.array([0.05, 0.1, 0.5, 3.0]))
>>> text = generate_latest(reg).decode()
>>> 'demo_seconds_bucket{le="0.1",model="m"} 2.0' in text
True
>>> 'demo_seconds_count{model="m"} 4.0' in text
True
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from schemas.metrics_catalogue import spec


class VectorHistogram(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self.bounds = np.asarray(sorted(buckets), dtype=np.float64)
        self._counts: dict[tuple[str, ...], np.ndarray] = {}
        self._sums: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    @classmethod
    def from_catalogue(cls, name: str, registry: CollectorRegistry | None) -> VectorHistogram:
        s = spec(name)
        if s.type != "histogram":
            raise TypeError(f"{name} is a {s.type} in the catalogue, not a histogram")
        return cls(s.name, s.help, s.labels, s.buckets, registry=registry)

    def remove_where(self, index: int, value: str) -> None:
        """Drop every series whose ``index``-th label value is ``value``."""
        with self._lock:
            for key in [k for k in self._counts if k[index] == value]:
                del self._counts[key]
                del self._sums[key]

    def observe_many(self, labels: tuple[str, ...], values: np.ndarray) -> None:
        """Add every finite value of ``values`` (NaN/inf are ignored) under ``labels``."""
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        idx = np.searchsorted(self.bounds, values, side="left")
        counts = np.bincount(idx, minlength=self.bounds.size + 1)
        total = float(values.sum())
        with self._lock:
            if labels in self._counts:
                self._counts[labels] += counts
                self._sums[labels] += total
            else:
                self._counts[labels] = counts.astype(np.int64)
                self._sums[labels] = total

    def count(self, labels: tuple[str, ...]) -> int:
        with self._lock:
            c = self._counts.get(labels)
            return 0 if c is None else int(c.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        with self._lock:
            snapshot = [(k, v.copy(), self._sums[k]) for k, v in self._counts.items()]
        for labels, counts, total in snapshot:
            cumulative = np.cumsum(counts)
            buckets = [
                (repr(float(b)), float(c))
                for b, c in zip(self.bounds, cumulative[:-1], strict=True)
            ]
            buckets.append(("+Inf", float(cumulative[-1])))
            family.add_metric(list(labels), buckets, total)
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
