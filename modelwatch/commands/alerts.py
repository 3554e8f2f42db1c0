"""Alerting commands: evaluate, notify, alerts tail|list, silence add|list|expire."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from alerting.durations import format_duration_ms, parse_duration_ms
from alerting.silences import Silence, SilenceStore, silence_key
from alerting.sinks.base import iso
from alerting.sinks.log import alert_text
from schemas.codec import DecodeError, default_codec
from schemas.detection import DetectionKind
from schemas.kafka import KafkaConfig, follow, read_to_end

BOOTSTRAP_HELP = "Kafka bootstrap servers (env MODELWATCH_BOOTSTRAP, default 127.0.0.1:9092)"


def _settings(bootstrap: str | None) -> Any:
    from modelwatch.settings import load_settings

    return load_settings(bootstrap=bootstrap)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
    return stop


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _serve_metrics(registry: Any, port: int, host: str, health: Any) -> None:
    """``/metrics`` and ``/healthz`` (progress, :mod:`schemas.health`) on one port."""
    if port > 0:
        from schemas.health import start_metrics_and_health

        start_metrics_and_health(port, host, registry, health)


def _fail(message: str, code: int = 2) -> None:
    """One line on stderr; exit 2 (usage) by default, 1 for runtime failures."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _read_alerts(kafka: KafkaConfig, topic: str) -> list[dict[str, Any]]:
    codec = default_codec()
    out = []
    for rec in read_to_end(kafka, topic):
        try:
            out.append(codec.decode(rec.value, expect=("AlertEvent",)).record)
        except DecodeError:
            continue
    return out


def _read_silences(kafka: KafkaConfig, topic: str) -> SilenceStore:
    codec = default_codec()
    store = SilenceStore()
    for rec in read_to_end(kafka, topic):
        if rec.key is None:
            continue
        if rec.value is None:
            store.apply(silence_key(rec.key), None)
            continue
        try:
            store.apply(
                silence_key(rec.key),
                Silence.from_record(codec.decode(rec.value, expect=("Silence",)).record),
            )
        except DecodeError:
            continue
    return store


