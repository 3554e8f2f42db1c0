"""``modelwatch worker``: the stream-processing worker."""

from __future__ import annotations

import typer

from modelwatch.settings import load_settings


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        metrics_port: int = typer.Option(None, envvar="MODELWATCH_METRICS_PORT"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP"),
        log_level: str = typer.Option(None, help="crit|error|warn|info|debug"),
    ) -> None:
        """Consume predictions and labels; export golden signals, drift and detections."""
        from modelwatch.wiring import build_worker
        from stream_jobs.app import run_worker

        settings = load_settings(
            metrics_port=metrics_port, bootstrap=bootstrap, log_level=log_level
        )
        run_worker(build_worker(settings))
