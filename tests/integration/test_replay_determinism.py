"""Same history, same answers: three replays on fresh state (a fresh broker each time) give
identical windows, detections and alerts, whatever the timing of threads and partitions.

Labelled replays too: a partition's performance window holds the predictions read before
its prediction cut joined with the labels read before its label cut, whichever agent runs
ahead (windows of 63 to 113 of 150 rows were seen when windows closed on the label clock
alone), and the join's TTL runs on the streams' event clocks (a poll on today's wall clock
once orphaned a replayed history's predictions before their labels came: 0 of 10,800 joined
in one run, all in the next). The drift stage's online-detector votes are decided in event
time (they used to combine in arrival order). A merge poll between two partials of one
closing step once made the step's later windows final without that partition's partials
(8 drift windows a quarter short in 1 of 6 replays): a step's progress now rides on its
last record only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from modelwatch.backtest import BacktestPlan, BacktestResult, run_backtest
from modelwatch.commands.produce import replay_spec
from modelwatch.commands.reference import build_from_table, load_table
from tests.support.history import make_history, reference_table

pytestmark = pytest.mark.integration

WINDOW_MS = 10 * 60_000
# sampled on the wall clock by design (every few seconds, over whatever has arrived): the
# golden checks judge liveness and SLOs of the present, not windows of event time
WALL_CLOCK_KINDS = {"no_traffic", "error_rate", "fallback_rate", "latency_slo"}
WALL_CLOCK_FIELDS = {"fired_at_ms", "resolved_at_ms"}


def window_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten-minute windows: enough rows per window for a small file, and a quick run."""
    monkeypatch.setenv("MODELWATCH_DRIFT__WINDOW_MS", str(WINDOW_MS))
    monkeypatch.setenv("MODELWATCH_LABELS__WINDOW_MS", str(WINDOW_MS))


def reference_of(train: Path) -> dict[str, Any]:
    """One reference for every run (its KLL sketches are randomised: building it again is a
    different input)."""
    return build_from_table("churn", "", load_table(train), None, "label", "score", str(train))


def plan_for(tmp: Path, history: Path, ref: dict[str, Any], name: str,
             labels: bool = True) -> BacktestPlan:  # fmt: skip
    return BacktestPlan(
        model="churn", data=history, reference=ref,
        spec=replay_spec("id", "ts", "score", "label" if labels else None, 0.0, None, None),
        report=None, work_dir=tmp / name, timeout_s=240,
    )  # fmt: skip


def rounded(value: Any) -> Any:
    """Floats to 12 significant digits: partials of a window are merged in arrival order,
    and float sums in another order differ in the last bits."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def canonical(result: BacktestResult) -> dict[str, list[str]]:
    def rows(records: list[dict[str, Any]], drop: set[str]) -> list[str]:
        return sorted(json.dumps(rounded({k: v for k, v in r.items() if k not in drop}),
                                 sort_keys=True, default=repr) for r in records)  # fmt: skip

    detections = [d for d in result.detections if d["kind"] not in WALL_CLOCK_KINDS]
    return {
        "windows": rows(result.windows, set()),
        # partition/offset of an online detector's firing depend on how the SDK batched
        "detections": rows(detections, {"partition", "offset"}),
        "alerts": rows(result.alerts, WALL_CLOCK_FIELDS),
    }


def assert_identical(runs: list[dict[str, list[str]]]) -> None:
    first = runs[0]
    for i, other in enumerate(runs[1:], start=2):
        for part in ("windows", "detections", "alerts"):
            a, b = set(first[part]), set(other[part])
            assert a == b, (
                f"run {i} differs from run 1 in {part}: "
                f"only in run 1: {sorted(a - b)[:3]}; only in run {i}: {sorted(b - a)[:3]}"
            )


def replays(tmp: Path, n: int, labels: bool) -> list[dict[str, list[str]]]:
    history = make_history(tmp / "history.parquet", days=0.5, rows_per_min=15)
    ref = reference_of(reference_table(tmp / "train.parquet"))
    return [canonical(run_backtest(plan_for(tmp, history.path, ref, f"run{i}", labels),
                                   Console(stderr=True, quiet=True)))
            for i in range(n)]  # fmt: skip


def test_three_replays_on_fresh_state_give_identical_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drift windows, their detections and the alerts: identical (no labels, the drift
    stage's online detectors off; with both: the test below)."""
    window_env(monkeypatch)
    monkeypatch.setenv("MODELWATCH_DRIFT__DETECTORS", "false")
    runs = replays(tmp_path, 3, labels=False)
    first = runs[0]
    assert len(first["windows"]) >= 60  # 72 ten-minute windows, the last one still open
    assert any('"feature_drift"' in d and '"active": true' in d for d in first["detections"])
    assert any('"feature_drift"' in a and '"income"' in a for a in first["alerts"])
    assert_identical(runs)


def test_replays_with_labels_and_online_detectors_give_identical_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window_env(monkeypatch)
    # a half-hour vote window: at 15 rows a minute the four partitions' detectors fire
    # minutes apart, and with the default minute no online detection would come out at all
    monkeypatch.setenv("MODELWATCH_DRIFT__VOTE_WINDOW_MS", str(30 * 60_000))
    runs = replays(tmp_path, 2, labels=True)
    assert any('"mode": "online"' in d for d in runs[0]["detections"])
    # every closed performance window holds all of its rows, each labelled (ground truth:
    # 15 rows a minute, one label each); the last window stays open
    perf = [json.loads(w) for w in runs[0]["windows"] if '"labels_joined"' in w]
    perf = [w for w in perf if w["performance"].get("predictions")]
    assert len(perf) >= 60
    rows = WINDOW_MS // 60_000 * 15
    assert {(w["performance"]["predictions"], w["performance"]["labels_joined"])
            for w in perf} == {(rows, rows)}  # fmt: skip
    assert_identical(runs)
