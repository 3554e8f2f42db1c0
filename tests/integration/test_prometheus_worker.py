"""The shipped queries against the REAL pipeline: worker and evaluator fed by the simulator.

The embedded broker (``kafka_bootstrap``), a reference profile, ``modelwatch worker``,
``modelwatch evaluate`` and ``modelwatch simulate`` with a scenario that drifts a feature and
bursts errors; a real Prometheus (shipped local configuration and rules, 1 s intervals) scrapes
the worker and the evaluator. Every recording rule and dashboard expression, with ``$model``
set to the simulated model, must parse and evaluate; those listed in ``EXPECT_RECORDING`` and
``EXPECT_PANELS`` must return data: golden signals, pipeline, drift, detections, alerts firing
(the evaluator runs the demo policy's short durations) and performance (labels join with a
5 s horizon). The notifier's panels are not exercised here.

The stand-in twin of this test (``test_prometheus_queries.py``) checks that *every* expression
returns data against an exporter serving every listed metric.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from modelwatch.baseline import publish_reference, simulated_reference
from modelwatch.broker import free_port
from modelwatch.demo import DEMO_POLICY
from producers.simulator.scenario import Scenario
from schemas import metrics_catalogue as catalogue
from tests.integration.test_prometheus_queries import (
    PANELS,
    RECORDING,
    dashboards,
    has_data,
    query,
    running_prometheus,
    wait_for,
)
from tests.support.catalogue_check import disagreements
from tests.support.processes import ModelwatchProcess, WorkerProcess

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Pipeline:
    client: httpx.Client  # the Prometheus API
    model: str
    worker_metrics: str  # URL of the worker's /metrics
    evaluator_metrics: str

SCENARIO: dict[str, Any] = {
    "name": "prometheus-queries",
    "rate": 1000,
    "speedup": 30,
    "label_fraction": 0.9,
    "label_delay": {"median": "20s", "sigma": 0.3},
    "phases": [
        {"name": "baseline", "kind": "normal", "start": "0s", "end": "3m"},
        {
            "name": "shift",
            "kind": "feature_drift",
            "start": "3m",
            "feature": "credit_score",
            "shift": -90,
        },
        {
            "name": "errors",
            "kind": "error_burst",
            "start": "0s",
            "error_rate": 0.1,
            "error_type": "Timeout",
        },
    ],
}

# recording rules this scenario must make return data
EXPECT_RECORDING = {
    "model_version_status:modelwatch_predictions:rate5m",
    "model_version:modelwatch_predictions:rate5m",
    "model_version:modelwatch_prediction_errors:ratio_rate5m",
    "model_version:modelwatch_prediction_fallbacks:ratio_rate5m",
    "model_version_error_type:modelwatch_prediction_errors:rate5m",
    "model_version_le:modelwatch_prediction_latency_seconds_bucket:rate5m",
    "model_version:modelwatch_prediction_latency_seconds:p50_5m",
    "model_version:modelwatch_prediction_latency_seconds:p90_5m",
    "model_version:modelwatch_prediction_latency_seconds:p99_5m",
    "model_version:modelwatch_prediction_latency_seconds:mean5m",
    "model:modelwatch_processing_delay_seconds:p50_5m",
    "model:modelwatch_processing_delay_seconds:p99_5m",
    "model:modelwatch_last_event_timestamp_seconds:age",
    "topic:modelwatch_consumer_lag:sum",
    "topic:modelwatch_events_processed:rate5m",
    "topic:modelwatch_batches_processed:rate5m",
    "instance:process_cpu_seconds:rate5m",
    "job:modelwatch_rebalances:increase1h",
    "model:modelwatch_features_drifted:sum",
    "model_kind:modelwatch_detections:increase1h",
    "model:modelwatch_labels_joined:rate5m",
    "model:modelwatch_label_delay_seconds:p50_5m",
    "model:modelwatch_label_delay_seconds:p90_5m",
}

# (dashboard, panel) this scenario must make return data
EXPECT_PANELS = {
    ("overview", "Predictions / s"),
    ("overview", "Error rate"),
    ("overview", "p99 latency (worst model)"),
    ("overview", "Alerts firing"),
    ("overview", "Traffic by model and version"),
    ("overview", "Predictions by status"),
    ("overview", "Error and fallback ratio"),
    ("overview", "Errors by type"),
    ("overview", "Prediction latency p50 / p90 / p99"),
    ("overview", "Mean latency"),
    ("overview", "Processing delay (now − event time) p50 / p99"),
    ("overview", "Time since the last event"),
    ("overview", "Consumer lag by topic"),
    ("drift", "Drift share (max over models)"),
    ("drift", "Features drifting"),
    ("drift", "Drift share"),
    ("drift", "Drift verdict per feature"),
    ("drift", "Drift score: $feature"),
    ("drift", "Models with dataset drift"),
    ("drift", "Missing ratio"),
    ("drift", "Out-of-range ratio"),
    ("drift", "annotation: Drift detections"),
    ("drift", "Events per window"),
    ("pipeline", "Workers up"),
    ("pipeline", "Events / s"),
    ("pipeline", "Events processed / s by topic"),
    ("pipeline", "Messages (batches) / s and events per batch"),
    ("pipeline", "Events processed / s by worker"),
    ("pipeline", "Windows closed / s"),
    ("pipeline", "Consumer lag"),
    ("pipeline", "Consumer lag by partition"),
    ("pipeline", "Processing delay p50 / p99"),
    ("pipeline", "Rebalances"),
    ("pipeline", "Targets up"),
    ("pipeline", "CPU (cores) by process"),
    ("pipeline", "Resident memory by process"),
    ("alerts", "Critical firing"),
    ("alerts", "Major firing"),
    ("alerts", "Minor firing"),
    ("alerts", "Prometheus alerts firing"),
    ("alerts", "Detections by kind (last hour)"),
    ("alerts", "Alerts firing by severity"),
    ("alerts", "Alerts firing by model"),
    ("performance", "Accuracy (worst model)"),
    ("performance", "Join rate (worst model)"),
    ("performance", "Labels joined / s"),
    ("performance", "Label delay p90"),
    ("performance", "Classification: accuracy, F1, precision, recall, ROC AUC"),
    ("performance", "Log loss"),
    ("performance", "All performance metrics"),
    ("performance", "Change vs reference performance (window − reference)"),
    ("performance", "Label delay p50 / p90"),
    ("performance", "Join rate"),
}


@pytest.fixture(scope="module")
def pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("prometheus-worker")
    model = f"prom-{uuid.uuid4().hex[:6]}"
    scenario_file = tmp / "scenario.yml"
    scenario_file.write_text(yaml.safe_dump(SCENARIO))
    publish_reference(kafka_bootstrap, simulated_reference(Scenario.from_dict(SCENARIO), model))
    env = {"MODELWATCH_BOOTSTRAP": kafka_bootstrap, "MODELWATCH_METRICS_HOST": "127.0.0.1"}
    # labels close performance windows 5 s (event time) after the window ends
    worker = WorkerProcess(
        kafka_bootstrap,
        tmp,
        f"g-{model}",
        extra_env={"MODELWATCH_LABELS__LABEL_HORIZON_MS": "5000"},
    )
    evaluator_port = free_port()
    evaluator = ModelwatchProcess(
        [
            "evaluate",
            "--metrics-port",
            str(evaluator_port),
            "--group-id",
            f"ev-{model}",
            "--policy",
            str(DEMO_POLICY),
        ],  # short `for`s, so alerts fire within the test
        env,
        tmp / "evaluator.log",
    )
    simulator = ModelwatchProcess(
        ["simulate", "--scenario", str(scenario_file), "--model", model, "--duration", "300"],
        env,
        tmp / "simulator.log",
    )
    processes = [worker, evaluator, simulator]
    try:
        worker.start()
        worker.wait_ready()
        evaluator.start()
        simulator.start()
        targets = {
            "modelwatch-worker": [f"127.0.0.1:{worker.port}"],
            "modelwatch-notifier": [f"127.0.0.1:{evaluator_port}"],
        }
        with running_prometheus(targets, tmp) as client:
            yield Pipeline(client, model, f"http://127.0.0.1:{worker.port}/metrics",
                           f"http://127.0.0.1:{evaluator_port}/metrics")
    finally:
        for proc in reversed(processes):
            proc.stop()


def concrete(expr: str, model: str) -> str:
    return dashboards.substitute(expr, {"model": model})


def test_expectations_name_shipped_queries() -> None:
    assert EXPECT_RECORDING - {r["record"] for r in RECORDING} == set()
    assert EXPECT_PANELS - {(b, p) for b, p, _e in PANELS} == set()


def test_every_query_evaluates_and_the_exercised_ones_return_data(
    pipeline: Pipeline,
) -> None:
    client, model = pipeline.client, pipeline.model
    for rule in RECORDING:
        query(client, rule["expr"])
    for _board, _panel, expr in PANELS:
        query(client, concrete(expr, model))
    for rule in RECORDING:
        if rule["record"] in EXPECT_RECORDING:
            wait_for(f"{rule['record']} to return data", lambda r=rule: has_data(client, r["expr"]))
    for board, panel, expr in PANELS:
        if (board, panel) in EXPECT_PANELS:
            e = concrete(expr, model)
            wait_for(f"{board} / {panel} to return data", lambda e=e: has_data(client, e))


def test_the_drifted_feature_shows_on_the_drift_dashboard(
    pipeline: Pipeline,
) -> None:
    client, model = pipeline.client, pipeline.model
    expr = f'max by (feature) (modelwatch_feature_drift_detected{{model="{model}"}}) == 1'

    def drifted() -> bool:
        return {r["metric"]["feature"] for r in query(client, expr)} == {"credit_score"}

    wait_for("credit_score to be the drifted feature", drifted)


def test_the_processes_metrics_and_the_catalogue_agree_both_ways(pipeline: Pipeline) -> None:
    """Straight from the worker's and the evaluator's ``/metrics``: every registered family
    (with or without samples yet) against the catalogue -- names, types, help and label
    names, both ways."""
    client = pipeline.client
    wait_for("the worker to have closed a drift window",
             lambda: has_data(client, "modelwatch_windows_closed_total"))  # fmt: skip
    wait_for("an alert event", lambda: has_data(client, "modelwatch_alert_events_total"))
    text = httpx.get(pipeline.worker_metrics, timeout=10).text
    assert "modelwatch_predictions_total{" in text
    assert disagreements(text, {catalogue.WORKER, catalogue.PROCESS}) == []
    text = httpx.get(pipeline.evaluator_metrics, timeout=10).text
    assert "modelwatch_alert_events_total{" in text
    assert disagreements(text, {catalogue.EVALUATOR, catalogue.PROCESS}) == []


def test_what_prometheus_stores_is_in_the_catalogue(pipeline: Pipeline) -> None:
    client = pipeline.client
    known = catalogue.known_series_names()
    result = query(client, 'group by (__name__) ({__name__=~"modelwatch_.+"})')
    names = {r["metric"]["__name__"] for r in result}
    assert "modelwatch_predictions_total" in names and "modelwatch_build_info" in names
    unlisted = {n for n in names if n not in known and not n.endswith("_created")}
    assert unlisted == set(), "add them to schemas/metrics_catalogue.py"
    listed = {
        series: set(m.labels) | ({"le"} if m.type == "histogram" else set())
        for m in catalogue.CATALOGUE
        for series in m.series_names
        if not series.endswith(("_sum", "_count"))
    }
    wrong: dict[str, set[str]] = {}
    for r in query(client, '{__name__=~"modelwatch_.+"}'):
        name = r["metric"]["__name__"]
        labels = set(r["metric"]) - {"__name__", "job", "instance"}
        if name in listed and labels != listed[name]:
            wrong.setdefault(name, set()).update(labels ^ listed[name])
    assert wrong == {}, "label sets differ from schemas/metrics_catalogue.py"
