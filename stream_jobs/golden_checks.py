"""Service-level checks on golden signals: error rate, fallback rate, latency p99, no traffic.

Pure and clock-injected. Counts go into one-minute event-time buckets per model; each
:meth:`GoldenChecks.evaluate` looks at the last ``span_ms`` of event time and returns one
:class:`~schemas.detection.Detection` per (model, check) — active or not, so that the alert
lifecycle can both open and resolve. "No traffic" is judged on wall time since the model's
last batch, because an outage produces no event time at all.

The model registry forgets: a model whose last batch is more than ``forget_after_s`` of
**wall-clock** time ago (liveness, like "no traffic"; event time stops with the traffic, so
it cannot measure an absence) gets one last ``no_traffic`` verdict with ``active=False`` --
its alert resolves -- and is dropped; ``on_forget`` callbacks then remove its Prometheus
series (:meth:`schemas.label_caps.LabelCaps.forget`). A model must have sent
``no_traffic_min_events`` events in its life before its silence counts as an outage, so a
typo seen once never pages, and is forgotten after the TTL like any other.

>>> import numpy as np
>>> from schemas.columnar import PredictionColumns
>>> checks = GoldenChecks(GoldenChecksConfig(min_events=10))
>>> evs = [{"prediction_id": str(i), "model": "m", "model_version": "1",
...         "event_time_ms": 60_000, "latency_ms": 20.0,
...         "status": "error" if i < 3 else "ok"} for i in range(20)]
>>> checks.observe(PredictionColumns.from_events(evs), now_s=100.0)
>>> [(str(d.kind), d.active, round(d.value, 2)) for d in checks.evaluate(now_s=101.0)][:3]
[('no_traffic', False, 1.0), ('error_rate', True, 0.15), ('fallback_rate', False, 0.0)]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from schemas.columnar import PredictionColumns
from schemas.detection import Detection, DetectionKind

BUCKET_MS = 60_000
LATENCY_BOUNDS_MS = np.array([5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000], dtype=float)


class GoldenChecksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    span_ms: int = Field(5 * 60_000, gt=0)
    min_events: int = Field(100, ge=1)
    error_rate_max: float = 0.05
    fallback_rate_max: float = 0.10
    latency_p99_slo_ms: float = 250.0
    no_traffic_after_s: float = Field(30.0, gt=0)
    no_traffic_min_events: int = Field(
        10, ge=1, description="events a model must have sent before its silence pages"
    )
    forget_after_s: float = Field(
        3600.0, gt=0, description="wall-clock seconds without traffic before a model is forgotten"
    )


@dataclass
class _Bucket:
    count: int = 0
    errors: int = 0
    fallbacks: int = 0
    latency: np.ndarray = field(
        default_factory=lambda: np.zeros(LATENCY_BOUNDS_MS.size + 1, np.int64)
    )


@dataclass
class _ModelState:
    version: str
    last_seen_wall_s: float
    max_event_ms: int = 0
    events_seen: int = 0
    buckets: OrderedDict[int, _Bucket] = field(default_factory=OrderedDict)


def _quantile_from_buckets(counts: np.ndarray, q: float) -> float:
    total = counts.sum()
    if total == 0:
        return float("nan")
    idx = int(np.searchsorted(np.cumsum(counts), q * total, side="left"))
    return float(LATENCY_BOUNDS_MS[idx]) if idx < LATENCY_BOUNDS_MS.size else float("inf")


class GoldenChecks:
    def __init__(
        self,
        config: GoldenChecksConfig | None = None,
        on_forget: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config or GoldenChecksConfig()
        self.models: dict[str, _ModelState] = {}
        self.on_forget: list[Callable[[str], None]] = [on_forget] if on_forget else []

    def observe(self, cols: PredictionColumns, now_s: float) -> None:
        state = self.models.get(cols.model)
        if state is None:
            state = self.models[cols.model] = _ModelState(cols.model_version, now_s)
        state.version = cols.model_version
        state.last_seen_wall_s = now_s
        state.events_seen += cols.n
        state.max_event_ms = max(state.max_event_ms, int(cols.event_time_ms.max()))
        starts = cols.event_time_ms // BUCKET_MS * BUCKET_MS
        lat_idx = np.searchsorted(LATENCY_BOUNDS_MS, cols.latency_ms, side="left")
        for start in np.unique(starts).tolist():
            rows = starts == start
            bucket = state.buckets.get(start)
            if bucket is None:
                bucket = state.buckets[start] = _Bucket()
            status = cols.status[rows]
            bucket.count += int(rows.sum())
            bucket.errors += int((status == 1).sum())
            bucket.fallbacks += int((status == 2).sum())
            bucket.latency += np.bincount(lat_idx[rows], minlength=LATENCY_BOUNDS_MS.size + 1)
        horizon = state.max_event_ms - self.config.span_ms - BUCKET_MS
        for start in [s for s in state.buckets if s < horizon]:
            del state.buckets[start]

    def evaluate(self, now_s: float) -> list[Detection]:
        cfg = self.config
        out: list[Detection] = []
        forgotten: list[str] = []
        for model, st in self.models.items():
            since = st.max_event_ms - cfg.span_ms
            recent = [b for s, b in st.buckets.items() if s + BUCKET_MS > since]
            n = sum(b.count for b in recent)
            common = {
                "model": model,
                "model_version": st.version,
                "event_time_ms": st.max_event_ms,
                "window_start_ms": max(0, since),
                "window_end_ms": st.max_event_ms,
            }
            gap = now_s - st.last_seen_wall_s
            forget = gap > cfg.forget_after_s
            established = st.events_seen >= cfg.no_traffic_min_events
            details = {"events_in_span": str(n), "events_seen": str(st.events_seen)}
            if forget:
                details["forgotten"] = "true"
                forgotten.append(model)
            out.append(
                Detection(
                    kind=DetectionKind.NO_TRAFFIC,
                    subject="traffic",
                    detector="heartbeat_gap",
                    value=gap,
                    threshold=cfg.no_traffic_after_s,
                    active=gap > cfg.no_traffic_after_s and established and not forget,
                    details=details,
                    **common,
                )
            )
            if n < cfg.min_events and not forget:
                continue
            errors = sum(b.errors for b in recent) / max(n, 1)
            fallbacks = sum(b.fallbacks for b in recent) / max(n, 1)
            p99 = _quantile_from_buckets(sum(b.latency for b in recent), 0.99) if n else 0.0
            details = {"events": str(n)}
            checks = (
                (DetectionKind.ERROR_RATE, "error_rate", "rate_over_span", errors,
                 cfg.error_rate_max),
                (DetectionKind.FALLBACK_RATE, "fallback_rate", "rate_over_span", fallbacks,
                 cfg.fallback_rate_max),
                (DetectionKind.LATENCY_SLO, "latency_p99_ms", "p99_over_span", p99,
                 cfg.latency_p99_slo_ms),
            )  # fmt: skip
            out += [
                Detection(
                    kind=kind,
                    subject=subject,
                    detector=detector,
                    value=value,
                    threshold=bound,
                    active=value > bound and not forget,  # a forgotten model resolves
                    details=details,
                    **common,
                )
                for kind, subject, detector, value, bound in checks
            ]
        for model in forgotten:
            del self.models[model]
            for callback in self.on_forget:
                callback(model)
        return out
