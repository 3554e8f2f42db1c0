"""Command-line conventions: --version, exit codes (2 usage/configuration, 1 runtime), one
line on stderr instead of a traceback. No broker.

``--version`` runs ``python -m modelwatch.cli`` (the entry point end to end); the other cases
call :func:`modelwatch.cli.run`, the function that entry point exits with, in this process:
same exit codes and stderr, without starting an interpreter per case.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelwatch.cli import run
from tests.support.ports import closed_port

REPO = Path(__file__).resolve().parents[2]


class Cli:
    """``modelwatch ARGS`` in this process: its exit code, stdout and stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        saved = dict(os.environ)
        os.environ.update({"MODELWATCH_KAFKA_CONFIG": "", "NO_COLOR": "1", **env})
        try:
            self.capsys.readouterr()
            code = run(list(args))
            out = self.capsys.readouterr()
        finally:  # the root callback writes settings to os.environ: undo that too
            os.environ.clear()
            os.environ.update(saved)
        return subprocess.CompletedProcess(["modelwatch", *args], code, out.out, out.err)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelwatch.cli", "--version"], cwd=REPO, capture_output=True,
        text=True, timeout=120, env={**os.environ, "MODELWATCH_KAFKA_CONFIG": "", "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("modelwatch ") and proc.stdout.split()[1][0].isdigit()


def test_model_version_options_do_not_shadow_the_tool_version(cli: Cli) -> None:
    for command in (["report"], ["simulate"], ["replay"], ["reference", "pin"]):
        proc = cli(*command, "--help", COLUMNS="200")
        assert proc.returncode == 0, proc.stderr
        assert "--model-version" in proc.stdout, command


def test_usage_error_exits_2(cli: Cli) -> None:
    assert cli("topics", "create", "--no-such-option").returncode == 2
    assert cli("topics", "create", "--config", "novalue", "--wait-s", "1").returncode == 2


def test_unreachable_kafka_is_one_line_and_exit_1(cli: Cli) -> None:
    proc = cli("topics", "create", "--wait-s", "2", MODELWATCH_BOOTSTRAP=closed_port())
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("error: cannot reach Kafka at 127.0.0.1:")


def test_bad_client_properties_are_a_configuration_error(cli: Cli, tmp_path: Path) -> None:
    missing = cli("alerts", "list", MODELWATCH_KAFKA_CONFIG=str(tmp_path / "nope.properties"))
    assert missing.returncode == 2
    assert "not a file" in one_error_line(missing)
    bad = tmp_path / "client.properties"
    bad.write_text(f"bootstrap.servers={closed_port()}\nsasl.password=hunter2\nno.such=1\n")
    proc = cli("topics", "create", "--wait-s", "2", MODELWATCH_KAFKA_CONFIG=str(bad))
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "no.such" in line and str(bad) in line and "hunter2" not in line
