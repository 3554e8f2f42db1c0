"""The demo's terminal view: golden signals, drift and alerts from a worker's /metrics page."""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.table import Table
from rich.text import Text

Samples = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]
SEVERITY_STYLE = {"critical": "bold white on red", "major": "bold red", "minor": "yellow"}


def scrape(
    url: str, timeout_s: float = 2.0
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a /metrics page as ``{(name, sorted labels): value}``."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - loopback only
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus-style quantile from cumulative (upper bound, count) buckets.

    >>> histogram_quantile(0.5, [(0.1, 10.0), (0.2, 20.0), (math.inf, 20.0)])
    0.1
    >>> round(histogram_quantile(0.75, [(0.1, 10.0), (0.2, 20.0), (math.inf, 20.0)]), 3)
    0.15
    """
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


@dataclass
class ModelRow:
    model: str
    version: str
    rate: float
    error_rate: float
    fallback_rate: float
    p50_ms: float
    p99_ms: float
    total: float


def by_labels(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for (n, labels), v in samples.items():
        if n == name:
            d = dict(labels)
            out[tuple(d.get(k, "") for k in keys)] += v
    return out


def golden_rows(prev: Samples, cur: Samples, interval_s: float) -> list[ModelRow]:
    """Per model/version rates over the interval between two scrapes."""
    now = by_labels(cur, "modelwatch_predictions_total", "model", "version", "status")
    before = by_labels(prev, "modelwatch_predictions_total", "model", "version", "status")
    bucket_now = by_labels(
        cur, "modelwatch_prediction_latency_seconds_bucket", "model", "version", "le"
    )
    bucket_before = by_labels(
        prev, "modelwatch_prediction_latency_seconds_bucket", "model", "version", "le"
    )
    rows = []
    for model, version in sorted({(m, v) for m, v, _ in now}):
        delta = {
            s: now.get((model, version, s), 0) - before.get((model, version, s), 0)
            for s in ("ok", "error", "fallback")
        }
        n = sum(delta.values())
        buckets = [
            (float(le), bucket_now[(m, v, le)] - bucket_before.get((m, v, le), 0.0))
            for (m, v, le) in bucket_now
            if (m, v) == (model, version)
        ]
        rows.append(
            ModelRow(
                model,
                version,
                n / interval_s if interval_s > 0 else 0.0,
                delta["error"] / n if n else 0.0,
                delta["fallback"] / n if n else 0.0,
                histogram_quantile(0.5, buckets) * 1000,
                histogram_quantile(0.99, buckets) * 1000,
                sum(now.get((model, version, s), 0) for s in ("ok", "error", "fallback")),
            )
        )
    return rows


def drift_rows(cur: Samples) -> list[tuple[str, str, float]]:
    """(model, feature, score) of every feature whose latest closed window is judged drifted."""
    detected = by_labels(cur, "modelwatch_feature_drift_detected", "model", "feature")
    scores = by_labels(cur, "modelwatch_feature_drift_score", "model", "feature", "test")
    out = []
    for (model, feature), flag in sorted(detected.items()):
        if flag >= 1:
            best = max(
                (v for (m, f, _), v in scores.items() if (m, f) == (model, feature)), default=0.0
            )
            out.append((model, feature, best))
    return out


def render(
    rows: list[ModelRow],
    drifted: list[tuple[str, str, float]],
    drift_share: dict[tuple[str, ...], float],
    alerts: list[dict],
    metrics_url: str,
) -> Group:
    golden = Table(title="Golden signals (last interval)", expand=True)
    for col in ("model", "version", "events/s", "p50 ms", "p99 ms", "errors", "fallbacks", "total"):
        golden.add_column(col, justify="right" if col not in ("model", "version") else "left")
    for r in rows:
        err_style = "red" if r.error_rate > 0.05 else ""
        golden.add_row(
            r.model,
            r.version,
            f"{r.rate:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            Text(f"{r.error_rate:.1%}", style=err_style),
            f"{r.fallback_rate:.1%}",
            f"{r.total:,.0f}",
        )
    drift = Table(title="Drift (latest closed window)", expand=True)
    for col in ("model", "feature", "score", "drift share"):
        drift.add_column(col)
    for model, feature, score in drifted:
        share = drift_share.get((model,), math.nan)
        drift.add_row(model, Text(feature, style="bold yellow"), f"{score:.3f}", f"{share:.2f}")
    if not drifted:
        drift.add_row("-", Text("no drifted feature", style="green"), "", "")
    alert_table = Table(title="Alerts (newest first)", expand=True)
    for col in ("severity", "status", "model", "kind", "subject", "value", "summary"):
        alert_table.add_column(
            col, no_wrap=True, overflow="ellipsis", ratio=3 if col == "summary" else None
        )
    for a in alerts[:12]:
        style = (
            SEVERITY_STYLE.get(a.get("severity", ""), "")
            if a.get("status") == "firing"
            else "green"
        )
        alert_table.add_row(
            Text(a.get("severity", ""), style=style),
            a.get("status", ""),
            a.get("model", ""),
            a.get("kind", ""),
            a.get("subject", ""),
            f"{a.get('value', 0):.3g}",
            a.get("summary", "")[:70],
        )
    footer = Text(f"metrics: {metrics_url}    Ctrl-C stops everything", style="dim")
    return Group(golden, drift, alert_table, footer)
