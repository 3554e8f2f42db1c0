"""``modelwatch broker`` and ``modelwatch topics create``."""

from __future__ import annotations

import threading

import typer
from rich.console import Console

from modelwatch.broker import EmbeddedBroker
from modelwatch.lifetime import stop_on_signals
from modelwatch.settings import load_settings
from schemas.kafka import create_topics, wait_until_answers

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    topics_app = typer.Typer(help="Manage modelwatch topics on any Kafka cluster.")
    app.add_typer(topics_app, name="topics")

    @app.command()
    def broker(
        port: int = typer.Option(9092, help="loopback port to listen on"),
        partitions: int = typer.Option(4, help="partitions of predictions and labels"),
    ) -> None:
        """Run the embedded Kafka-compatible broker (Tansu) on loopback until Ctrl-C."""
        settings = load_settings()
        stop = threading.Event()
        stop_on_signals(stop)  # SIGTERM, and SIGHUP when the terminal closes
        with EmbeddedBroker(port=port, partitions=partitions, topics=settings.topics) as b:
            console.print(f"[green]broker ready[/] at {b.bootstrap} ({partitions} partitions); "
                          "clients: MODELWATCH_PROFILE=embedded")
            try:
                while not stop.wait(0.5):
                    if b.process is None or b.process.poll() is not None:
                        raise typer.Exit(1)
            except KeyboardInterrupt:
                pass
        console.print("broker stopped")

    @topics_app.command("create")
    def topics_create(
        bootstrap: str = typer.Option(None, envvar="MODELWATCH_BOOTSTRAP"),
        partitions: int = typer.Option(None, help="defaults to MODELWATCH_PARTITIONS or 4"),
        replication_factor: int = typer.Option(
            None, help="defaults to MODELWATCH_REPLICATION_FACTOR or -1 (the broker's default)"
        ),
        config: list[str] = typer.Option(
            None, "--config", help="topic config KEY=VALUE for every topic (repeatable)"
        ),
        wait_s: float = typer.Option(60.0, help="how long to wait for the cluster"),
    ) -> None:
        """Create every modelwatch topic with explicit partition counts (idempotent)."""
        extra: dict[str, str] = {}
        for item in config or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--config")
            extra[key.strip()] = value.strip()
        settings = load_settings(
            bootstrap=bootstrap, partitions=partitions, replication_factor=replication_factor
        )
        wait_until_answers(settings.kafka, wait_s)
        created = create_topics(
            settings.kafka, settings.topics.specs(settings.partitions),
            replication_factor=settings.replication_factor,
            configs={**settings.topic_config, **extra},
        )  # fmt: skip
        console.print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
