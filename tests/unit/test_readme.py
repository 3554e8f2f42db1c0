"""The README opens with the two commands and carries the generated metrics reference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands() -> None:
    head = "\n".join((REPO / "README.md").read_text().splitlines()[:12])
    assert "make demo" in head and "make test" in head


def test_metrics_reference_in_readme_is_the_generated_one() -> None:
    table = subprocess.run(
        [sys.executable, "infra/metrics_reference.py"], cwd=REPO, capture_output=True,
        text=True, check=True,
    ).stdout.strip()
    assert table and table in (REPO / "README.md").read_text(), (
        "README's metrics table is stale: paste `python infra/metrics_reference.py` into it"
    )
