"""``modelwatch simulate`` and ``modelwatch replay``: traffic into Kafka through the SDK."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from modelwatch.settings import load_settings

console = Console(stderr=True)


def _stop_event() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def replay_spec(
    id_col: str | None,
    time_col: str | None,
    prediction_col: str | None,
    label_col: str | None,
    label_delay: float,
    latency_col: str | None,
    features: str | None,
    task: str = "auto",
) -> Any:
    """The ``ReplaySpec`` of the replay column options (shared by ``replay`` and ``backtest``)."""
    from producers.replay import ReplaySpec

    return ReplaySpec(
        task=task,
        id_col=id_col,
        time_col=time_col,
        prediction_col=prediction_col,
        label_col=label_col,
        label_delay_s=label_delay,
        features=[f.strip() for f in features.split(",") if f.strip()] if features else None,
        latency_col=latency_col,
    )


def replay_with_progress(
    kafka: Any,
    topics: Any,
    model: str,
    version: str,
    data: Path,
    spec: Any,
    *,
    rate: float = 0.0,
    chunk_rows: int = 50_000,
    stop: threading.Event | None = None,
) -> tuple[Any, Any, int]:
    """Replay ``data`` through the SDK with a progress bar; returns (ReplayStats, the
    publisher, records left unacknowledged). Raises ``ReplayError`` on a bad table."""
    from producers.replay import count_rows
    from producers.replay import replay as run_replay
    from producers.sdk import ModelwatchPublisher

    stop = stop or threading.Event()
    total = count_rows(data)
    with (
        ModelwatchPublisher(kafka, model, version, topics=topics) as pub,
        Progress(
            TextColumn("[bold]replay[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task(data.name, total=total, speed="")

        def on_progress(s: Any) -> None:
            rows, wall = s.rows, max(s.wall_s, 1e-9)
            progress.update(task, completed=rows, speed=f"{rows / wall:,.0f} rows/s")

        stats = run_replay(
            pub, data, spec, rate=rate, chunk_rows=chunk_rows, on_progress=on_progress,
            should_stop=stop.is_set,
        )  # fmt: skip
        left = pub.flush(60)
    return stats, pub, left


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        model: str = typer.Option(
            None, help="model name (default: the scenario's, or churn-classifier)"
        ),
        version: str = typer.Option("v1", "--model-version", help="model version"),
        events: int = typer.Option(None, "--events", help="stop after N predictions"),
        duration: float = typer.Option(None, "--duration", help="stop after S wall-clock seconds"),
        rate: float = typer.Option(None, help="events per wall-clock second (0 = unpaced)"),
        scenario: str = typer.Option("default", help="scenario YAML file or shipped name"),
        speedup: float = typer.Option(None, help="event time runs X times faster than wall time"),
        seed: int = typer.Option(0, help="random seed"),
        labels: bool = typer.Option(True, "--labels/--no-labels", help="publish delayed labels"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help="Kafka servers"),
    ) -> None:
        """Simulate a classifier's traffic (features, scores, latencies, errors, labels)."""
        from producers.sdk import ModelwatchPublisher
        from producers.simulator.run import run_scenario
        from producers.simulator.scenario import Scenario, ScenarioError

        try:
            sc = Scenario.load(scenario)
        except ScenarioError as exc:
            console.print(f"[red]scenario error:[/] {exc}")
            raise typer.Exit(2) from None
        settings = load_settings(bootstrap=bootstrap) if bootstrap else load_settings()
        name = model or sc.model or "churn-classifier"
        stop = _stop_event()
        speed = sc.speedup if speedup is None else speedup
        console.print(
            f"[green]simulating[/] {name}/{version} scenario={sc.name} "
            f"rate={sc.rate if rate is None else rate}/s speedup={speed}x -> {settings.kafka}"
        )
        for p in sc.phases:
            console.print(
                f"  phase {p.name:<28} {p.kind:<17} event +{p.start_s:>7.0f}s "
                f"(wall +{p.start_s / speed:>6.1f}s)"
            )
        last = [0.0]

        def report(stats: object) -> None:
            s = stats  # RunStats
            if s.wall_s - last[0] >= 5.0:  # type: ignore[attr-defined]
                last[0] = s.wall_s  # type: ignore[attr-defined]
                console.print(
                    f"  {s.wall_s:7.1f}s wall  {s.predictions:>10,} predictions  "  # type: ignore[attr-defined]
                    f"{s.labels:>10,} labels  event +{s.event_span_s:,.0f}s"  # type: ignore[attr-defined]
                )

        with ModelwatchPublisher(settings.kafka, name, version, topics=settings.topics) as pub:
            stats = run_scenario(
                pub,
                sc,
                n_events=events,
                duration_s=duration,
                rate=rate,
                speedup=speedup,
                seed=seed,
                labels=labels,
                should_stop=stop.is_set,
                on_batch=report,
            )
            left = pub.flush(30)
        console.print(
            f"[green]done[/] {stats.predictions:,} predictions, {stats.labels:,} labels in "
            f"{stats.wall_s:.1f}s; published {pub.published}; dropped {pub.dropped or 0}"
            + (f"; {left} unacknowledged" if left else "")
        )

    @app.command()
    def replay(
        model: str = typer.Option(..., help="model name"),
        data: Path = typer.Option(..., exists=True, dir_okay=False, help=".csv or .parquet"),
        id_col: str = typer.Option(None, help="prediction id column (default: random ids)"),
        time_col: str = typer.Option(None, help="event time column (datetime or epoch s/ms)"),
        prediction_col: str = typer.Option(None, help="score in [0, 1] or class (text, 0/1)"),
        label_col: str = typer.Option(None, help="ground truth column: publishes labels"),
        task: str = typer.Option(
            "auto",
            help="auto|classification|regression; auto: a boolean, text, 0/1 or few-integer "
            "label column is a classification (decided on the first chunk, kept)",
        ),
        label_delay: float = typer.Option(0.0, help="label event time = row time + S seconds"),
        latency_col: str = typer.Option(None, help="latency column in milliseconds"),
        features: str = typer.Option(None, help="comma-separated feature columns (default: all)"),
        rate: float = typer.Option(0.0, help="rows per second (0 = as fast as possible)"),
        version: str = typer.Option("replay", "--model-version", help="model version"),
        chunk_rows: int = typer.Option(50_000, help="rows per chunk read"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help="Kafka servers"),
    ) -> None:
        """Publish a table's rows as prediction (and label) events, keeping its timestamps."""
        from producers.replay import ReplayError

        settings = load_settings(bootstrap=bootstrap) if bootstrap else load_settings()
        if task not in ("auto", "classification", "regression"):
            raise typer.BadParameter(f"--task {task!r}: auto, classification or regression")
        spec = replay_spec(
            id_col, time_col, prediction_col, label_col, label_delay, latency_col, features, task
        )
        try:
            stats, pub, left = replay_with_progress(
                settings.kafka, settings.topics, model, version, data, spec,
                rate=rate, chunk_rows=chunk_rows, stop=_stop_event(),
            )  # fmt: skip
        except ReplayError as exc:
            console.print(f"[red]replay error:[/] {exc}")
            raise typer.Exit(2) from None
        console.print(
            f"[green]done[/] {stats.rows:,} rows -> {stats.predictions:,} predictions, "
            f"{stats.labels:,} labels in {stats.wall_s:.1f}s; published {pub.published}; "
            f"dropped {pub.dropped or 0}" + (f"; {left} unacknowledged" if left else "")
        )
