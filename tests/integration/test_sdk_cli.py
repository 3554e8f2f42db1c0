"""``modelwatch simulate`` and ``modelwatch replay`` as a user runs them, on a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from schemas.topics import TopicNames
from tests.integration.test_sdk import PARTITIONS, _consume, _create

pytestmark = pytest.mark.integration
MODELWATCH = [sys.executable, "-m", "modelwatch.cli"]


def _topics(bootstrap: str) -> tuple[str, TopicNames]:
    prefix = f"clitest{uuid.uuid4().hex[:8]}."
    names = TopicNames.with_prefix(prefix)
    _create(bootstrap, [names.predictions, names.labels], PARTITIONS)
    return prefix, names


def _run(args: list[str], bootstrap: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELWATCH_BOOTSTRAP": bootstrap, "MODELWATCH_TOPIC_PREFIX": prefix}
    return subprocess.run(
        MODELWATCH + args, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_simulate_command_publishes_predictions_and_labels(kafka_bootstrap: str) -> None:
    prefix, names = _topics(kafka_bootstrap)
    done = _run(
        [
            "simulate",
            "--events",
            "4000",
            "--rate",
            "0",
            "--scenario",
            "incident",
            "--seed",
            "3",
            "--model",
            "cli-sim",
        ],
        kafka_bootstrap,
        prefix,
    )
    assert done.returncode == 0, done.stderr
    assert "4,000 predictions" in done.stderr
    got = _consume(kafka_bootstrap, names.predictions, 4000)
    assert sum(d.record["n"] for _, _, d in got) == 4000
    assert {d.record["model"] for _, _, d in got} == {"cli-sim"}
    labels = _consume(kafka_bootstrap, names.labels, 1)
    assert 0 < sum(d.record["n"] for _, _, d in labels) < 4000  # incident: half get labels


def test_simulate_no_labels_and_bad_scenario(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix, names = _topics(kafka_bootstrap)
    done = _run(
        ["simulate", "--events", "500", "--rate", "0", "--no-labels"], kafka_bootstrap, prefix
    )
    assert done.returncode == 0, done.stderr
    assert "0 labels" in done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("phases:\n  - {kind: meteor_strike}\n")
    failed = _run(["simulate", "--scenario", str(bad)], kafka_bootstrap, prefix)
    assert failed.returncode == 2 and "meteor_strike" in failed.stderr


def test_replay_command(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix, names = _topics(kafka_bootstrap)
    n = 2500
    path = tmp_path / "served.csv"
    pacsv.write_csv(
        pa.table(
            {
                "id": [f"q{i}" for i in range(n)],
                "at_ms": [1_767_225_600_000 + 1000 * i for i in range(n)],
                "f": [float(i) for i in range(n)],
                "seg": ["a" if i % 2 else "b" for i in range(n)],
                "pred": ["yes" if i % 3 else "no" for i in range(n)],
                "truth": ["yes" if i % 4 else "no" for i in range(n)],
            }
        ),
        path,
    )
    done = _run(
        [
            "replay",
            "--model",
            "cli-replay",
            "--data",
            str(path),
            "--id-col",
            "id",
            "--time-col",
            "at_ms",
            "--prediction-col",
            "pred",
            "--label-col",
            "truth",
            "--label-delay",
            "86400",
            "--features",
            "f,seg",
            "--chunk-rows",
            "600",
        ],
        kafka_bootstrap,
        prefix,
    )
    assert done.returncode == 0, done.stderr
    assert "2,500 rows" in done.stderr
    got = _consume(kafka_bootstrap, names.predictions, n)
    assert sum(d.record["n"] for _, _, d in got) == n
    labels = _consume(kafka_bootstrap, names.labels, n)
    assert sum(d.record["n"] for _, _, d in labels) == n
