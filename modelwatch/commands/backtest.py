"""``modelwatch backtest``: a history file through the whole pipeline on the embedded stack;
the alert timeline it would have produced, and the HTML report."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()


def _reference(
    reference: Path | None, reference_data: Path | None, model: str, features: str | None,
    label_col: str | None, prediction_col: str | None, task: str, positive_class: str,
    negative_class: str, threshold: float,
) -> dict[str, Any]:  # fmt: skip
    """A profile file as it is, or one built from training data like ``reference build``."""
    if (reference is None) == (reference_data is None):
        raise typer.BadParameter("give exactly one of --reference FILE (a profile written by "
                                 "`reference build --out`) or --reference-data TRAIN.csv")
    if reference is not None:
        from stream_jobs.reference.io import read_profile

        return read_profile(reference)
    from modelwatch.commands.reference import build_from_table, load_table

    assert reference_data is not None
    names = [f.strip() for f in (features or "").split(",") if f.strip()] or None
    cols = None if names is None else [*names, *(c for c in (label_col, prediction_col) if c)]
    record = build_from_table(
        model, "", load_table(reference_data, cols), names, label_col, prediction_col,
        str(reference_data), task=task, positive_class=positive_class,
        negative_class=negative_class, threshold=threshold,
    )  # fmt: skip
    console.print(f"profiled {len(record['features'])} features of {reference_data}")
    return record


def register(app: typer.Typer) -> None:
    @app.command()
    def backtest(
        data: Path = typer.Option(..., exists=True, dir_okay=False,
                                  help="history to replay: .csv or .parquet"),
        reference: Path = typer.Option(None, exists=True, dir_okay=False,
                                       help="reference profile file (.avro or .json)"),
        reference_data: Path = typer.Option(None, exists=True, dir_okay=False,
                                            help="or build the reference from this training "
                                                 "table (.csv or .parquet)"),
        model: str = typer.Option(None, help="model name (default: the reference's, or the "
                                             "history file's name)"),
        policy: Path = typer.Option(None, exists=True, dir_okay=False,
                                    help="alert policy YAML merged over the shipped defaults"),
        id_col: str = typer.Option(None, help="prediction id column (default: random ids)"),
        time_col: str = typer.Option(None, help="event time column (datetime or epoch s/ms)"),
        prediction_col: str = typer.Option(None, help="score (numeric) or class (string)"),
        label_col: str = typer.Option(None, help="ground truth column: publishes labels"),
        label_delay: float = typer.Option(0.0, help="label event time = row time + S seconds"),
        latency_col: str = typer.Option(None, help="latency column in milliseconds"),
        features: str = typer.Option(None, help="comma-separated feature columns (default: all)"),
        task: str = typer.Option("auto", help="auto|classification|regression (the replay's "
                                              "and, with --reference-data, the reference's)"),
        positive_class: str = typer.Option("1", help="with --reference-data: positive class"),
        negative_class: str = typer.Option("0", help="with --reference-data: negative class"),
        threshold: float = typer.Option(0.5, help="with --reference-data: score threshold"),
        version: str = typer.Option("backtest", help="model version of the replayed events"),
        report: Path = typer.Option(Path("backtest-report.html"), "--report", "-o",
                                    help="HTML report to write"),
        work_dir: Path = typer.Option(Path(".modelwatch/backtest"),
                                      help="logs and local state of the run"),
        partitions: int = typer.Option(4, help="partitions of the embedded topics"),
        chunk_rows: int = typer.Option(50_000, help="rows per chunk read"),
        timeout: float = typer.Option(600.0, help="seconds each drain step may take"),
    ) -> None:  # fmt: skip
        """Replay history through broker, worker and alerting: the alerts it would have
        raised (in the history's own time), and the HTML report."""
        from alerting.policy import PolicyError, load_policy
        from modelwatch.backtest import (
            BacktestError,
            BacktestPlan,
            pages,
            run_backtest,
            timeline_table,
        )
        from modelwatch.commands.produce import replay_spec
        from producers.replay import ReplayError

        if policy is not None:
            try:
                load_policy(policy)  # a bad policy fails before anything starts
            except PolicyError as exc:
                console.print(f"[red]policy error:[/] {exc}")
                raise typer.Exit(2) from None
        ref = _reference(reference, reference_data, model or data.stem, features, label_col,
                         prediction_col, task, positive_class, negative_class, threshold)
        name = model or (ref["model"] if reference is not None else data.stem)
        if task not in ("auto", "classification", "regression"):
            raise typer.BadParameter(f"--task {task!r}: auto, classification or regression")
        spec = replay_spec(id_col, time_col, prediction_col, label_col, label_delay,
                           latency_col, features, task)  # fmt: skip
        plan = BacktestPlan(model=name, data=data, spec=spec, reference=ref, version=version,
                            policy=policy, report=report, work_dir=work_dir,
                            partitions=partitions, chunk_rows=chunk_rows, timeout_s=timeout)
        stop = threading.Event()
        previous = {s: signal.signal(s, lambda *_: stop.set())
                    for s in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
        try:
            result = run_backtest(plan, console, stop)
        except ReplayError as exc:
            console.print(f"[red]replay error:[/] {exc}")
            raise typer.Exit(2) from None
        except BacktestError as exc:
            console.print(f"[red]backtest failed:[/] {exc}")
            raise typer.Exit(1) from None
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        out.print(timeline_table(result.alerts, f"alerts of {name} (event time of the history)"))
        sent = pages(result.alerts)
        out.print("alerts fired: " + ", ".join(f"{n} {sev}" for sev, n in sent.items())
                  + ("" if policy is None else f"  (policy {policy})"))
        out.print(
            f"{result.rows:,} rows ({result.predictions:,} predictions, {result.labels:,} labels)"
            f" replayed in {result.replay_s:.1f}s = {result.events_per_s:,.0f} rows/s; stack up "
            f"in {result.startup_s:.1f}s, drained in {result.drain_s:.1f}s; {result.wall_s:.1f}s "
            "in all"
        )
        if result.report is not None:
            out.print(f"report: {result.report}")
