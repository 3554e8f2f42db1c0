"""``modelwatch broker`` and ``modelwatch topics create``."""

from __future__ import annotations

import threading

import typer
from rich.console import Console

from modelwatch.broker import EmbeddedBroker, create_topics, wait_until_answers
from modelwatch.lifetime import stop_on_signals
from modelwatch.settings import load_settings

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
            console.print(f"[green]broker ready[/] at {b.bootstrap} ({partitions} partitions)")
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
        wait_s: float = typer.Option(60.0, help="how long to wait for the cluster"),
    ) -> None:
        """Create every modelwatch topic with explicit partition counts (idempotent)."""
        settings = load_settings(bootstrap=bootstrap, partitions=partitions)
        wait_until_answers(settings.bootstrap, wait_s)
        created = create_topics(settings.bootstrap, settings.topics.specs(settings.partitions))
        console.print(f"created {len(created)} topics: {', '.join(created) or '(all existed)'}")
