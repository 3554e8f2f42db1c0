"""The one list of Prometheus metrics modelwatch exports, and the builders of its collectors.

Every collector of the worker, the alerting processes and the SDK is built from this table
(``counter``/``gauge``/``histogram``/``family``), so a name, a label set, a help text or a
bucket layout exists once. The README's metrics reference (``infra/metrics_reference.py``),
the checks of the Prometheus rules and Grafana dashboards, and the test that compares a real
worker's ``/metrics`` with this table in both directions all read it.

Naming follows https://prometheus.io/docs/practices/naming/: base units (seconds, bytes),
``_ratio`` for a fraction in [0, 1], ``_total`` for counters, ``_info`` for a constant 1
whose labels carry facts. ``capped`` names the labels whose values come from producers
(model names, versions, error strings...): they go through :mod:`schemas.label_caps`.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> reg = CollectorRegistry()
>>> c = counter("modelwatch_rebalances_total", reg)
>>> c.inc()
>>> "modelwatch_rebalances_total 1.0" in generate_latest(reg).decode()
True
>>> spec("modelwatch_prediction_latency_seconds").series_names[0]
'modelwatch_prediction_latency_seconds_bucket'
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.core import Metric

WORKER = "worker"
EVALUATOR = "evaluator"  # `modelwatch evaluate`
NOTIFIER = "notifier"  # `modelwatch notify`
ALERTING = (EVALUATOR, NOTIFIER)  # the alerting processes (one Prometheus job)
SDK = "sdk"  # the publishing SDK, inside the model server's own process
PROCESS = "process"  # prometheus_client's standard process metrics, every modelwatch process

Type = Literal["counter", "gauge", "histogram"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LABEL_DELAY_BUCKETS = DELAY_BUCKETS + (4 * 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)
RESTORE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SEND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# labels whose values come from producers, and so are capped (schemas/label_caps.py)
PRODUCER_LABELS = ("model", "version", "error_type", "class", "category", "segment")


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the exposition name (counters end in _total)
    type: Type
    labels: tuple[str, ...]
    unit: str  # seconds | bytes | ratio | "" (a count or a score)
    help: str
    exported_by: tuple[str, ...]
    group: str
    buckets: tuple[float, ...] = ()

    @property
    def base(self) -> str:
        """The name prometheus_client wants (it appends ``_total`` to counters itself)."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name

    @property
    def series_names(self) -> tuple[str, ...]:
        """Names of the time series Prometheus stores for this metric."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    @property
    def capped(self) -> tuple[str, ...]:
        return tuple(x for x in self.labels if x in PRODUCER_LABELS)


def _m(name: str, type_: Type, labels: str, unit: str, help_: str, by: str, group: str,
       buckets: tuple[float, ...] = ()) -> MetricSpec:  # fmt: skip
    return MetricSpec(
        name, type_, tuple(x for x in labels.split(",") if x), unit, help_,
        tuple(by.split(",")), group, buckets,
    )  # fmt: skip


G, P, D, F = "golden signals", "pipeline", "drift", "performance"
A, S, X = "alerts", "sdk", "process"
W, EV, NO = WORKER, EVALUATOR, NOTIFIER
WA = f"{WORKER},{EVALUATOR},{NOTIFIER}"

CATALOGUE: tuple[MetricSpec, ...] = (
    _m("modelwatch_build_info", "gauge", "version,python_version", "",
       "Always 1; the labels say which modelwatch and Python this process runs.", WA, P),
    # golden signals
    _m("modelwatch_predictions_total", "counter", "model,version,status", "",
       "Predictions seen, by status (ok, error, fallback).", W, G),
    _m("modelwatch_prediction_errors_total", "counter", "model,version,error_type", "",
       "Failed predictions by error type.", W, G),
    _m("modelwatch_prediction_latency_seconds", "histogram", "model,version", "seconds",
       "Model-server latency of a prediction (buckets 5 ms .. 10 s).", W, G, LATENCY_BUCKETS),
    _m("modelwatch_processing_delay_seconds", "histogram", "model", "seconds",
       "Processing delay: wall-clock time at processing minus event time.", W, G,
       DELAY_BUCKETS),
    _m("modelwatch_last_event_timestamp_seconds", "gauge", "model,version", "seconds",
       "Largest event time seen (Unix seconds).", W, G),
    _m("modelwatch_request_bytes_total", "counter", "model,version", "bytes",
       "Request payload bytes reported by the model server.", W, G),
    _m("modelwatch_response_bytes_total", "counter", "model,version", "bytes",
       "Response payload bytes reported by the model server.", W, G),
    _m("modelwatch_detections_total", "counter", "model,kind", "",
       "Active detections the worker emitted, by kind (the alert policy gives the severity).",
       W, G),
    _m("modelwatch_label_values_capped_total", "counter", "label", "",
       "Observations whose producer-controlled label value was replaced by `other` (cap).",
       W, G),
    _m("modelwatch_models_forgotten_total", "counter", "", "",
       "Models dropped from the registry after no traffic for `golden_checks.forget_after_s`.",
       W, G),
    # pipeline
    _m("modelwatch_consumer_lag", "gauge", "topic,partition", "",
       "Messages between the committed offset and the end of the partition.", W, P),
    _m("modelwatch_dead_letters_total", "counter", "topic,error_kind", "",
       "Events sent to the dead-letter topic, by source topic and reason.", W, P),
    _m("modelwatch_events_processed_total", "counter", "topic", "",
       "Events processed (a batch counts its events).", W, P),
    _m("modelwatch_batches_processed_total", "counter", "topic", "",
       "Messages (single events or batches) processed.", W, P),
    _m("modelwatch_rebalances_total", "counter", "", "",
       "Consumer-group rebalances seen by this worker.", W, P),
    _m("modelwatch_state_restore_seconds", "histogram", "stage", "seconds",
       "Time to restore the state of newly assigned partitions from the changelog.", W, P,
       RESTORE_BUCKETS),
    _m("modelwatch_state_restored_partitions_total", "counter", "stage", "",
       "Partition states restored from the changelog on assignment, by stage.", W, P),
    _m("modelwatch_state_changelog_records_read_total", "counter", "", "",
       "Changelog records read while restoring (the whole topic is read to its end).", W, P),
    _m("modelwatch_state_snapshots_total", "counter", "stage", "",
       "Partition-state snapshots written to the worker-state changelog, by stage.", W, P),
    _m("modelwatch_state_snapshot_bytes_total", "counter", "stage", "bytes",
       "Bytes of partition-state snapshots written to the worker-state changelog, by stage.",
       W, P),
    _m("modelwatch_state_snapshots_refused_total", "counter", "stage", "",
       "Partition-state snapshots the broker would not store (too large, unreachable): not "
       "counted as saved, the partition's commits stay behind, the stage snapshots again.",
       W, P),
    _m("modelwatch_merge_partials_total", "counter", "kind,outcome", "",
       "Records read by the merge stage, by kind and outcome (applied, marker, duplicate, "
       "late: after its window was final, dropped; skipped: replayed offset).", W, P),
    _m("modelwatch_merge_windows_total", "counter", "kind,complete", "",
       "Windows merged and emitted as final, by kind and whether every input partition had "
       "reported (complete) or the wait ran out (incomplete).", W, P),
    _m("modelwatch_merge_seconds_total", "counter", "kind", "seconds",
       "Time the merge stage spent merging and judging windows, by kind.", W, P),
    _m("modelwatch_output_retries_total", "counter", "topic", "",
       "Sends retried after a refusal, by target topic.", W, P),
    _m("modelwatch_outputs_dead_lettered_total", "counter", "topic", "",
       "Outgoing records that could not be stored and were dead-lettered, by target topic.",
       W, P),
    _m("modelwatch_references_total", "counter", "outcome", "",
       "Reference profiles read from the references topic, by outcome (loaded, rejected: "
       "dead-lettered, the model keeps its previous reference).", W, P),
    _m("modelwatch_reference_feed_up", "gauge", "", "",
       "1 while the reference feed runs and reaches the broker, else 0.", W, P),
    _m("modelwatch_outputs_pending", "gauge", "", "",
       "Records the worker has computed (window stats, detections, dead letters) that the "
       "broker has not acknowledged yet.", W, P),
    _m("modelwatch_output_polls_total", "counter", "", "",
       "Completed runs of the worker's output poll (windows closed, judged and sent): one "
       "that started after the last input was processed means everything is out.", W, P),
    # drift and data quality
    _m("modelwatch_feature_drift_score", "gauge", "model,feature,test", "",
       "Drift score of a feature in the latest closed window against the reference "
       "(BH-adjusted p-value for ks/chisquare, distance otherwise).", W, D),
    _m("modelwatch_feature_drift_detected", "gauge", "model,feature", "",
       "1 while the latest closed window is judged drifted for the feature, else 0.", W, D),
    _m("modelwatch_drift_share_ratio", "gauge", "model", "ratio",
       "Fraction of features judged drifted in the latest closed window.", W, D),
    _m("modelwatch_dataset_drift_detected", "gauge", "model", "",
       "1 while the drift share is at or above its threshold, else 0.", W, D),
    _m("modelwatch_prediction_drift_score", "gauge", "model,test", "",
       "Drift score of the prediction distribution against the reference.", W, D),
    _m("modelwatch_detector_detections_total", "counter", "model,feature,detector", "",
       "Online detector (ADWIN, Page-Hinkley, KSWIN) detections after the partition vote.",
       W, D),
    _m("modelwatch_feature_missing_ratio", "gauge", "model,feature", "ratio",
       "Fraction of missing values of a feature in the latest closed window.", W, D),
    _m("modelwatch_feature_out_of_range_ratio", "gauge", "model,feature", "ratio",
       "Fraction of values outside the reference range in the latest closed window.", W, D),
    _m("modelwatch_unseen_categories_total", "counter", "model,feature", "",
       "Categorical values never seen in the reference.", W, D),
    _m("modelwatch_window_events", "gauge", "model", "",
       "Events in the latest closed window.", W, D),
    _m("modelwatch_late_events_total", "counter", "model", "",
       "Events later than the allowed lateness (counted, not dropped silently).", W, D),
    _m("modelwatch_windows_closed_total", "counter", "model", "",
       "Windows closed and published.", W, D),
    _m("modelwatch_features_not_exported", "gauge", "model", "",
       "Features left out of per-feature series by the cardinality cap.", W, D),
    # performance
    _m("modelwatch_labels_joined_total", "counter", "model", "",
       "Labels joined to their prediction.", W, F),
    _m("modelwatch_orphan_labels_total", "counter", "model", "",
       "Labels whose prediction never came within the TTL.", W, F),
    _m("modelwatch_orphan_predictions_total", "counter", "model", "",
       "Predictions whose label never came within the TTL.", W, F),
    _m("modelwatch_duplicate_labels_total", "counter", "model", "",
       "Labels seen again for an already joined prediction (counted once).", W, F),
    _m("modelwatch_late_labels_total", "counter", "model", "",
       "Labels joined after their performance window was closed.", W, F),
    _m("modelwatch_early_labels_waiting", "gauge", "", "",
       "Labels waiting for their prediction to arrive.", W, F),
    _m("modelwatch_early_labels_total", "counter", "model", "",
       "Labels read before their prediction; they wait on disk until it comes (none is "
       "dropped for being early).", W, F),
    _m("modelwatch_duplicate_predictions_total", "counter", "model", "",
       "Predictions whose (model, prediction_id) was already pending or joined: ignored, "
       "the first write wins.", W, F),
    _m("modelwatch_valueless_labels_total", "counter", "model", "",
       "Labels with neither a class nor a finite value: dead-lettered, the prediction stays "
       "free for its real label.", W, F),
    _m("modelwatch_label_partition_pauses_total", "counter", "", "",
       "Label partitions paused because their event time ran ahead of their prediction "
       "partition's (the two topics are read in step).", W, F),
    _m("modelwatch_label_partitions_paused", "gauge", "", "",
       "Label partitions paused now, waiting for their predictions to catch up.", W, F),
    _m("modelwatch_label_restore_seconds", "histogram", "", "seconds",
       "Time to rebuild the label join of a partition another worker processed, from the "
       "topics (on assignment).", W, F, (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)),
    _m("modelwatch_label_records_restored_total", "counter", "", "",
       "Prediction and label records re-read to rebuild the label join of partitions "
       "another worker processed.", W, F),
    _m("modelwatch_model_performance", "gauge", "model,version,metric", "",
       "Performance of the latest closed window (accuracy, f1, precision, recall, log_loss, "
       "roc_auc, mae, rmse...).", W, F),
    _m("modelwatch_performance_vs_reference", "gauge", "model,version,metric", "",
       "Latest closed window's metric minus the reference profile's (needs a reference "
       "built with --label-col and --prediction-col).", W, F),
    _m("modelwatch_label_delay_seconds", "histogram", "model", "seconds",
       "Delay between a prediction and its label (event time).", W, F, LABEL_DELAY_BUCKETS),
    _m("modelwatch_label_join_ratio", "gauge", "model", "ratio",
       "Fraction of the latest closed window's predictions with a joined label.", W, F),
    # alerting
    _m("modelwatch_alerts_firing", "gauge", "model,severity", "",
       "Alerts firing now.", EV, A),
    _m("modelwatch_notifications_total", "counter", "sink,outcome", "",
       "Notification delivery attempts by sink and outcome.", NO, A),
    _m("modelwatch_notification_dead_letters_total", "counter", "sink", "",
       "Notifications given up after the retry budget (sent to the dead-letter topic).",
       NO, A),
    _m("modelwatch_alert_events_total", "counter", "status,severity", "",
       "AlertEvents published (firing and resolved).", EV, A),
    _m("modelwatch_evaluator_detections_total", "counter", "outcome", "",
       "Detections consumed by the alert evaluator, by outcome.", EV, A),
    _m("modelwatch_retrain_requests_total", "counter", "model", "",
       "Retrain requests published.", EV, A),
    _m("modelwatch_notification_attempts_total", "counter", "sink", "",
       "Delivery attempts, retries included.", NO, A),
    _m("modelwatch_notifier_open_alerts", "gauge", "", "",
       "Firing alerts held by this notifier.", NO, A),
    _m("modelwatch_notifier_rejected_total", "counter", "error_kind", "",
       "Records of the alerts topic dead-lettered before delivery (undecodable, ungroupable).",
       NO, A),
    _m("modelwatch_evaluator_silences_total", "counter", "outcome", "",
       "Records of the silences topic applied (ok) or ignored (invalid).", EV, A),
    _m("modelwatch_evaluator_tick_errors_total", "counter", "", "",
       "Alert lifecycle ticks that raised (logged; the next tick tries again).", EV, A),
    # the publishing SDK
    _m("modelwatch_sdk_events_published_total", "counter", "model,kind", "",
       "Events the broker acknowledged.", SDK, S),
    _m("modelwatch_sdk_events_dropped_total", "counter", "model,kind,reason", "",
       "Events the SDK gave up on, by reason.", SDK, S),
    _m("modelwatch_sdk_send_latency_seconds", "histogram", "model", "seconds",
       "Time from handing a batch to the Kafka client to its delivery report.", SDK, S,
       SEND_BUCKETS),
    _m("modelwatch_sdk_buffered_events", "gauge", "model", "",
       "Events held by the SDK: not yet sent, or sent and awaiting a delivery report.", SDK, S),
    # standard process metrics of prometheus_client
    _m("process_cpu_seconds_total", "counter", "", "seconds",
       "CPU time of the process (standard prometheus_client metric).", PROCESS, X),
    _m("process_resident_memory_bytes", "gauge", "", "bytes",
       "Resident memory of the process (standard prometheus_client metric).", PROCESS, X),
)  # fmt: skip

BY_NAME: dict[str, MetricSpec] = {m.name: m for m in CATALOGUE}


def spec(name: str) -> MetricSpec:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name} is not in schemas/metrics_catalogue.py") from None


def exported_by(*components: str) -> tuple[MetricSpec, ...]:
    """The metrics a process running any of ``components`` exports."""
    return tuple(m for m in CATALOGUE if set(components) & set(m.exported_by))


def known_series_names() -> set[str]:
    """Every series name Prometheus can hold for the listed metrics (plus ``up``)."""
    names = {"up"}
    for m in CATALOGUE:
        names.update(m.series_names)
    return names


# ----------------------------------------------------------------------------- builders
def _typed(name: str, type_: Type) -> MetricSpec:
    s = spec(name)
    if s.type != type_:
        raise TypeError(f"{name} is a {s.type} in the catalogue, not a {type_}")
    return s


def counter(name: str, registry: CollectorRegistry) -> Counter:
    from prometheus_client import Counter

    s = _typed(name, "counter")
    return Counter(s.base, s.help, s.labels, registry=registry)


def gauge(name: str, registry: CollectorRegistry) -> Gauge:
    from prometheus_client import Gauge

    s = _typed(name, "gauge")
    return Gauge(s.name, s.help, s.labels, registry=registry)


def histogram(name: str, registry: CollectorRegistry) -> Histogram:
    from prometheus_client import Histogram

    s = _typed(name, "histogram")
    return Histogram(s.name, s.help, s.labels, buckets=s.buckets, registry=registry)


def family(name: str) -> Metric:
    """An empty metric family for a custom collector's ``collect`` (add samples to it)."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    s = spec(name)
    cls = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
           "histogram": HistogramMetricFamily}[s.type]  # fmt: skip
    return cls(s.base, s.help, labels=list(s.labels))


def modelwatch_version() -> str:
    try:
        return metadata.version("modelwatch")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_info(registry: CollectorRegistry) -> Gauge:
    """``modelwatch_build_info{version, python_version} 1`` (every modelwatch process)."""
    g = gauge("modelwatch_build_info", registry)
    g.labels(modelwatch_version(), platform.python_version()).set(1)
    return g


def remove_series(metric: Counter | Gauge | Histogram, label: str, value: str) -> int:
    """Remove every series of ``metric`` whose ``label`` is ``value``; returns how many."""
    index = list(metric._labelnames).index(label)  # noqa: SLF001 - no public listing
    with metric._lock:  # noqa: SLF001
        keys = [k for k in metric._metrics if k[index] == value]  # noqa: SLF001
    for key in keys:
        metric.remove(*key)
    return len(keys)
