"""``modelwatch backtest``: replay a history file through the whole pipeline, on the embedded
stack, and show the alerts it would have raised.

Starts the embedded broker, publishes the reference, starts a worker and an alert evaluator
as child processes, replays the file as fast as the machine allows (event time comes from
the file, so the alert lifecycle runs on it: ``for: 10m`` means ten minutes of the file's
time), waits until the pipeline has drained, prints the alert timeline and writes the HTML
report. Everything it started is stopped on the way out, Ctrl-C included.

**Drained** means: the worker has processed every published prediction and label (its
``modelwatch_events_processed_total``), an output poll that started after that has completed
(``modelwatch_output_polls_total``: windows closed, judged and sent), the broker has
acknowledged every record it computed (``modelwatch_outputs_pending`` is 0), its closed
windows and detections have stopped changing for ``settle_s``, and the evaluator has
committed every detection up to the end of the detections topic (it commits only after
the alerts a detection caused are stored). The window still open when the history ends
is not judged, as live.

>>> rows = timeline([
...     {"model": "m", "event_time_ms": 120_000, "status": "resolved", "severity": "minor",
...      "kind": "feature_drift", "subject": "x", "value": 0.1, "fired_at_ms": 5},
...     {"model": "m", "event_time_ms": 60_000, "status": "firing", "severity": "minor",
...      "kind": "feature_drift", "subject": "x", "value": 0.4, "fired_at_ms": 5},
...     {"model": "other", "event_time_ms": 1, "status": "firing", "severity": "critical",
...      "kind": "no_traffic", "subject": "traffic", "value": 1.0, "fired_at_ms": 5}], "m")
>>> [(r["status"], r["event_time_ms"]) for r in rows]
[('firing', 60000), ('resolved', 120000)]
>>> pages(rows)
{'critical': 0, 'major': 0, 'minor': 1}
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from alerting.policy import SEVERITIES
from alerting.sinks.base import iso
from schemas.codec import DecodeError, default_codec
from schemas.kafka import KafkaConfig, read_to_end
from schemas.topics import TopicNames

WORKER_GROUP = "modelwatch-worker"
EVALUATOR_GROUP = "modelwatch-evaluator"
_STATUS_ORDER = {"firing": 0, "resolved": 1}


class BacktestError(RuntimeError):
    """The backtest could not run to its end; the message says which part failed."""


@dataclass
class BacktestResult:
    alerts: list[dict[str, Any]]
    rows: int
    predictions: int
    labels: int
    replay_s: float
    drain_s: float
    wall_s: float
    report: Path | None
    startup_s: float = 0.0
    detections: list[dict[str, Any]] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.rows / self.replay_s if self.replay_s > 0 else 0.0


def timeline(alerts: Iterable[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """AlertEvents of ``model`` in event-time order (firing before resolved at one time)."""

    def when(a: dict[str, Any]) -> int:
        t = a.get("event_time_ms")
        return int(t if t is not None else a.get("detected_at_ms") or a["fired_at_ms"])

    mine = [a for a in alerts if a["model"] == model]
    return sorted(mine, key=lambda a: (when(a), _STATUS_ORDER.get(a["status"], 2),
                                       a["kind"], a["subject"]))  # fmt: skip


def pages(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Alerts that started firing, per severity: what the policy would have sent."""
    out = dict.fromkeys(SEVERITIES, 0)
    for a in rows:
        if a["status"] == "firing":
            out[a["severity"]] = out.get(a["severity"], 0) + 1
    return out


def timeline_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("event time", "severity", "kind", "subject", "status", "value"):
        table.add_column(col, justify="right" if col == "value" else "left")
    style = {"critical": "bold red", "major": "yellow", "minor": "cyan"}
    for a in rows:
        t = a.get("event_time_ms")
        table.add_row(
            iso(t if t is not None else a.get("detected_at_ms")),
            f"[{style.get(a['severity'], '')}]{a['severity']}[/]",
            a["kind"], a["subject"], a["status"], f"{a['value']:.4g}",
        )  # fmt: skip
    return table


