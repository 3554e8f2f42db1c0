"""Prometheus recording and alerting rules for modelwatch, as code.

Run ``python infra/prometheus/generate.py`` to (re)write ``infra/prometheus/rules/*.yml``;
``--check`` exits 1 when the committed files differ from what this script produces (with the
same options). ``--worker-job`` and ``--notifier-job`` set the job names the rules select
on, for a Prometheus whose scrape jobs are named otherwise; ``--out DIR`` writes elsewhere.
The shipped files are generated with the defaults and unit-tested by ``promtool test rules``
(``infra/prometheus/tests``).

**One path per page.** What modelwatch itself detects about a model -- no traffic, error
and fallback rates, the latency SLO, every kind of drift, performance -- reaches people once,
through the alert policy and the notifier (``alerting/``): one lifecycle, fingerprint,
silences and event-time backtests. These rules page only on what the worker cannot report
about itself: a worker, the notifier or every worker gone, consumer lag growing, dead
letters, notifications given up, CPU saturation. The test ``test_one_paging_path`` derives
this from the metric catalogue: no alerting rule reads (directly or through a recording
rule) a golden-signal, drift or performance metric.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES_DIR = HERE / "rules"
WORKER_JOB = "modelwatch-worker"
NOTIFIER_JOB = "modelwatch-notifier"


@dataclass(frozen=True)
class Jobs:
    worker: str = WORKER_JOB
    notifier: str = NOTIFIER_JOB

    @property
    def any(self) -> str:
        """A regex matching every modelwatch job."""
        return f"{self.worker}|{self.notifier}"


def recording_groups(j: Jobs) -> list[dict[str, Any]]:
    def r(record: str, expr: str) -> dict[str, str]:
        return {"record": record, "expr": expr}

    p99 = "histogram_quantile(0.99, sum by (model, le) (rate(%s_bucket[5m])))"
    p50 = "histogram_quantile(0.50, sum by (model, le) (rate(%s_bucket[5m])))"
    p90 = "histogram_quantile(0.90, sum by (model, le) (rate(%s_bucket[5m])))"
    lat = "model_version_le:modelwatch_prediction_latency_seconds_bucket:rate5m"
    total = "sum by (model, version) (rate(modelwatch_predictions_total[5m]))"
    return [
        {"name": "modelwatch-golden-signals", "rules": [
            r("model_version_status:modelwatch_predictions:rate5m",
              "sum by (model, version, status) (rate(modelwatch_predictions_total[5m]))"),
            r("model_version:modelwatch_predictions:rate5m", total),
            r("model_version:modelwatch_prediction_errors:ratio_rate5m",
              'sum by (model, version) (rate(modelwatch_predictions_total{status="error"}[5m]))\n'
              f"  / {total}\n"),
            r("model_version:modelwatch_prediction_fallbacks:ratio_rate5m",
              "sum by (model, version) "
              '(rate(modelwatch_predictions_total{status="fallback"}[5m]))\n'
              f"  / {total}\n"),
            r("model_version_error_type:modelwatch_prediction_errors:rate5m",
              "sum by (model, version, error_type) "
              "(rate(modelwatch_prediction_errors_total[5m]))"),
            r(lat, "sum by (model, version, le) "
                   "(rate(modelwatch_prediction_latency_seconds_bucket[5m]))"),
            r("model_version:modelwatch_prediction_latency_seconds:p50_5m",
              f"histogram_quantile(0.50, {lat})"),
            r("model_version:modelwatch_prediction_latency_seconds:p90_5m",
              f"histogram_quantile(0.90, {lat})"),
            r("model_version:modelwatch_prediction_latency_seconds:p99_5m",
              f"histogram_quantile(0.99, {lat})"),
            r("model_version:modelwatch_prediction_latency_seconds:mean5m",
              "sum by (model, version) (rate(modelwatch_prediction_latency_seconds_sum[5m]))\n"
              "  / sum by (model, version) "
              "(rate(modelwatch_prediction_latency_seconds_count[5m]))\n"),
            r("model:modelwatch_processing_delay_seconds:p50_5m",
              p50 % "modelwatch_processing_delay_seconds"),
            r("model:modelwatch_processing_delay_seconds:p99_5m",
              p99 % "modelwatch_processing_delay_seconds"),
            r("model:modelwatch_last_event_timestamp_seconds:age",
              "time() - max by (model) (modelwatch_last_event_timestamp_seconds)"),
        ]},
        {"name": "modelwatch-pipeline", "rules": [
            r("topic:modelwatch_consumer_lag:sum", "sum by (topic) (modelwatch_consumer_lag)"),
            r("topic:modelwatch_events_processed:rate5m",
              "sum by (topic) (rate(modelwatch_events_processed_total[5m]))"),
            r("topic:modelwatch_batches_processed:rate5m",
              "sum by (topic) (rate(modelwatch_batches_processed_total[5m]))"),
            r("topic_error_kind:modelwatch_dead_letters:rate5m",
              "sum by (topic, error_kind) (rate(modelwatch_dead_letters_total[5m]))"),
            r("job:modelwatch_rebalances:increase1h",
              "sum by (job) (increase(modelwatch_rebalances_total[1h]))"),
            r("instance:process_cpu_seconds:rate5m",
              f'rate(process_cpu_seconds_total{{job=~"{j.any}"}}[5m])'),
        ]},
        {"name": "modelwatch-drift-and-performance", "rules": [
            r("model:modelwatch_features_drifted:sum",
              "sum by (model) (max by (model, feature) (modelwatch_feature_drift_detected))"),
            r("model_feature_detector:modelwatch_detector_detections:increase1h",
              "sum by (model, feature, detector) "
              "(increase(modelwatch_detector_detections_total[1h]))"),
            r("model:modelwatch_late_events:rate5m",
              "sum by (model) (rate(modelwatch_late_events_total[5m]))"),
            r("model:modelwatch_labels_joined:rate5m",
              "sum by (model) (rate(modelwatch_labels_joined_total[5m]))"),
            r("model:modelwatch_label_delay_seconds:p50_5m",
              p50 % "modelwatch_label_delay_seconds"),
            r("model:modelwatch_label_delay_seconds:p90_5m",
              p90 % "modelwatch_label_delay_seconds"),
            r("model_kind:modelwatch_detections:increase1h",
              "sum by (model, kind) (increase(modelwatch_detections_total[1h]))"),
        ]},
        {"name": "modelwatch-alerting", "rules": [
            r("severity:modelwatch_alerts_firing:sum",
              "sum by (severity) (modelwatch_alerts_firing)"),
            r("sink_outcome:modelwatch_notifications:rate5m",
              "sum by (sink, outcome) (rate(modelwatch_notifications_total[5m]))"),
        ]},
    ]  # fmt: skip


def _alert(name: str, expr: str, severity: str, summary: str, description: str,
           for_: str | None = None) -> dict[str, Any]:  # fmt: skip
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, "source": "prometheus"}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def alerting_groups(j: Jobs) -> list[dict[str, Any]]:
    return [
        {"name": "modelwatch-availability", "rules": [
            _alert("ModelwatchWorkerDown", f'up{{job="{j.worker}"}} == 0', "critical",
                   "modelwatch worker {{ $labels.instance }} is down",
                   "Prometheus cannot scrape the worker at {{ $labels.instance }} for 1 minute; "
                   "its partitions are not monitored until the group rebalances.", "1m"),
            _alert("ModelwatchWorkersAbsent", f'absent(up{{job="{j.worker}"}})', "critical",
                   "no modelwatch worker is discovered",
                   f"The {j.worker} job has no targets: nothing consumes the predictions.",
                   "5m"),
            _alert("ModelwatchNotifierDown", f'up{{job="{j.notifier}"}} == 0', "critical",
                   "modelwatch notifier {{ $labels.instance }} is down",
                   "Alerts published by the workers may not be delivered.", "2m"),
        ]},
        {"name": "modelwatch-pipeline", "rules": [
            _alert("ModelwatchConsumerLagGrowing",
                   "sum by (topic) (modelwatch_consumer_lag) > 1000\n"
                   "  and deriv(topic:modelwatch_consumer_lag:sum[10m]) > 0\n", "major",
                   "consumer lag on {{ $labels.topic }} is {{ $value }} messages and growing",
                   "The workers fall behind on {{ $labels.topic }}: add workers (up to the "
                   "partition count) or find the slow step.", "10m"),
            _alert("ModelwatchDeadLetters",
                   "sum by (topic) (topic_error_kind:modelwatch_dead_letters:rate5m) > 0.1",
                   "minor",
                   '{{ $labels.topic }}: {{ printf "%.2f" $value }} events/s go to the '
                   "dead-letter topic",
                   "Undecodable or invalid events from {{ $labels.topic }}; see "
                   "modelwatch.dead-letter for the reasons.", "10m"),
            _alert("ModelwatchNotificationDeadLetters",
                   "sum by (sink) (increase(modelwatch_notification_dead_letters_total[15m])) > 0",
                   "major", "notifications to sink {{ $labels.sink }} are being given up",
                   "Notifications exhausted their retries and went to the dead-letter topic."),
            _alert("ModelwatchHighCPU", "instance:process_cpu_seconds:rate5m > 0.9", "minor",
                   "{{ $labels.job }} {{ $labels.instance }} uses "
                   "{{ $value | humanizePercentage }} of a CPU",
                   "The process is close to saturating its core; expect lag to grow.", "15m"),
        ]},
    ]  # fmt: skip


HEADERS = {
    "recording.yml": (
        "Recording rules: the rates, ratios and quantiles the dashboards and alerts use.\n"
        "Naming: level:metric:operations (https://prometheus.io/docs/practices/rules/).\n"
        "Sums run across every worker instance: each worker exports only its own partitions.\n"
    ),
    "alerts.yml": (
        "Alerting rules for what only Prometheus can see: the modelwatch processes and their\n"
        "pipeline. Model conditions (no traffic, error rate, latency SLO, drift, performance)\n"
        "page once, through the modelwatch notifier: see the docstring of generate.py.\n"
        "Every rule carries `severity` (critical | major | minor), which Alertmanager routes\n"
        "on (infra/alertmanager), and `source: prometheus` (the notifier's carry\n"
        "`source: modelwatch`). Every alert has a unit test in infra/prometheus/tests/.\n"
    ),
}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(name: str, jobs: Jobs = Jobs()) -> str:
    groups = recording_groups(jobs) if name == "recording.yml" else alerting_groups(jobs)
    header = "".join(f"# {line}\n" for line in HEADERS[name].splitlines())
    header += "# Generated by infra/prometheus/generate.py: edit that, not this file.\n"
    body = yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=True)  # fmt: skip
    return header + body


def write(directory: Path = RULES_DIR, jobs: Jobs = Jobs()) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in HEADERS:
        path = directory / name
        path.write_text(render(name, jobs), encoding="utf-8")
        paths.append(path)
    return paths


def stale(directory: Path = RULES_DIR, jobs: Jobs = Jobs()) -> list[str]:
    return [
        name
        for name in HEADERS
        if not (directory / name).exists()
        or (directory / name).read_text(encoding="utf-8") != render(name, jobs)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the rule files are stale")
    parser.add_argument("--out", type=Path, default=RULES_DIR)
    parser.add_argument("--worker-job", default=WORKER_JOB, help="job name of the workers")
    parser.add_argument("--notifier-job", default=NOTIFIER_JOB,
                        help="job name of the alerting processes (evaluate, notify)")  # fmt: skip
    args = parser.parse_args(argv)
    jobs = Jobs(args.worker_job, args.notifier_job)
    if args.check:
        bad = stale(args.out, jobs)
        for name in bad:
            print(f"{args.out / name} is stale: run python infra/prometheus/generate.py",
                  file=sys.stderr)  # fmt: skip
        return 1 if bad else 0
    for path in write(args.out, jobs):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
