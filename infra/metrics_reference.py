"""The metrics modelwatch exports: one list, rendered as the README's "Metrics reference".

This is the stable contract that dashboards (``infra/grafana``), recording and alerting rules
(``infra/prometheus/rules``) and users rely on. Tests check that every metric the rules and
dashboards use is listed here, and the Prometheus integration test's stand-in exporter builds
its metrics from this list.

Run ``python infra/metrics_reference.py`` to print the Markdown table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

WORKER = "worker"
NOTIFIER = "notifier"  # the alerting processes: `modelwatch evaluate` and `modelwatch notify`
PROCESS = "process"

JOBS = {WORKER: "modelwatch-worker", NOTIFIER: "modelwatch-notifier"}


@dataclass(frozen=True)
class Metric:
    name: str
    type: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str
    component: str = WORKER
    group: str = "golden signals"

    @property
    def series_names(self) -> tuple[str, ...]:
        """Names of the time series Prometheus stores for this metric."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


def _m(name: str, type_: str, labels: str, help_: str, **kw: str) -> Metric:
    return Metric(name, type_, tuple(x for x in labels.split(",") if x), help_, **kw)


METRICS: tuple[Metric, ...] = (
    # golden signals
    _m(
        "modelwatch_predictions_total",
        "counter",
        "model,version,status",
        "Predictions seen, by status (ok, error, fallback).",
    ),
    _m(
        "modelwatch_prediction_errors_total",
        "counter",
        "model,version,error_type",
        "Failed predictions by error type.",
    ),
    _m(
        "modelwatch_prediction_latency_seconds",
        "histogram",
        "model,version",
        "Model-server latency of a prediction (buckets 5 ms .. 10 s).",
    ),
    _m(
        "modelwatch_processing_delay_seconds",
        "histogram",
        "model",
        "Processing delay: wall-clock time at processing minus event time.",
    ),
    _m(
        "modelwatch_last_event_timestamp_seconds",
        "gauge",
        "model,version",
        "Largest event time seen (Unix seconds).",
    ),
    Metric(
        "modelwatch_request_bytes_total",
        "counter",
        ("model", "version"),
        "Request payload bytes reported by the model server.",
    ),
    Metric(
        "modelwatch_response_bytes_total",
        "counter",
        ("model", "version"),
        "Response payload bytes reported by the model server.",
    ),
    # pipeline
    _m(
        "modelwatch_consumer_lag",
        "gauge",
        "topic,partition",
        "Messages between the committed offset and the end of the partition.",
        group="pipeline",
    ),
    _m(
        "modelwatch_dead_letters_total",
        "counter",
        "topic,error_kind",
        "Events sent to the dead-letter topic, by source topic and reason.",
        group="pipeline",
    ),
    _m(
        "modelwatch_events_processed_total",
        "counter",
        "topic",
        "Events processed (a batch counts its events).",
        group="pipeline",
    ),
    _m(
        "modelwatch_batches_processed_total",
        "counter",
        "topic",
        "Messages (single events or batches) processed.",
        group="pipeline",
    ),
    _m(
        "modelwatch_rebalances_total",
        "counter",
        "",
        "Consumer-group rebalances seen by this worker.",
        group="pipeline",
    ),
    # drift and data quality
    _m(
        "modelwatch_feature_drift_score",
        "gauge",
        "model,feature,test",
        "Drift score of a feature in the latest closed window against the reference.",
        group="drift",
    ),
    _m(
        "modelwatch_feature_drift_detected",
        "gauge",
        "model,feature",
        "1 while the latest closed window is judged drifted for the feature, else 0.",
        group="drift",
    ),
    _m(
        "modelwatch_drift_share",
        "gauge",
        "model",
        "Fraction of features judged drifted in the latest closed window.",
        group="drift",
    ),
    _m(
        "modelwatch_dataset_drift_detected",
        "gauge",
        "model",
        "1 while the drift share is at or above its threshold, else 0.",
        group="drift",
    ),
    _m(
        "modelwatch_prediction_drift_score",
        "gauge",
        "model,test",
        "Drift score of the prediction distribution against the reference.",
        group="drift",
    ),
    _m(
        "modelwatch_label_drift_score",
        "gauge",
        "model,test",
        "Drift score of the label (target) distribution against the reference.",
        group="drift",
    ),
    _m(
        "modelwatch_detector_detections_total",
        "counter",
        "model,feature,detector",
        "Online detector (ADWIN, Page-Hinkley, KSWIN, DDM...) detections.",
        group="drift",
    ),
    _m(
        "modelwatch_feature_missing_ratio",
        "gauge",
        "model,feature",
        "Fraction of missing values of a feature in the latest closed window.",
        group="drift",
    ),
    _m(
        "modelwatch_feature_out_of_range_ratio",
        "gauge",
        "model,feature",
        "Fraction of values outside the reference range in the latest closed window.",
        group="drift",
    ),
    _m(
        "modelwatch_unseen_categories_total",
        "counter",
        "model,feature",
        "Categorical values never seen in the reference.",
        group="drift",
    ),
    _m(
        "modelwatch_window_events",
        "gauge",
        "model",
        "Events in the latest closed window.",
        group="drift",
    ),
    _m(
        "modelwatch_late_events_total",
        "counter",
        "model",
        "Events later than the allowed lateness (counted, not dropped silently).",
        group="drift",
    ),
    _m(
        "modelwatch_windows_closed_total",
        "counter",
        "model",
        "Windows closed and published.",
        group="drift",
    ),
    _m(
        "modelwatch_features_not_exported",
        "gauge",
        "model",
        "Features left out of per-feature series by the cardinality cap.",
        group="drift",
    ),
    # performance
    _m(
        "modelwatch_labels_joined_total",
        "counter",
        "model",
        "Labels joined to their prediction.",
        group="performance",
    ),
    _m(
        "modelwatch_orphan_labels_total",
        "counter",
        "model",
        "Labels whose prediction never came within the TTL (dead-lettered).",
        group="performance",
    ),
    _m(
        "modelwatch_orphan_predictions_total",
        "counter",
        "model",
        "Predictions whose label never came within the TTL.",
        group="performance",
    ),
    _m(
        "modelwatch_duplicate_labels_total",
        "counter",
        "model",
        "Labels seen again for an already joined prediction (counted once).",
        group="performance",
    ),
    _m(
        "modelwatch_late_labels_total",
        "counter",
        "model",
        "Labels joined after their performance window was closed.",
        group="performance",
    ),
    _m(
        "modelwatch_early_labels_total",
        "counter",
        "model",
        "Labels read before their prediction; they wait on disk until it comes (none is "
        "dropped for being early).",
        group="performance",
    ),
    _m(
        "modelwatch_duplicate_predictions_total",
        "counter",
        "model",
        "Predictions whose (model, prediction_id) was already pending or joined: ignored, "
        "the first write wins.",
        group="performance",
    ),
    _m(
        "modelwatch_valueless_labels_total",
        "counter",
        "model",
        "Labels with neither a class nor a finite value: dead-lettered, the prediction "
        "stays free for its real label.",
        group="performance",
    ),
    _m(
        "modelwatch_label_partition_pauses_total",
        "counter",
        "",
        "Label partitions paused because their event time ran ahead of their prediction "
        "partition's (the two topics are read in step).",
        group="performance",
    ),
    _m(
        "modelwatch_label_partitions_paused",
        "gauge",
        "",
        "Label partitions paused now, waiting for their predictions to catch up.",
        group="performance",
    ),
    _m(
        "modelwatch_early_labels_waiting",
        "gauge",
        "",
        "Labels waiting for their prediction to arrive.",
        group="performance",
    ),
    _m(
        "modelwatch_model_performance",
        "gauge",
        "model,version,metric",
        "Performance of the latest closed window (accuracy, f1, precision, recall, log_loss, "
        "roc_auc, mae, rmse...).",
        group="performance",
    ),
    _m(
        "modelwatch_performance_vs_reference",
        "gauge",
        "model,version,metric",
        "Latest closed window's metric minus the reference profile's (needs a reference "
        "built with --label-col and --prediction-col).",
        group="performance",
    ),
    _m(
        "modelwatch_label_delay_seconds",
        "histogram",
        "model",
        "Delay between a prediction and its label (event time).",
        group="performance",
    ),
    _m(
        "modelwatch_join_rate",
        "gauge",
        "model",
        "Fraction of predictions with a joined label.",
        group="performance",
    ),
    _m(
        "modelwatch_detections_total",
        "counter",
        "model,kind,severity",
        "Detections handed to the alert policy.",
        group="detections",
    ),
    # notifier
    _m(
        "modelwatch_alerts_firing",
        "gauge",
        "model,severity",
        "Alerts firing now.",
        component=NOTIFIER,
        group="alerts",
    ),
    _m(
        "modelwatch_notifications_total",
        "counter",
        "sink,outcome",
        "Notification delivery attempts by sink and outcome.",
        component=NOTIFIER,
        group="alerts",
    ),
    _m(
        "modelwatch_notification_dead_letters_total",
        "counter",
        "sink",
        "Notifications given up after the retry budget (sent to the dead-letter topic).",
        component=NOTIFIER,
        group="alerts",
    ),
    _m(
        "modelwatch_alert_events_total",
        "counter",
        "status,severity",
        "AlertEvents published (firing and resolved).",
        component=NOTIFIER,
        group="alerts",
    ),
    _m(
        "modelwatch_evaluator_detections_total",
        "counter",
        "outcome",
        "Detections consumed by the alert evaluator, by outcome.",
        component=NOTIFIER,
        group="alerts",
    ),
    _m(
        "modelwatch_retrain_requests_total",
        "counter",
        "model",
        "Retrain requests published.",
        component=NOTIFIER,
        group="alerts",
    ),
    _m(
        "modelwatch_notification_attempts_total",
        "counter",
        "sink",
        "Delivery attempts, retries included.",
        component=NOTIFIER,
        group="alerts",
    ),
    _m(
        "modelwatch_notifier_open_alerts",
        "gauge",
        "",
        "Firing alerts held by this notifier.",
        component=NOTIFIER,
        group="alerts",
    ),
    # standard process metrics of prometheus_client (every modelwatch process)
    _m(
        "process_cpu_seconds_total",
        "counter",
        "",
        "CPU time of the process (standard prometheus_client metric).",
        component=PROCESS,
        group="process",
    ),
    _m(
        "process_resident_memory_bytes",
        "gauge",
        "",
        "Resident memory of the process (standard prometheus_client metric).",
        component=PROCESS,
        group="process",
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def known_series_names() -> set[str]:
    """Every series name Prometheus can hold for the listed metrics (plus ``up``)."""
    names = {"up"}
    for m in METRICS:
        names.update(m.series_names)
    return names


def render_markdown() -> str:
    """The Markdown "Metrics reference" table."""
    where = {
        WORKER: "worker (`:9108`)",
        NOTIFIER: "alerting: `evaluate` / `notify` (`:9109`)",
        PROCESS: "every process",
    }
    lines = [
        "| metric | type | labels | exported by | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in METRICS:
        labels = ", ".join(f"`{x}`" for x in m.labels) or "—"
        lines.append(f"| `{m.name}` | {m.type} | {labels} | {where[m.component]} | {m.help} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