# -- drain conditions (pure, on scraped metric samples) ---------------------------------
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metric_sum(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def inputs_processed(samples: Samples, topics: TopicNames, predictions: int,
                     labels: int) -> bool:
    """Whether the worker has processed (or dead-lettered) every published event."""
    def done(topic: str) -> float:
        return (metric_sum(samples, "modelwatch_events_processed_total", topic=topic)
                + metric_sum(samples, "modelwatch_dead_letters_total", topic=topic))
    return done(topics.predictions) >= predictions and done(topics.labels) >= labels


def output_signature(samples: Samples, model: str) -> tuple[float, ...] | None:
    """What changes while the worker still has windows or detections to publish; None while
    it has computed records the broker has not acknowledged."""
    if metric_sum(samples, "modelwatch_outputs_pending") > 0:
        return None
    return (
        metric_sum(samples, "modelwatch_windows_closed_total", model=model),
        sum(v for (n, lab), v in samples.items()
            if n == "modelwatch_detections_total" and ("model", model) in lab
            and ("kind", "no_traffic") not in lab),
    )  # fmt: skip


def group_committed(
    kafka: str | KafkaConfig, group: str, topic: str, partitions: list[int]
) -> dict[int, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    admin = KafkaConfig.of(kafka).admin()
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    res = admin.list_consumer_group_offsets([req])[group].result(timeout=10)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


def read_decoded(kafka: str | KafkaConfig, topic: str,
                 expect: str) -> tuple[dict[int, int], list[dict[str, Any]]]:
    """Next offset per partition (found by reading to the fetch's end of partition, as
    Tansu's ListOffsets is wrong) and the decoded ``expect`` records on the way."""
    codec = default_codec()
    ends: dict[int, int] = {}
    records = []
    for rec in read_to_end(kafka, topic, timeout_s=60):
        ends[rec.partition] = max(ends.get(rec.partition, 0), rec.offset + 1)
        try:
            records.append(codec.decode(rec.value, expect=(expect,)).record)
        except DecodeError:
            continue
    return ends, records


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str,
               stop: threading.Event, every_s: float = 0.3) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if stop.is_set():
            raise BacktestError("interrupted")
        if time.monotonic() > deadline:
            raise BacktestError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        stop.wait(every_s)


def read_alerts(kafka: str | KafkaConfig, topics: TopicNames) -> list[dict[str, Any]]:
    return read_decoded(kafka, topics.alerts, "AlertEvent")[1]


# -- the run ------------------------------------------------------------------------------
@dataclass
class BacktestPlan:
    model: str
    data: Path
    spec: Any  # producers.replay.ReplaySpec
    reference: dict[str, Any]
    version: str = "backtest"
    policy: Path | None = None
    report: Path | None = Path("backtest-report.html")
    work_dir: Path = Path(".modelwatch/backtest")
    partitions: int = 4
    chunk_rows: int = 50_000
    settle_s: float = 3.0
    timeout_s: float = 600.0


def run_backtest(plan: BacktestPlan, console: Console, stop: threading.Event | None = None,
                 on_replayed: Callable[[str], None] | None = None,
                 on_drained: Callable[[str], None] | None = None) -> BacktestResult:
    """Run one backtest; raises :class:`BacktestError` (or ``ReplayError``) on failure.

    ``on_replayed(bootstrap)`` is called once the history is published, before the drain;
    ``on_drained(bootstrap)`` after it, before the alerts are read."""
    from modelwatch.baseline import publish_reference
    from modelwatch.broker import EmbeddedBroker, free_port
    from modelwatch.commands.produce import replay_with_progress
    from modelwatch.demo import Child
    from modelwatch.live_view import scrape

    stop = stop or threading.Event()
    t_start = time.monotonic()
    topics = TopicNames()
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    # the broker keeps its data in memory: local state of an earlier run refers to
    # offsets that no longer exist
    shutil.rmtree(plan.work_dir / "state", ignore_errors=True)
    children: list[Child] = []
    with EmbeddedBroker(partitions=plan.partitions, topics=topics,
                        log_file=plan.work_dir / "broker.log") as broker:  # fmt: skip
        try:
            reference = dict(plan.reference, model=plan.model)
            publish_reference(broker.kafka, reference, topics)
            metrics_port = free_port()
            env = {
                "MODELWATCH_BOOTSTRAP": broker.bootstrap,
                "MODELWATCH_PROFILE": "embedded",
                "MODELWATCH_KAFKA_CONFIG": "",  # the embedded broker is plaintext loopback
                "MODELWATCH_METRICS_HOST": "127.0.0.1",
                "MODELWATCH_METRICS_PORT": str(metrics_port),
                "MODELWATCH_DATA_DIR": str(plan.work_dir / "state"),
                "MODELWATCH_GROUP_ID": WORKER_GROUP,
                "MODELWATCH_TOPIC_PREFIX": "",
            }
            children.append(Child("worker", ["worker"], env, plan.work_dir))
            evaluate = ["evaluate", "--metrics-port", "0", "--group-id", EVALUATOR_GROUP]
            if plan.policy is not None:
                evaluate += ["--policy", str(plan.policy)]
            children.append(Child("evaluator", evaluate, env, plan.work_dir))
            url = f"http://127.0.0.1:{metrics_port}/metrics"

            def worker_up() -> bool:
                for child in children:
                    if child.proc.poll() is not None:
                        raise BacktestError(f"the {child.name} exited with "
                                            f"{child.proc.returncode}; see {child.log_path}")
                try:
                    scrape(url)
                    return True
                except OSError:
                    return False

            wait_until(worker_up, 120, "the worker to start", stop)
            startup_s = time.monotonic() - t_start
            console.print(f"[green]stack[/] broker {broker.bootstrap}, worker, evaluator "
                          f"(logs in {plan.work_dir}/)")
            stats, _pub, left = replay_with_progress(
                broker.kafka, topics, plan.model, plan.version, plan.data, plan.spec,
                chunk_rows=plan.chunk_rows, stop=stop,
            )  # fmt: skip
            if left:
                raise BacktestError(f"{left} records not acknowledged by the embedded broker")
            t_drain = time.monotonic()
            if on_replayed is not None:
                on_replayed(broker.bootstrap)
            with console.status("waiting for the pipeline to drain"):
                detections = _drain(plan, broker.kafka, topics, url, stats, worker_up, stop)
            drain_s = time.monotonic() - t_drain
            if on_drained is not None:
                on_drained(broker.bootstrap)
            alerts = timeline(read_alerts(broker.kafka, topics), plan.model)
            _, windows = read_decoded(broker.kafka, topics.window_stats, "WindowStats")
            report = _write_report(plan, broker.kafka, topics) if plan.report else None
        finally:
            for child in reversed(children):
                child.stop()
    return BacktestResult(
        alerts, stats.rows, stats.predictions, stats.labels, stats.wall_s, drain_s,
        time.monotonic() - t_start, report, startup_s=startup_s,
        detections=[d for d in detections if d["model"] == plan.model],
        windows=[w for w in windows if w["model"] == plan.model],
    )  # fmt: skip


def _drain(plan: BacktestPlan, kafka: KafkaConfig, topics: TopicNames, url: str, stats: Any,
           alive: Callable[[], bool], stop: threading.Event) -> list[dict[str, Any]]:
    """Wait until drained (see the module doc); returns the detections read on the way."""
    from modelwatch.live_view import scrape

    def processed() -> bool:
        alive()
        return inputs_processed(scrape(url), topics, stats.predictions, stats.labels)

    wait_until(processed, plan.timeout_s, "the worker to process every event", stop)
    polls = metric_sum(scrape(url), "modelwatch_output_polls_total")

    def polled() -> bool:  # the second poll completed from now started after the last input
        alive()
        return metric_sum(scrape(url), "modelwatch_output_polls_total") >= polls + 2

    wait_until(polled, plan.timeout_s, "the worker to judge and send its closed windows", stop)
    last: list[Any] = [None, time.monotonic()]

    def settled() -> bool:
        alive()
        sig = output_signature(scrape(url), plan.model)
        if sig is None or sig != last[0]:
            last[:] = [sig, time.monotonic()]
            return False
        return time.monotonic() - last[1] >= plan.settle_s

    wait_until(settled, plan.timeout_s, "the worker's windows and detections to settle", stop)
    ends, detections = read_decoded(kafka, topics.detections, "Detection")

    def evaluated() -> bool:
        alive()
        done = group_committed(kafka, EVALUATOR_GROUP, topics.detections, sorted(ends))
        return all(done.get(p, -1) >= end for p, end in ends.items())

    wait_until(evaluated, plan.timeout_s, "the evaluator to judge every detection", stop)
    return detections


def _write_report(plan: BacktestPlan, kafka: KafkaConfig, topics: TopicNames) -> Path:
    from modelwatch.report.data import select
    from modelwatch.report.render import render_report
    from modelwatch.report.source import read_report_records

    assert plan.report is not None
    records = read_report_records(kafka, plan.model, topics, timeout_s=120)
    data = select(plan.model, records.windows, records.references, records.alerts,
                  now_ms=int(time.time() * 1000))  # fmt: skip
    data.notes.extend(records.notes)
    plan.report.parent.mkdir(parents=True, exist_ok=True)
    plan.report.write_text(render_report(data), encoding="utf-8")
    return plan.report
