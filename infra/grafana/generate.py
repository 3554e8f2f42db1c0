"""Grafana dashboards as code for modelwatch.

Run ``python infra/grafana/generate.py`` to (re)write ``infra/grafana/dashboards/*.json``;
``--check`` exits 1 when the committed files differ from what this script produces.
``--worker-job`` / ``--notifier-job`` set the Prometheus job names the panels select on
(the shipped files use the defaults, ``modelwatch-worker`` and ``modelwatch-notifier``).

Plain Python dictionaries in Grafana's dashboard JSON model (schemaVersion 39), so there is no
dependency to install and the output is byte-for-byte stable. Every dashboard has a
``datasource`` variable (any Prometheus data source, so the dashboards drop into an existing
Grafana) and the ``model`` and ``version`` variables. The expressions use the recording rules of
``infra/prometheus/rules/recording.yml`` where one exists.

``all_expressions()`` lists every panel and annotation query, and ``substitute()`` replaces the
Grafana variables so a test can run them against a live Prometheus.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARDS_DIR = HERE / "dashboards"

DS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'model=~"$model", version=~"$version"'  # selector for series with model and version
MSEL = 'model=~"$model"'  # selector for series with a model label only

Json = dict[str, Any]


@dataclass(frozen=True)
class Jobs:
    """Prometheus job names of the modelwatch processes (set at generation time)."""

    worker: str = "modelwatch-worker"
    notifier: str = "modelwatch-notifier"

    @property
    def any(self) -> str:
        return f"{self.worker}|{self.notifier}"


# ----------------------------------------------------------------------------- building blocks
@dataclass(frozen=True)
class Q:
    """One query of a panel: a PromQL expression and its legend."""

    expr: str
    legend: str = ""
    instant: bool = False


def _targets(queries: Iterable[Q]) -> list[Json]:
    out = []
    for i, q in enumerate(queries):
        out.append(
            {
                "datasource": DS,
                "editorMode": "code",
                "expr": q.expr,
                "instant": q.instant,
                "legendFormat": q.legend or "__auto",
                "range": not q.instant,
                "refId": chr(ord("A") + i),
            }
        )
    return out


def _thresholds(steps: list[tuple[float | None, str]]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


GREEN = [(None, "green")]


def timeseries(
    title: str,
    *queries: Q,
    unit: str = "short",
    description: str = "",
    w: int = 12,
    h: int = 8,
    stack: bool = False,
    thresholds: list[tuple[float | None, str]] | None = None,
    min_: float | None = None,
    max_: float | None = None,
    repeat: str | None = None,
) -> Json:
    defaults: Json = {
        "custom": {
            "drawStyle": "line",
            "fillOpacity": 10,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if stack else "none"},
            "thresholdsStyle": {"mode": "line" if thresholds else "off"},
        },
        "thresholds": _thresholds(thresholds or GREEN),
        "unit": unit,
    }
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    panel: Json = {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": _targets(queries),
        "gridPos": {"w": w, "h": h},
    }
    if repeat:
        panel["repeat"] = repeat
        panel["repeatDirection"] = "h"
        panel["maxPerRow"] = 3
    return panel


def stat(
    title: str,
    *queries: Q,
    unit: str = "short",
    description: str = "",
    w: int = 6,
    h: int = 4,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> Json:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {"thresholds": _thresholds(thresholds or GREEN), "unit": unit},
            "overrides": [],
        },
        "options": {
            "colorMode": "background",
            "graphMode": "area",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        },
        "targets": _targets(queries),
        "gridPos": {"w": w, "h": h},
    }


def state_timeline(title: str, *queries: Q, description: str = "", w: int = 24, h: int = 8) -> Json:
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "thresholds": _thresholds([(None, "green"), (1, "red")]),
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "ok", "color": "green"},
                            "1": {"text": "drift", "color": "red"},
                        },
                    }
                ],
                "unit": "short",
            },
            "overrides": [],
        },
        "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.9},
        "targets": _targets(queries),
        "gridPos": {"w": w, "h": h},
    }


def table(title: str, *queries: Q, description: str = "", w: int = 24, h: int = 8) -> Json:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
        "options": {"showHeader": True},
        "targets": _targets(queries),
        "transformations": [{"id": "labelsToFields", "options": {}}],
        "gridPos": {"w": w, "h": h},
    }


def row(title: str) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"w": 24, "h": 1},
    }


def annotation(name: str, expr: str, color: str, title: str, text: str) -> Json:
    return {
        "datasource": DS,
        "enable": True,
        "expr": expr,
        "iconColor": color,
        "name": name,
        "step": "1m",
        "titleFormat": title,
        "textFormat": text,
        "useValueForTime": False,
    }


def _query_var(name: str, label: str, query: str, *, multi: bool = True) -> Json:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def variables(extra: Iterable[Json] = ()) -> list[Json]:
    return [
        {
            "type": "datasource",
            "name": "datasource",
            "label": "Data source",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "options": [],
            "refresh": 1,
            "regex": "",
        },
        _query_var("model", "Model", "label_values(modelwatch_predictions_total, model)"),
        _query_var(
            "version",
            "Version",
            'label_values(modelwatch_predictions_total{model=~"$model"}, version)',
        ),
        *extra,
    ]


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Json]
    annotations: list[Json] = field(default_factory=list)
    extra_variables: list[Json] = field(default_factory=list)

    def to_json(self) -> Json:
        return {
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    },
                    *self.annotations,
                ]
            },
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "id": None,
            "links": [
                {
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                    "tags": ["modelwatch"],
                    "title": "modelwatch",
                    "type": "dashboards",
                }
            ],
            "panels": _layout(self.panels),
            "refresh": "30s",
            "schemaVersion": 39,
            "tags": ["modelwatch"],
            "templating": {"list": variables(self.extra_variables)},
            "time": {"from": "now-1h", "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
        }


def _layout(panels: list[Json]) -> list[Json]:
    """Give panels ids and grid positions, flowing left to right in rows of width 24."""
    out: list[Json] = []
    x = y = row_h = 0
    for i, src in enumerate(panels, start=1):
        panel = json.loads(json.dumps(src))  # deep copy
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if panel["type"] == "row" or x + w > 24:
            y += row_h
            x = row_h = 0
        panel["id"] = i
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        x += w
        row_h = max(row_h, h)
        if panel["type"] == "row":
            y += h
            x = row_h = 0
        out.append(panel)
    return out


# ----------------------------------------------------------------------------- the dashboards
def overview(jobs: Jobs = Jobs()) -> Dashboard:
    rate = f"model_version:modelwatch_predictions:rate5m{{{SEL}}}"
    return Dashboard(
        uid="modelwatch-overview",
        title="modelwatch / Overview",
        description="Golden signals per model and version: traffic, errors, latency, saturation.",
        panels=[
            stat("Predictions / s", Q(f"sum({rate})"), unit="reqps"),
            stat(
                "Error rate",
                Q(
                    "sum(model_version_status:modelwatch_predictions:rate5m"
                    f'{{{SEL}, status="error"}}) / sum({rate})'
                ),
                unit="percentunit",
                thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
            ),
            stat(
                "p99 latency (worst model)",
                Q(f"max(model_version:modelwatch_prediction_latency_seconds:p99_5m{{{SEL}}})"),
                unit="s",
                thresholds=[(None, "green"), (0.5, "red")],
            ),
            stat(
                "Alerts firing",
                Q(f"sum(modelwatch_alerts_firing{{{MSEL}}}) or vector(0)"),
                thresholds=[(None, "green"), (1, "red")],
            ),
            row("Traffic and errors"),
            timeseries(
                "Traffic by model and version",
                Q(rate, "{{model}} {{version}}"),
                unit="reqps",
            ),
            timeseries(
                "Predictions by status",
                Q(
                    f"model_version_status:modelwatch_predictions:rate5m{{{SEL}}}",
                    "{{model}} {{version}} {{status}}",
                ),
                unit="reqps",
                stack=True,
            ),
            timeseries(
                "Error and fallback ratio",
                Q(
                    f"model_version:modelwatch_prediction_errors:ratio_rate5m{{{SEL}}}",
                    "errors {{model}} {{version}}",
                ),
                Q(
                    f"model_version:modelwatch_prediction_fallbacks:ratio_rate5m{{{SEL}}}",
                    "fallbacks {{model}} {{version}}",
                ),
                unit="percentunit",
                thresholds=[(None, "green"), (0.05, "red")],
                min_=0,
            ),
            timeseries(
                "Errors by type",
                Q(
                    f"model_version_error_type:modelwatch_prediction_errors:rate5m{{{SEL}}}",
                    "{{model}} {{version}} {{error_type}}",
                ),
                unit="reqps",
                stack=True,
            ),
            row("Latency and saturation"),
            timeseries(
                "Prediction latency p50 / p90 / p99",
                Q(
                    f"model_version:modelwatch_prediction_latency_seconds:p50_5m{{{SEL}}}",
                    "p50 {{model}} {{version}}",
                ),
                Q(
                    f"model_version:modelwatch_prediction_latency_seconds:p90_5m{{{SEL}}}",
                    "p90 {{model}} {{version}}",
                ),
                Q(
                    f"model_version:modelwatch_prediction_latency_seconds:p99_5m{{{SEL}}}",
                    "p99 {{model}} {{version}}",
                ),
                unit="s",
                thresholds=[(None, "green"), (0.5, "red")],
            ),
            timeseries(
                "Mean latency",
                Q(
                    f"model_version:modelwatch_prediction_latency_seconds:mean5m{{{SEL}}}",
                    "{{model}} {{version}}",
                ),
                unit="s",
            ),
            timeseries(
                "Processing delay (now − event time) p50 / p99",
                Q(f"model:modelwatch_processing_delay_seconds:p50_5m{{{MSEL}}}", "p50 {{model}}"),
                Q(f"model:modelwatch_processing_delay_seconds:p99_5m{{{MSEL}}}", "p99 {{model}}"),
                unit="s",
            ),
            timeseries(
                "Time since the last event",
                Q(f"model:modelwatch_last_event_timestamp_seconds:age{{{MSEL}}}", "{{model}}"),
                unit="s",
                description="Wall-clock time minus the newest event time seen for the model.",
            ),
            timeseries(
                "Consumer lag by topic",
                Q("topic:modelwatch_consumer_lag:sum", "{{topic}}"),
                description="Messages not yet consumed, summed over partitions.",
            ),
        ],
    )


def drift(jobs: Jobs = Jobs()) -> Dashboard:
    return Dashboard(
        uid="modelwatch-drift",
        title="modelwatch / Drift",
        description="Per-feature drift against the reference profile, drift share, detections.",
        extra_variables=[
            _query_var(
                "feature",
                "Feature",
                'label_values(modelwatch_feature_drift_score{model=~"$model"}, feature)',
            )
        ],
        annotations=[
            annotation(
                "Drift detections",
                "sum by (model, kind) (increase(modelwatch_detections_total"
                f'{{{MSEL}, kind=~".*drift.*"}}[$__interval])) > 0',
                "orange",
                "{{model}}: {{kind}}",
                "detection {{kind}}",
            ),
            annotation(
                "Online detector detections",
                "sum by (model, feature, detector) (increase(modelwatch_detector_detections_total"
                f'{{{MSEL}, feature=~"$feature"}}[$__interval])) > 0',
                "purple",
                "{{model}} {{feature}}",
                "detector {{detector}}",
            ),
        ],
        panels=[
            stat(
                "Drift share (max over models)",
                Q(f"max(modelwatch_drift_share_ratio{{{MSEL}}})"),
                unit="percentunit",
                thresholds=[(None, "green"), (0.25, "orange"), (0.5, "red")],
            ),
            stat(
                "Features drifting",
                Q(f"sum(model:modelwatch_features_drifted:sum{{{MSEL}}})"),
                thresholds=[(None, "green"), (1, "orange")],
            ),
            stat(
                "Models with dataset drift",
                Q(f"sum(max by (model) (modelwatch_dataset_drift_detected{{{MSEL}}}))"),
                thresholds=[(None, "green"), (1, "red")],
            ),
            stat(
                "Late events / s",
                Q(f"sum(model:modelwatch_late_events:rate5m{{{MSEL}}})"),
                unit="reqps",
            ),
            row("Dataset"),
            timeseries(
                "Drift share",
                Q(f"max by (model) (modelwatch_drift_share_ratio{{{MSEL}}})", "{{model}}"),
                unit="percentunit",
                thresholds=[(None, "green"), (0.5, "red")],
                min_=0,
                max_=1,
            ),
            timeseries(
                "Prediction drift score",
                Q(
                    f"max by (model, test) (modelwatch_prediction_drift_score{{{MSEL}}})",
                    "prediction {{model}} {{test}}",
                ),
                description="Label (target) drift reaches you as `label_drift` detections "
                "(the Alerts dashboard), not as a score series.",
            ),
            state_timeline(
                "Drift verdict per feature",
                Q(
                    "max by (model, feature) (modelwatch_feature_drift_detected"
                    f'{{{MSEL}, feature=~"$feature"}})',
                    "{{model}} {{feature}}",
                ),
            ),
            row("Per feature"),
            timeseries(
                "Drift score: $feature",
                Q(
                    "max by (model, feature, test) (modelwatch_feature_drift_score"
                    f'{{{MSEL}, feature=~"$feature"}})',
                    "{{model}} {{test}}",
                ),
                w=8,
                repeat="feature",
                description="Per window, against the reference (KS, PSI, Wasserstein, "
                "Jensen-Shannon, chi-square).",
            ),
            timeseries(
                "Online detector detections (last hour)",
                Q(
                    "model_feature_detector:modelwatch_detector_detections:increase1h"
                    f'{{{MSEL}, feature=~"$feature"}}',
                    "{{model}} {{feature}} {{detector}}",
                ),
            ),
            row("Data quality"),
            timeseries(
                "Missing ratio",
                Q(
                    "max by (model, feature) (modelwatch_feature_missing_ratio"
                    f'{{{MSEL}, feature=~"$feature"}})',
                    "{{model}} {{feature}}",
                ),
                unit="percentunit",
            ),
            timeseries(
                "Out-of-range ratio",
                Q(
                    "max by (model, feature) (modelwatch_feature_out_of_range_ratio"
                    f'{{{MSEL}, feature=~"$feature"}})',
                    "{{model}} {{feature}}",
                ),
                unit="percentunit",
            ),
            timeseries(
                "Unseen categories / s",
                Q(
                    "sum by (model, feature) (rate(modelwatch_unseen_categories_total"
                    f'{{{MSEL}, feature=~"$feature"}}[$__rate_interval]))',
                    "{{model}} {{feature}}",
                ),
                unit="reqps",
            ),
            timeseries(
                "Events per window",
                Q(f"max by (model) (modelwatch_window_events{{{MSEL}}})", "{{model}}"),
            ),
        ],
    )


def performance(jobs: Jobs = Jobs()) -> Dashboard:
    perf = 'max by (model, version, metric) (modelwatch_model_performance{%s, metric=~"%s"})'
    return Dashboard(
        uid="modelwatch-performance",
        title="modelwatch / Performance",
        description="Model quality once ground-truth labels join their predictions.",
        annotations=[
            annotation(
                "Concept drift and performance detections",
                "sum by (model, kind) (increase(modelwatch_detections_total"
                f'{{{MSEL}, kind=~"concept_drift|performance_collapse|performance_drop|'
                'label_drift"}'
                "[$__interval])) > 0",
                "red",
                "{{model}}: {{kind}}",
                "detection {{kind}}",
            )
        ],
        panels=[
            stat(
                "Accuracy (worst model)",
                Q(f"min({perf % (SEL, 'accuracy')})"),
                unit="percentunit",
                thresholds=[(None, "red"), (0.8, "orange"), (0.9, "green")],
            ),
            stat(
                "Join rate (worst model)",
                Q(f"min(modelwatch_label_join_ratio{{{MSEL}}})"),
                unit="percentunit",
                thresholds=[(None, "red"), (0.5, "orange"), (0.9, "green")],
            ),
            stat(
                "Labels joined / s",
                Q(f"sum(model:modelwatch_labels_joined:rate5m{{{MSEL}}})"),
                unit="reqps",
            ),
            stat(
                "Label delay p90",
                Q(f"max(model:modelwatch_label_delay_seconds:p90_5m{{{MSEL}}})"),
                unit="s",
            ),
            row("Quality"),
            timeseries(
                "Classification: accuracy, F1, precision, recall, ROC AUC",
                Q(
                    perf % (SEL, "accuracy|f1|precision|recall|roc_auc"),
                    "{{model}} {{version}} {{metric}}",
                ),
                unit="percentunit",
                min_=0,
                max_=1,
            ),
            timeseries(
                "Regression: MAE, RMSE",
                Q(perf % (SEL, "mae|rmse"), "{{model}} {{version}} {{metric}}"),
            ),
            timeseries(
                "Log loss",
                Q(perf % (SEL, "log_loss"), "{{model}} {{version}}"),
            ),
            timeseries(
                "Change vs reference performance (window − reference)",
                Q(
                    "max by (model, version, metric) "
                    f"(modelwatch_performance_vs_reference{{{SEL}}})",
                    "{{model}} {{version}} {{metric}}",
                ),
                unit="percentunit",
            ),
            timeseries(
                "All performance metrics",
                Q(
                    f"max by (model, version, metric) (modelwatch_model_performance{{{SEL}}})",
                    "{{model}} {{version}} {{metric}}",
                ),
            ),
            row("Labels"),
            timeseries(
                "Label delay p50 / p90",
                Q(f"model:modelwatch_label_delay_seconds:p50_5m{{{MSEL}}}", "p50 {{model}}"),
                Q(f"model:modelwatch_label_delay_seconds:p90_5m{{{MSEL}}}", "p90 {{model}}"),
                unit="s",
            ),
            timeseries(
                "Join rate",
                Q(f"max by (model) (modelwatch_label_join_ratio{{{MSEL}}})", "{{model}}"),
                unit="percentunit",
                min_=0,
                max_=1,
            ),
            timeseries(
                "Labels joined / s",
                Q(f"model:modelwatch_labels_joined:rate5m{{{MSEL}}}", "{{model}}"),
                unit="reqps",
            ),
        ],
    )


def alerts(jobs: Jobs = Jobs()) -> Dashboard:
    def firing(severity: str) -> Q:
        return Q(f'sum(modelwatch_alerts_firing{{{MSEL}, severity="{severity}"}}) or vector(0)')

    return Dashboard(
        uid="modelwatch-alerts",
        title="modelwatch / Alerts",
        description="Alerts firing by severity (modelwatch notifier and Prometheus rules), "
        "notification delivery.",
        annotations=[
            annotation(
                "Prometheus alerts",
                'sum by (alertname, severity) (ALERTS{alertstate="firing"})',
                "red",
                "{{alertname}}",
                "severity {{severity}}",
            )
        ],
        panels=[
            stat("Critical firing", firing("critical"), thresholds=[(None, "green"), (1, "red")]),
            stat("Major firing", firing("major"), thresholds=[(None, "green"), (1, "orange")]),
            stat("Minor firing", firing("minor"), thresholds=[(None, "green"), (1, "yellow")]),
            stat(
                "Prometheus alerts firing",
                Q('count(ALERTS{alertstate="firing"}) or vector(0)'),
                thresholds=[(None, "green"), (1, "red")],
            ),
            row("Firing"),
            timeseries(
                "Alerts firing by severity",
                Q("severity:modelwatch_alerts_firing:sum", "{{severity}}"),
                stack=True,
            ),
            timeseries(
                "Alerts firing by model",
                Q(
                    f"sum by (model, severity) (modelwatch_alerts_firing{{{MSEL}}})",
                    "{{model}} {{severity}}",
                ),
                stack=True,
            ),
            timeseries(
                "Prometheus alerts firing by severity",
                Q('count by (severity) (ALERTS{alertstate="firing"})', "{{severity}}"),
                stack=True,
            ),
            timeseries(
                "Detections by kind (last hour)",
                Q(
                    f"model_kind:modelwatch_detections:increase1h{{{MSEL}}}",
                    "{{model}} {{kind}}",
                ),
            ),
            table(
                "Prometheus alerts now",
                Q('ALERTS{alertstate="firing"}', instant=True),
            ),
            row("Notifications"),
            timeseries(
                "Notifications / s by sink and outcome",
                Q("sink_outcome:modelwatch_notifications:rate5m", "{{sink}} {{outcome}}"),
                unit="reqps",
            ),
            timeseries(
                "Notifications dead-lettered",
                Q(
                    "sum by (sink) (increase(modelwatch_notification_dead_letters_total"
                    "[$__rate_interval]))",
                    "{{sink}}",
                ),
            ),
        ],
    )


def pipeline(jobs: Jobs = Jobs()) -> Dashboard:
    return Dashboard(
        uid="modelwatch-pipeline",
        title="modelwatch / Pipeline health",
        description="Throughput, consumer lag, processing delay, dead letters, rebalances, "
        "process resources of the workers and notifiers.",
        panels=[
            stat(
                "Workers up",
                Q(f'sum(up{{job="{jobs.worker}"}})'),
                thresholds=[(None, "red"), (1, "green")],
            ),
            stat(
                "Events / s",
                Q("sum(topic:modelwatch_events_processed:rate5m)"),
                unit="reqps",
            ),
            stat(
                "Consumer lag",
                Q("sum(topic:modelwatch_consumer_lag:sum)"),
                thresholds=[(None, "green"), (1000, "orange"), (100000, "red")],
            ),
            stat(
                "Dead letters / s",
                Q("sum(topic_error_kind:modelwatch_dead_letters:rate5m)"),
                unit="reqps",
                thresholds=[(None, "green"), (0.1, "orange")],
            ),
            row("Throughput"),
            timeseries(
                "Events processed / s by topic",
                Q("topic:modelwatch_events_processed:rate5m", "{{topic}}"),
                unit="reqps",
            ),
            timeseries(
                "Messages (batches) / s and events per batch",
                Q("topic:modelwatch_batches_processed:rate5m", "batches {{topic}}"),
                Q(
                    "topic:modelwatch_events_processed:rate5m"
                    " / topic:modelwatch_batches_processed:rate5m",
                    "events per batch {{topic}}",
                ),
            ),
            timeseries(
                "Events processed / s by worker",
                Q(
                    "sum by (instance) (rate(modelwatch_events_processed_total[$__rate_interval]))",
                    "{{instance}}",
                ),
                unit="reqps",
                stack=True,
            ),
            timeseries(
                "Windows closed / s",
                Q(
                    f"sum by (model) (rate(modelwatch_windows_closed_total{{{MSEL}}}"
                    "[$__rate_interval]))",
                    "{{model}}",
                ),
                unit="reqps",
            ),
            row("Lag and delay"),
            timeseries(
                "Consumer lag by partition",
                Q(
                    "sum by (topic, partition) (modelwatch_consumer_lag)",
                    "{{topic}} [{{partition}}]",
                ),
                stack=True,
            ),
            timeseries(
                "Processing delay p50 / p99",
                Q(f"model:modelwatch_processing_delay_seconds:p50_5m{{{MSEL}}}", "p50 {{model}}"),
                Q(f"model:modelwatch_processing_delay_seconds:p99_5m{{{MSEL}}}", "p99 {{model}}"),
                unit="s",
            ),
            row("Failures"),
            timeseries(
                "Dead letters / s by topic and reason",
                Q("topic_error_kind:modelwatch_dead_letters:rate5m", "{{topic}} {{error_kind}}"),
                unit="reqps",
                stack=True,
            ),
            timeseries(
                "Rebalances",
                Q(
                    "sum by (instance) (increase(modelwatch_rebalances_total[$__rate_interval]))",
                    "{{instance}}",
                ),
                Q("job:modelwatch_rebalances:increase1h", "last hour, {{job}}"),
            ),
            timeseries(
                "Late events / s",
                Q(f"model:modelwatch_late_events:rate5m{{{MSEL}}}", "{{model}}"),
                unit="reqps",
            ),
            timeseries(
                "Targets up",
                Q(f'up{{job=~"{jobs.any}"}}', "{{job}} {{instance}}"),
                min_=0,
                max_=1,
            ),
            row("Resources"),
            timeseries(
                "CPU (cores) by process",
                Q("instance:process_cpu_seconds:rate5m", "{{job}} {{instance}}"),
                unit="percentunit",
                thresholds=[(None, "green"), (0.9, "red")],
            ),
            timeseries(
                "Resident memory by process",
                Q(
                    f'process_resident_memory_bytes{{job=~"{jobs.any}"}}',
                    "{{job}} {{instance}}",
                ),
                unit="bytes",
            ),
        ],
    )


DASHBOARDS: dict[str, Callable[[Jobs], Dashboard]] = {
    "overview": overview,
    "drift": drift,
    "performance": performance,
    "alerts": alerts,
    "pipeline": pipeline,
}


# ----------------------------------------------------------------------------- outputs
def render(name: str, jobs: Jobs = Jobs()) -> str:
    """The JSON text of one dashboard, exactly as committed (with the default jobs)."""
    return (
        json.dumps(DASHBOARDS[name](jobs).to_json(), indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
    )


def all_expressions(jobs: Jobs = Jobs()) -> list[tuple[str, str, str]]:
    """(dashboard, panel or annotation title, PromQL expression) for every query."""
    out: list[tuple[str, str, str]] = []
    for name, build in DASHBOARDS.items():
        board = build(jobs)
        for panel in board.panels:
            for target in panel.get("targets", []):
                out.append((name, panel["title"], target["expr"]))
        for ann in board.annotations:
            out.append((name, f"annotation: {ann['name']}", ann["expr"]))
    return out


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, variable, Grafana ``label_values(...)`` query) for every query variable."""
    out = []
    for name, build in DASHBOARDS.items():
        for var in variables(build(Jobs()).extra_variables):
            if var["type"] == "query":
                out.append((name, var["name"], var["definition"]))
    return out