def register(app: typer.Typer) -> None:
    alerts_app = typer.Typer(help="Look at alerts.", no_args_is_help=True)
    silence_app = typer.Typer(help="Mute alerts of a model for a while.", no_args_is_help=True)
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(silence_app, name="silence")

    @app.command()
    def evaluate(
        policy: Path = typer.Option(None, help="policy YAML merged over the shipped defaults"),
        metrics_port: int = typer.Option(9109, help="Prometheus /metrics port (0: off)"),
        group_id: str = typer.Option("modelwatch-evaluator"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help=BOOTSTRAP_HELP),
        log_level: str = typer.Option("info"),
    ) -> None:
        """Turn detections into alerts (policy + lifecycle) and retrain requests."""
        from alerting.evaluator import Evaluator
        from alerting.policy import PolicyError, load_policy

        settings = _settings(bootstrap)
        _logging(log_level)
        try:
            pol = load_policy(policy or settings.alert_policy_file)
        except PolicyError as exc:
            _fail(str(exc))
        evaluator = Evaluator(settings.kafka, pol, settings.topics, group_id=group_id,
                              stall_after_s=settings.health_stall_s)
        _serve_metrics(evaluator.registry, metrics_port, settings.metrics_host, evaluator.health)
        evaluator.run(_stop_on_signals())

    @app.command()
    def notify(
        routes: Path = typer.Option(None, help="routes YAML (default: log sink for everything)"),
        metrics_port: int = typer.Option(9110, help="Prometheus /metrics port (0: off)"),
        state_dir: Path = typer.Option(
            None, help="where delivered idempotency keys are kept (default: <data_dir>/notify)"
        ),
        group_id: str = typer.Option("modelwatch-notifier"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help=BOOTSTRAP_HELP),
        log_level: str = typer.Option("info"),
    ) -> None:
        """Deliver alerts to sinks: group, repeat, resolve, retry, dead-letter."""
        from alerting.notifier import Notifier
        from alerting.routes import RoutesError, load_routes
        from alerting.sinks import SinkConfigError, build_sinks

        settings = _settings(bootstrap)
        _logging(log_level)
        try:
            conf = load_routes(routes or settings.routes_file)
            sinks = build_sinks(conf.sinks)
        except (RoutesError, SinkConfigError) as exc:
            _fail(str(exc))
        notifier = Notifier(
            settings.kafka,
            conf,
            sinks,
            state_dir or Path(settings.data_dir) / "notify",
            settings.topics,
            group_id=group_id,
            stall_after_s=settings.health_stall_s,
        )
        _serve_metrics(notifier.registry, metrics_port, settings.metrics_host, notifier.health)
        notifier.run(_stop_on_signals())

    @alerts_app.command("tail")
    def tail(
        severity: list[str] = typer.Option(None, help="only these severities (repeatable)"),
        from_beginning: bool = typer.Option(False, help="replay the whole alerts topic first"),
        as_json: bool = typer.Option(False, "--json", help="one JSON AlertEvent per line"),
        max_alerts: int = typer.Option(0, "--max", help="exit after this many alerts (0: never)"),
        timeout: float = typer.Option(0, help="exit after this many seconds (0: never)"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help=BOOTSTRAP_HELP),
    ) -> None:
        """Print alerts as they come."""
        settings = _settings(bootstrap)
        wanted = set(severity or [])
        if wanted - {"critical", "major", "minor"}:
            _fail(f"unknown severity {sorted(wanted - {'critical', 'major', 'minor'})}")
        codec = default_codec()
        console = Console(highlight=False)
        topic = settings.topics.alerts
        # Follow from the beginning and, unless --from-beginning, skip what was produced
        # before we started: the embedded broker answers ListOffsets (OFFSET_END) wrongly.
        start_ms = int(time.time() * 1000) - 1000
        stop = _stop_on_signals()
        if timeout:
            timer = threading.Timer(timeout, stop.set)
            timer.daemon = True
            timer.start()
        shown = 0
        records = follow(settings.kafka, topic, stop, poll_s=0.2)
        try:
            for msg in records:
                if not from_beginning and msg.timestamp_ms < start_ms:
                    continue
                try:
                    ev = codec.decode(msg.value, expect=("AlertEvent",)).record
                except DecodeError:
                    continue
                if wanted and ev["severity"] not in wanted:
                    continue
                if as_json:
                    sys.stdout.write(json.dumps(ev, sort_keys=True) + "\n")
                    sys.stdout.flush()
                else:
                    console.print(alert_text(ev))
                shown += 1
                if max_alerts and shown >= max_alerts:
                    return
        finally:
            records.close()

    @alerts_app.command("list")
    def list_alerts(
        as_json: bool = typer.Option(False, "--json", help="one JSON AlertEvent per line"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help=BOOTSTRAP_HELP),
    ) -> None:
        """Show what is firing now (last event per fingerprint is 'firing')."""
        settings = _settings(bootstrap)
        last: dict[str, dict[str, Any]] = {}
        for ev in _read_alerts(settings.kafka, settings.topics.alerts):
            last[ev["fingerprint"]] = ev
        firing = sorted(
            (e for e in last.values() if e["status"] == "firing"),
            key=lambda e: (
                ["critical", "major", "minor"].index(e["severity"]),
                e["model"],
                e["kind"],
                e["subject"],
            ),
        )
        if as_json:
            for ev in firing:
                sys.stdout.write(json.dumps(ev, sort_keys=True) + "\n")
            return
        console = Console(highlight=False)
        if not firing:
            console.print("no alerts firing")
            return
        table = Table(title=f"{len(firing)} alert(s) firing")
        for col in (
            "severity",
            "model",
            "kind",
            "subject",
            "value",
            "threshold",
            "since",
            "summary",
        ):
            table.add_column(col)
        styles = {"critical": "bold white on red", "major": "bold dark_orange", "minor": "cyan"}
        for ev in firing:
            table.add_row(
                f"[{styles[ev['severity']]}]{ev['severity']}[/]",
                ev["model"],
                ev["kind"],
                ev["subject"],
                f"{ev['value']:.4g}",
                f"{ev['threshold']:.4g}",
                iso(ev["fired_at_ms"]),
                ev["summary"],
            )
        console.print(table)

    @silence_app.command("add")
    def silence_add(
        model: str = typer.Option(..., help="model whose alerts to mute"),
        kind: str = typer.Option(None, help="only this detection kind (default: every kind)"),
        duration: str = typer.Option(..., "--for", help="how long, e.g. 30m, 2h, 1d"),
        reason: str = typer.Option(..., help="why (shown to whoever looks at silences)"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help=BOOTSTRAP_HELP),
    ) -> None:
        """Mute a model's alerts (optionally one kind) for a while."""
        settings = _settings(bootstrap)
        if kind is not None and kind not in {k.value for k in DetectionKind}:
            _fail(f"unknown kind {kind!r}; known: {sorted(k.value for k in DetectionKind)}")
        try:
            ms = parse_duration_ms(duration)
            silence = Silence.new(
                model,
                kind,
                ms,
                reason,
                int(time.time() * 1000),
                created_by=os.environ.get("USER", ""),
            )
        except ValueError as exc:
            _fail(str(exc))
        producer = settings.kafka.producer()
        producer.produce(
            settings.topics.silences,
            key=silence.id.encode(),
            value=default_codec().encode("Silence", silence.to_record()),
        )
        if producer.flush(15):
            _fail("the broker did not acknowledge the silence", 1)
        typer.echo(
            f"{silence.id}  silences {model}{'/' + kind if kind else ''} until "
            f"{iso(silence.expires_at_ms)} ({format_duration_ms(ms)})"
        )

    @silence_app.command("list")
    def silence_list(
        show_all: bool = typer.Option(False, "--all", help="include expired silences"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help=BOOTSTRAP_HELP),
    ) -> None:
        """Show active silences."""
        settings = _settings(bootstrap)
        store = _read_silences(settings.kafka, settings.topics.silences)
        now = int(time.time() * 1000)
        silences = store.all() if show_all else store.active(now)
        if not silences:
            typer.echo("no active silences")
            return
        for s in silences:
            state = "active" if s.is_active(now) else "expired"
            typer.echo(
                f"{s.id}  {s.model}/{s.kind or '*'}  until {iso(s.expires_at_ms)}  "
                f"{state}  {s.reason}"
            )

    @silence_app.command("expire")
    def silence_expire(
        silence_id: str = typer.Argument(..., help="id printed by `silence add`"),
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP", help=BOOTSTRAP_HELP),
    ) -> None:
        """End a silence now (writes a tombstone)."""
        settings = _settings(bootstrap)
        store = _read_silences(settings.kafka, settings.topics.silences)
        if store.get(silence_id) is None:
            _fail(f"no silence with id {silence_id!r}")
        producer = settings.kafka.producer()
        producer.produce(settings.topics.silences, key=silence_id.encode(), value=None)
        if producer.flush(15):
            _fail("the broker did not acknowledge the tombstone", 1)
        typer.echo(f"{silence_id} expired")
