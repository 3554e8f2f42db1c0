"""``modelwatch demo``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        scenario: Path = typer.Option(None, help="simulator scenario YAML (default: shipped)"),
        speedup: float = typer.Option(30.0, help="event time runs this much faster than wall time"),
        rate: float = typer.Option(2000.0, help="predictions per wall-clock second"),
        duration: float = typer.Option(None, help="stop after this many seconds (default: Ctrl-C)"),
        port: int = typer.Option(9092, help="broker port (a free one if taken)"),
        metrics_port: int = typer.Option(9108, help="worker metrics port (a free one if taken)"),
    ) -> None:
        """Broker + worker + alerting + simulated model server, with a live terminal view."""
        from modelwatch.demo import DEFAULT_SCENARIO, run_demo

        scenario = scenario or DEFAULT_SCENARIO
        raise typer.Exit(run_demo(scenario, speedup, rate, duration, port, metrics_port))
