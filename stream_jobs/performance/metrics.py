"""Prometheus metrics of the label join and model performance.

Counters are read at scrape time from the engine's **persisted** totals, so after a
restart they resume from what the store holds (never from zero, never double-counted by
a replay). Performance gauges show each model version's latest *closed* window. The
label delay histogram is vectorised (one ``observe_many`` per joined batch).

=========================================================  =========  ======================
metric                                                     type       labels
=========================================================  =========  ======================
``modelwatch_labels_joined_total``                         counter    model
``modelwatch_orphan_labels_total``                         counter    model
``modelwatch_orphan_predictions_total``                    counter    model
``modelwatch_duplicate_labels_total``                      counter    model
``modelwatch_late_labels_total``                           counter    model
``modelwatch_early_labels_total``                          counter    model
``modelwatch_duplicate_predictions_total``                 counter    model
``modelwatch_valueless_labels_total``                      counter    model
``modelwatch_label_delay_seconds``                         histogram  model
``modelwatch_model_performance``                           gauge      model, version, metric
``modelwatch_performance_vs_reference``                    gauge      model, version, metric
``modelwatch_join_rate``                                   gauge      model
``modelwatch_early_labels_waiting``                        gauge      (none)
=========================================================  =========  ======================

>>> import numpy as np
>>> from prometheus_client import CollectorRegistry, generate_latest
>>> from stream_jobs.join.config import LabelConfig
>>> from stream_jobs.join.engine import JoinResult, LabelEngine
>>> from stream_jobs.join.store import MemoryStore
>>> engine = LabelEngine(LabelConfig(), MemoryStore())
>>> engine._bump("m", "joined", 5, set())
>>> reg = CollectorRegistry()
>>> lm = LabelMetrics(reg, engine)
>>> lm.observe_join(JoinResult(joined=2, delays_s={"m": np.array([3.0, 700.0])}))
>>> text = generate_latest(reg).decode()
>>> 'modelwatch_labels_joined_total{model="m"} 5.0' in text
True
>>> 'modelwatch_label_delay_seconds_count{model="m"} 2.0' in text
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_jobs.vector_histogram import DELAY_BUCKETS, VectorHistogram

if TYPE_CHECKING:
    from stream_jobs.join.engine import JoinResult, LabelEngine

LABEL_DELAY_BUCKETS = DELAY_BUCKETS + (4 * 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)
COUNTERS = (
    ("modelwatch_labels_joined", "Labels joined to their prediction", "joined"),
    (
        "modelwatch_orphan_labels",
        "Labels whose prediction never came within the TTL",
        "orphan_labels",
    ),
    (
        "modelwatch_orphan_predictions",
        "Predictions whose label never came (TTL)",
        "orphan_predictions",
    ),
    (
        "modelwatch_duplicate_labels",
        "Labels seen again for an already-labelled prediction",
        "duplicates",
    ),
    ("modelwatch_late_labels", "Labels joined after their window closed", "late_labels"),
    (
        "modelwatch_early_labels",
        "Labels read before their prediction (they wait on disk until it comes)",
        "early",
    ),
    (
        "modelwatch_duplicate_predictions",
        "Predictions whose (model, prediction_id) was already pending or joined (ignored: "
        "the first write wins)",
        "duplicate_predictions",
    ),
    (
        "modelwatch_valueless_labels",
        "Labels with neither a class nor a finite value (dead-lettered)",
        "valueless_labels",
    ),
)


class LabelMetrics(Collector):
    def __init__(self, registry: CollectorRegistry, engine: LabelEngine) -> None:
        self.engine = engine
        self.delay = VectorHistogram(
            "modelwatch_label_delay_seconds",
            "Label event time minus prediction event time",
            ["model"],
            LABEL_DELAY_BUCKETS,
            registry=registry,
        )
        registry.register(self)

    def observe_join(self, result: JoinResult) -> None:
        for model, delays in result.delays_s.items():
            self.delay.observe_many((model,), delays)

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        for _ in range(5):  # the engine may change its dicts while a scrape reads them
            try:
                models = list(e.models())
                totals = {m: e.totals(m) for m in models}
                closed = list(e.latest_closed.items())
                break
            except RuntimeError:
                continue
        else:
            return
        for name, doc, key in COUNTERS:
            fam = CounterMetricFamily(name, doc, labels=["model"])
            for m in models:
                fam.add_metric([m], float(totals[m][key]))
            yield fam
        perf = GaugeMetricFamily(
            "modelwatch_model_performance",
            "Performance of the latest closed window (by prediction time)",
            labels=["model", "version", "metric"],
        )
        rate = GaugeMetricFamily(
            "modelwatch_join_rate",
            "Joined labels / predictions, latest closed window",
            labels=["model"],
        )
        versus = GaugeMetricFamily(
            "modelwatch_performance_vs_reference",
            "Latest closed window's metric minus the reference profile's (labelled data)",
            labels=["model", "version", "metric"],
        )
        latest: dict[str, tuple[int, float]] = {}
        for (model, version), doc in closed:
            for metric, value in doc["performance"].items():
                if isinstance(value, float) and math.isfinite(value):
                    perf.add_metric([model, version, metric], value)
            for metric, value in (doc.get("performance_delta") or {}).items():
                versus.add_metric([model, version, metric], value)
            jr = doc["performance"].get("join_rate")
            if jr is not None and doc["window_end_ms"] >= latest.get(model, (-1, 0.0))[0]:
                latest[model] = (doc["window_end_ms"], jr)
        for model, (_, jr) in latest.items():
            rate.add_metric([model], jr)
        yield perf
        yield versus
        yield rate
        early = GaugeMetricFamily(
            "modelwatch_early_labels_waiting", "Labels waiting for their prediction"
        )
        early.add_metric([], float(len(e.early)))
        yield early

    def describe(self) -> Iterator[Metric]:
        return iter(())
