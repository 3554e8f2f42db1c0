"""Prometheus metrics of the label join and model performance.

Counters are read at scrape time from the engine's **persisted** totals, so after a
restart they resume from what the store holds (never from zero, never double-counted by
a replay). Performance gauges show each model version's latest *merged* window: the
merge stage's :class:`~stream_jobs.performance.merger.PerformanceMerger` (``merged``) —
never one partition's or one worker's partial view. The
label delay histogram is vectorised (one ``observe_many`` per joined batch).

Names, labels and help texts are the catalogue's (``schemas/metrics_catalogue.py``, group
"performance").

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
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from schemas.label_caps import OTHER, LabelCaps, caps_for
from schemas.metrics_catalogue import family
from stream_jobs.vector_histogram import VectorHistogram

if TYPE_CHECKING:
    from stream_jobs.join.engine import JoinResult, LabelEngine

COUNTERS = (
    ("modelwatch_labels_joined_total", "joined"),
    ("modelwatch_orphan_labels_total", "orphan_labels"),
    ("modelwatch_orphan_predictions_total", "orphan_predictions"),
    ("modelwatch_duplicate_labels_total", "duplicates"),
    ("modelwatch_late_labels_total", "late_labels"),
    ("modelwatch_early_labels_total", "early"),
    ("modelwatch_duplicate_predictions_total", "duplicate_predictions"),
    ("modelwatch_valueless_labels_total", "valueless_labels"),
)


class LabelMetrics(Collector):
    """Names, help and labels come from :mod:`schemas.metrics_catalogue`; model and version
    names go through the registry's :class:`~schemas.label_caps.LabelCaps` (counters of the
    models past the cap add up under ``other``; their gauges are not exported)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        engine: LabelEngine,
        caps: LabelCaps | None = None,
        merged: Any = None,
    ) -> None:
        self.engine = engine
        self.merged = engine if merged is None else merged  # has ``latest_closed``
        self.caps = caps if caps is not None else caps_for(registry)
        self.delay = VectorHistogram.from_catalogue("modelwatch_label_delay_seconds", registry)
        self._forgotten: set[str] = set()  # dropped by the model registry, until labels come
        self.caps.on_forget(self.forget)
        registry.register(self)

    def forget(self, model: str) -> None:
        """Hide the model's series (the engine keeps its totals) until it joins labels again."""
        self._forgotten.add(model)
        self.delay.remove_where(0, model)

    def observe_join(self, result: JoinResult) -> None:
        for model, delays in result.delays_s.items():
            self._forgotten.discard(model)
            self.delay.observe_many((self.caps.model(model),), delays)

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        for _ in range(5):  # the engine may change its dicts while a scrape reads them
            try:
                models = list(e.models())
                totals = {m: e.totals(m) for m in models}
                closed = list(self.merged.latest_closed.items())
                break
            except RuntimeError:
                continue
        else:
            return
        forgotten = set(self._forgotten)
        models = [m for m in models if m not in forgotten]
        closed = [(key, doc) for key, doc in closed if key[0] not in forgotten]
        shown = {m: self.caps.model(m) for m in models}
        for name, key in COUNTERS:
            fam = family(name)
            summed: dict[str, float] = {}
            for m in models:
                summed[shown[m]] = summed.get(shown[m], 0.0) + float(totals[m][key])
            for m, value in summed.items():
                fam.add_metric([m], value)
            yield fam
        perf = family("modelwatch_model_performance")
        versus = family("modelwatch_performance_vs_reference")
        rate = family("modelwatch_label_join_ratio")
        latest: dict[str, tuple[int, float]] = {}
        for (model, version), doc in closed:
            model = self.caps.model(model)
            version = self.caps.version(model, version)
            if OTHER in (model, version):
                continue
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
        early = family("modelwatch_early_labels_waiting")
        early.add_metric([], float(len(e.early)))
        yield early

    def describe(self) -> Iterator[Metric]:
        return iter(())
