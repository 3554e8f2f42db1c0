"""The README's "Metrics reference", rendered from the metric catalogue.

The catalogue itself is ``schemas/metrics_catalogue.py``: the collectors of the worker, the
alerting processes and the SDK are built from it, so this table cannot drift from what the
processes export (a test also compares it with a real worker's ``/metrics``).

Run ``python infra/metrics_reference.py`` to print the Markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from schemas.metrics_catalogue import (  # noqa: E402
    CATALOGUE,
    EVALUATOR,
    NOTIFIER,
    PROCESS,
    SDK,
    WORKER,
    known_series_names,
)

# default Prometheus job names of the shipped configuration (infra/prometheus/prometheus.yml):
# the evaluator and the notifier share one job
JOBS = {WORKER: "modelwatch-worker", EVALUATOR: "modelwatch-notifier",
        NOTIFIER: "modelwatch-notifier"}  # fmt: skip
WHERE = {
    WORKER: "worker (`:9108`)",
    EVALUATOR: "`evaluate` (`:9109`)",
    NOTIFIER: "`notify` (`:9110`)",
    SDK: "SDK (the model server's registry)",
    PROCESS: "every process",
}

__all__ = ["CATALOGUE", "JOBS", "known_series_names", "render_markdown"]


def render_markdown() -> str:
    """The Markdown "Metrics reference" table."""
    lines = [
        "| metric | type | labels | unit | exported by | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in CATALOGUE:
        labels = ", ".join(f"`{x}`" for x in m.labels) or "—"
        where = ", ".join(WHERE[c] for c in m.exported_by)
        unit = m.unit or "—"
        lines.append(f"| `{m.name}` | {m.type} | {labels} | {unit} | {where} | {m.help} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
