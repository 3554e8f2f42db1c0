"""What the benches that compare this tree with an earlier commit share: that commit's tree,
unpacked from git, and the printed table of results."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.support.processes import REPO


def baseline_tree(tmp: Path, ref: str) -> Path | None:
    """The tree of commit ``ref``, unpacked under ``tmp`` (None when git cannot)."""
    dest = tmp / "baseline"
    dest.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref],
                                 check=True, capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        print(f"no baseline ({ref}): {exc}")
        return None
    return dest


def print_result(title: str, result: dict[str, Any], decimals: int = 3) -> None:
    """``result`` under ``title``, one ``name value`` line each."""
    print(f"\n== {title} ==")
    for k, v in result.items():
        print(f"{k:40s} {v:,.{decimals}f}" if isinstance(v, float) else f"{k:40s} {v}")