DEFAULT_VALUES: dict[str, str] = {
    "model": ".*",
    "version": ".*",
    "feature": ".*",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "5m",
}


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace Grafana variables (``$model``, ``${model}``, ``$__rate_interval``...) in ``expr``."""
    table = {**DEFAULT_VALUES, **(values or {})}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in table:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return table[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def write(directory: Path = DASHBOARDS_DIR, jobs: Jobs = Jobs()) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DASHBOARDS:
        path = directory / f"{name}.json"
        path.write_text(render(name, jobs), encoding="utf-8")
        paths.append(path)
    return paths


def stale(directory: Path = DASHBOARDS_DIR, jobs: Jobs = Jobs()) -> list[str]:
    """Names of dashboards whose file in ``directory`` differs from the generator's output."""
    out = []
    for name in DASHBOARDS:
        path = directory / f"{name}.json"
        if not path.exists() or path.read_text(encoding="utf-8") != render(name, jobs):
            out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    parser.add_argument("--out", type=Path, default=DASHBOARDS_DIR)
    parser.add_argument("--list", action="store_true", help="print every panel expression")
    parser.add_argument("--worker-job", default=Jobs.worker, help="job name of the workers")
    parser.add_argument("--notifier-job", default=Jobs.notifier,
                        help="job name of the alerting processes (evaluate, notify)")  # fmt: skip
    args = parser.parse_args(argv)
    jobs = Jobs(args.worker_job, args.notifier_job)
    if args.list:
        for board, panel, expr in all_expressions(jobs):
            print(f"{board}\t{panel}\t{expr}")
        return 0
    if args.check:
        bad = stale(args.out, jobs)
        for name in bad:
            print(
                f"{args.out / (name + '.json')} is stale: run python infra/grafana/generate.py",
                file=sys.stderr,
            )
        return 1 if bad else 0
    for path in write(args.out, jobs):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
