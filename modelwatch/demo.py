"""``modelwatch demo``: embedded broker + worker + alert evaluator + notifier + simulator,
with a live terminal view. Ctrl-C (or ``--duration``) stops every child it started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from rich.console import Console
from rich.live import Live

from modelwatch.baseline import publish_reference, simulated_reference
from modelwatch.broker import EmbeddedBroker, free_port
from modelwatch.lifetime import die_with_parent, stop_on_signals
from modelwatch.live_view import by_labels, drift_rows, golden_rows, render, scrape
from producers.simulator.scenario import Scenario
from schemas.codec import DecodeError, default_codec
from schemas.kafka import KafkaConfig, follow
from schemas.topics import TopicNames
from stream_jobs.input_rules import InputRules

console = Console()
DEMO_POLICY = Path(__file__).resolve().parent / "demo_policy.yaml"
DEFAULT_SCENARIO = Path(__file__).resolve().parents[1] / "producers" / "scenarios" / "default.yaml"


SIMULATOR_DEFAULT_S = 24 * 3600.0  # how long the simulator runs without --duration


def demo_max_ahead_s(speedup: float, simulator_s: float) -> float:
    """The worker's ``input_rules.max_ahead_s`` for a demo: the simulator's event time starts
    at the wall clock and runs ``speedup`` times faster, so it leads the wall clock by
    ``(speedup - 1) * elapsed``. The production bound (15 min) is left after ~31 s at 30x,
    and every later record was dead-lettered as "ahead of the worker clock": the demo went
    blind before its concept drift. The bound covers the whole run, plus the default.

    >>> demo_max_ahead_s(30.0, 150.0)
    5250.0
    >>> demo_max_ahead_s(1.0, 150.0) == InputRules().max_ahead_s
    True
    """
    return InputRules().max_ahead_s + max(0.0, speedup - 1.0) * simulator_s


def worker_env(
    base: dict[str, str], metrics_port: int, speedup: float, simulator_s: float
) -> dict[str, str]:
    """The demo worker's environment: simulated event time runs ahead of the wall clock,
    so the worker accepts it for the whole run of the simulator."""
    return {
        **base,
        "MODELWATCH_METRICS_PORT": str(metrics_port),
        "MODELWATCH_INPUT_RULES__MAX_AHEAD_S": str(demo_max_ahead_s(speedup, simulator_s)),
    }


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class AlertFeed(threading.Thread):
    """Reads AlertEvents from the alerts topic into a bounded, newest-first list."""

    def __init__(self, kafka: KafkaConfig, topic: str) -> None:
        super().__init__(daemon=True, name="alert-feed")
        self.kafka, self.topic = kafka, topic
        self.alerts: deque[dict] = deque(maxlen=50)
        self.stop = threading.Event()

    def run(self) -> None:
        codec = default_codec()
        for msg in follow(self.kafka, self.topic, self.stop):
            try:
                self.alerts.appendleft(codec.decode(msg.value).record)
            except DecodeError:
                continue


class Child:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelwatch.cli", *args],
            env={**os.environ, **env},
            stdout=open(self.log_path, "wb"),  # noqa: SIM115 - lives as long as the child
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # we forward the stop ourselves
            preexec_fn=die_with_parent(),  # and the child goes when we go, however we go
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def run_demo(
    scenario: Path = DEFAULT_SCENARIO,
    speedup: float = 30.0,
    rate: float = 2000.0,
    duration_s: float | None = None,
    port: int = 9092,
    metrics_port: int = 9108,
    log_dir: Path = Path(".modelwatch/demo"),
) -> int:
    log_dir.mkdir(parents=True, exist_ok=True)
    # the embedded broker keeps its data in memory: local state of an earlier run (the
    # label store's applied offsets, open alerts) refers to offsets that no longer exist
    shutil.rmtree(log_dir / "state", ignore_errors=True)
    topics = TopicNames()
    port = port if _port_free(port) else free_port()
    metrics_port = metrics_port if _port_free(metrics_port) else free_port()
    notifier_port = free_port()
    children: list[Child] = []
    stop = threading.Event()
    stop_on_signals(stop)  # SIGTERM, and SIGHUP when the terminal closes
    with EmbeddedBroker(
        port=port, partitions=4, topics=topics, log_file=log_dir / "broker.log"
    ) as broker:
        env = {
            "MODELWATCH_BOOTSTRAP": broker.bootstrap,
            "MODELWATCH_PROFILE": "embedded",
            "MODELWATCH_KAFKA_CONFIG": "",  # the embedded broker is plaintext loopback
            "MODELWATCH_METRICS_HOST": "127.0.0.1",
            "MODELWATCH_DATA_DIR": str(log_dir / "state"),
        }
        console.print(f"[green]broker[/] {broker.bootstrap}   logs in {log_dir}/")
        plan = Scenario.load(scenario)
        model = plan.model or "churn-classifier"
        publish_reference(broker.kafka, simulated_reference(plan, model), topics)
        console.print(f"[green]reference[/] published for {model} (baseline traffic profile)")
        simulator_s = duration_s or SIMULATOR_DEFAULT_S
        children.append(
            Child(
                "worker", ["worker"], worker_env(env, metrics_port, speedup, simulator_s), log_dir
            )
        )
        for name, args in optional_children(notifier_port):
            children.append(Child(name, args, env, log_dir))
        children.append(
            Child(
                "simulator",
                [
                    "simulate",
                    "--scenario",
                    str(scenario),
                    "--speedup",
                    str(speedup),
                    "--rate",
                    str(rate),
                    "--duration",
                    str(simulator_s),
                ],
                env,
                log_dir,
            )
        )
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        console.print(f"[green]metrics[/] {metrics_url}")
        feed = AlertFeed(broker.kafka, topics.alerts)
        feed.start()
        started = time.monotonic()
        prev: dict = {}
        prev_t = time.monotonic()
        try:
            with Live(console=console, refresh_per_second=2, screen=False) as live:
                while not stop.is_set():
                    if duration_s is not None and time.monotonic() - started > duration_s:
                        break
                    for child in children:
                        if child.proc.poll() not in (None, 0):
                            console.print(
                                f"[red]{child.name} exited with {child.proc.returncode}[/]; "
                                f"see {child.log_path}"
                            )
                            children.remove(child)
                            break
                    try:
                        cur = scrape(metrics_url)
                    except OSError:
                        stop.wait(1.0)
                        continue
                    now_t = time.monotonic()
                    share = by_labels(cur, "modelwatch_drift_share_ratio", "model")
                    live.update(
                        render(
                            golden_rows(prev, cur, now_t - prev_t),
                            drift_rows(cur),
                            share,
                            list(feed.alerts),
                            metrics_url,
                        )
                    )
                    prev, prev_t = cur, now_t
                    stop.wait(2.0)
        except KeyboardInterrupt:
            pass
        finally:
            feed.stop.set()
            for child in reversed(children):
                child.stop()
            console.print("stopped worker, notifier, simulator and broker")
    return 0


def optional_children(notifier_port: int) -> list[tuple[str, list[str]]]:
    """The alerting processes, when their commands exist in this build."""
    from modelwatch.cli import app

    names = {
        c.name or c.callback.__name__.replace("_", "-")
        for c in app.registered_commands
        if c.callback
    }
    names |= {g.name for g in app.registered_groups if g.name}
    out = []
    if "evaluate" in names:
        out.append(("evaluator", ["evaluate", "--policy", str(DEMO_POLICY), "--metrics-port", "0"]))
    if "notify" in names:
        out.append(("notifier", ["notify", "--metrics-port", str(notifier_port)]))
    return out
