"""The ``modelwatch`` console command: the composition root's entry point."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from modelwatch import commands

app = typer.Typer(
    name="modelwatch",
    help="Streaming monitor for ML models in production, built on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is None:
            raise RuntimeError(f"modelwatch.commands.{info.name} has no register(app)")
        register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
