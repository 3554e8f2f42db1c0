"""``modelwatch report``: one self-contained HTML drift report of one model, from Kafka."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command()
    def report(
        model: str = typer.Option(..., "--model", "-m", help="model to report on"),
        start: str = typer.Option(
            None, "--from", help="range start: ISO datetime (UTC if no zone) or epoch ms"
        ),
        end: str = typer.Option(None, "--to", help="range end: ISO datetime or epoch ms"),
        version: str = typer.Option(None, "--model-version", help="only this model version"),
        out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write"),
        bootstrap: str = typer.Option(
            None, envvar="MODELWATCH_BOOTSTRAP", help="Kafka bootstrap servers"
        ),
        timeout_s: float = typer.Option(30.0, "--timeout", help="time budget for reading"),
    ) -> None:
        """Write an HTML page: reference vs current distributions, drift over time, drift
        share, performance, golden counts and the alerts of a time range."""
        from modelwatch.report.data import parse_time, select
        from modelwatch.report.render import render_report
        from modelwatch.report.source import SourceError, read_report_records
        from modelwatch.settings import load_settings

        try:
            start_ms = parse_time(start) if start else None
            end_ms = parse_time(end) if end else None
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if start_ms is not None and end_ms is not None and end_ms < start_ms:
            raise typer.BadParameter(f"--to ({end}) is before --from ({start})")
        settings = load_settings(bootstrap=bootstrap)
        try:
            records = read_report_records(
                settings.kafka, model, settings.topics, timeout_s=timeout_s
            )
        except SourceError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        data = select(
            model, records.windows, records.references, records.alerts,
            start_ms=start_ms, end_ms=end_ms, version=version,
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
        data.notes.extend(records.notes)
        if not data.has_any_data:
            known = ", ".join(records.other_models[:20]) or "none"
            which = f" version {version!r}" if version is not None else ""
            typer.echo(
                f"error: no data for model {model!r}{which} on {settings.kafka} "
                f"(no window stats, reference or alerts); models with window stats: {known}",
                err=True,
            )
            raise typer.Exit(1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_report(data), encoding="utf-8")
        summary = (
            f"{len(data.windows)} window(s), {len(data.alerts)} alert(s)"
            if data.windows
            else f"no windows in the range ({data.windows_total} outside it)"
        )
        typer.echo(f"wrote {out} — {model}: {summary}")
