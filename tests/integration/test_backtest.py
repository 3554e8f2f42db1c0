"""Backtests on the embedded stack: two days of history replayed in seconds give the alert
timeline they would have given live (in event time), and ``modelwatch backtest`` runs end to
end from the command line."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console

from modelwatch.backtest import (
    EVALUATOR_GROUP,
    BacktestPlan,
    BacktestResult,
    group_committed,
    read_decoded,
    run_backtest,
)
from modelwatch.commands.produce import replay_spec
from modelwatch.commands.reference import build_from_table, load_table
from schemas.codec import DecodeError, default_codec
from schemas.topics import TopicNames
from tests.support.history import History, make_history, reference_table
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WINDOW_MS = 10 * 60_000


class AlertWatch(threading.Thread):
    """Follows the alerts topic from the start; notes when a firing ``kind`` on ``subject``
    first appears (monotonic clock)."""

    def __init__(self, bootstrap: str, kind: str, subject: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.kind, self.subject = bootstrap, kind, subject
        self.started = time.monotonic()
        self.seen_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        codec = default_codec()
        topic = TopicNames().alerts
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "watch",
                             "enable.auto.commit": False})  # fmt: skip
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        try:
            while not self.stop.is_set() and self.seen_at is None:
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                try:
                    a = codec.decode(msg.value(), expect=("AlertEvent",)).record
                except DecodeError:
                    continue
                if (a["kind"], a["subject"], a["status"]) == (self.kind, self.subject, "firing"):
                    self.seen_at = time.monotonic()
        finally:
            consumer.close()


@dataclass
class TwoDays:
    history: History
    result: BacktestResult
    watch: list[AlertWatch] = field(default_factory=list)


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    tmp = tmp_path_factory.mktemp("two-days")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELWATCH_DRIFT__WINDOW_MS", str(WINDOW_MS))
        mp.setenv("MODELWATCH_LABELS__WINDOW_MS", str(WINDOW_MS))
        # the golden checks call a gap of 2 s "no traffic": the end of the replay is one
        mp.setenv("MODELWATCH_GOLDEN_CHECKS__NO_TRAFFIC_AFTER_S", "2")
        history = make_history(tmp / "history.parquet", days=2, rows_per_min=20)
        train = reference_table(tmp / "train.parquet")
        ref = build_from_table("churn", "", load_table(train), None, "label", "score",
                               str(train))  # fmt: skip
        plan = BacktestPlan(
            model="churn", data=history.path, reference=ref,
            spec=replay_spec("id", "ts", "score", "label", 0.0, None, None),
            report=tmp / "report.html", work_dir=tmp / "work", timeout_s=300,
        )  # fmt: skip
        watches: list[AlertWatch] = []

        def no_traffic_judged(bootstrap: str) -> None:
            """Wait until the evaluator has judged an active no_traffic detection."""
            topic = TopicNames().detections

            def judged() -> bool:
                ends, dets = read_decoded(bootstrap, topic, "Detection")
                if not any(d["kind"] == "no_traffic" and d["active"] for d in dets):
                    return False
                done = group_committed(bootstrap, EVALUATOR_GROUP, topic, sorted(ends))
                return all(done.get(p, -1) >= end for p, end in ends.items())

            wait_for(judged, 90, "an active no_traffic detection judged", every_s=0.5)

        def watch(bootstrap: str) -> None:
            watches.append(AlertWatch(bootstrap, "feature_drift", history.shifted))
            watches[0].start()

        result = run_backtest(plan, Console(stderr=True, quiet=True), on_replayed=watch,
                              on_drained=no_traffic_judged)
        for w in watches:
            w.stop.set()
    return TwoDays(history, result, watches)


def test_a_mid_point_shift_fires_feature_drift_in_event_time_within_a_minute(
    two_days: TwoDays,
) -> None:
    h, result = two_days.history, two_days.result
    assert result.rows == h.rows and result.predictions == h.rows
    [watch] = two_days.watch
    assert watch.seen_at is not None, "no firing feature_drift on the shifted feature"
    assert watch.seen_at - watch.started < 60, f"{watch.seen_at - watch.started:.0f}s"
    firing = [a for a in result.alerts
              if (a["kind"], a["subject"], a["status"]) == ("feature_drift", h.shifted, "firing")]
    assert firing, result.alerts
    first = min(a["event_time_ms"] for a in firing)
    # timed in the history's event time: after the shift, once `for: 10m` has passed
    assert h.shift_ms + 10 * 60_000 <= first <= h.shift_ms + 3 * WINDOW_MS, (
        h.shift_ms, [(a["event_time_ms"], a["status"], a["detector"], a["window_start_ms"])
                     for a in result.alerts if a["subject"] == h.shifted],
        [(d["event_time_ms"], d["detector"], d["value"], d["details"]) for d in result.detections
         if d["subject"] == h.shifted and d["active"] and d["event_time_ms"] < h.shift_ms])
    assert all(a["fired_at_ms"] > h.end_ms for a in firing)  # decided now, about back then
    assert result.report is not None and "<html" in result.report.read_text()[:200].lower()


def test_a_finished_replay_is_not_an_outage(two_days: TwoDays) -> None:
    """The golden checks saw the traffic stop and said so (the fixture waited until the
    evaluator had judged that); the model's event time is history, so nothing fired."""
    critical = [a for a in two_days.result.alerts if a["severity"] == "critical"]
    assert critical == []
    assert not [a for a in two_days.result.alerts if a["kind"] == "no_traffic"]


def test_nothing_on_the_boolean_column(two_days: TwoDays) -> None:
    """A True/False column is one categorical feature in the reference and the replay."""
    on_bool = [a for a in two_days.result.alerts if a["subject"] == two_days.history.boolean]
    assert on_bool == []
    quality = [d for d in two_days.result.detections
               if d["subject"] == two_days.history.boolean and d["active"]
               and d["kind"] in ("type_violation", "missing_rate")]
    assert quality == []  # no type clash between the reference and the replay


def _firing_time(table: str, kind: str, subject: str) -> datetime:
    for line in table.splitlines():
        if kind in line and subject in line and "firing" in line:
            stamp = re.search(r"\d{4}-\d\d-\d\dT[\d:.]+Z", line)
            assert stamp, line
            return datetime.fromisoformat(stamp.group(0).replace("Z", "+00:00"))
    raise AssertionError(f"no firing {kind} on {subject} in:\n{table}")


def test_modelwatch_backtest_end_to_end(tmp_path: Path) -> None:
    history = make_history(tmp_path / "history.csv", days=0.5, rows_per_min=15)
    train = reference_table(tmp_path / "train.csv")
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  feature_drift: {for: 30m}\n")
    report = tmp_path / "out" / "report.html"
    env = {**os.environ, "MODELWATCH_DRIFT__WINDOW_MS": str(WINDOW_MS),
           "MODELWATCH_LABELS__WINDOW_MS": str(WINDOW_MS), "COLUMNS": "160"}  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "modelwatch.cli", "backtest", "--data", str(history.path),
         "--reference-data", str(train), "--model", "churn", "--id-col", "id",
         "--time-col", "ts", "--prediction-col", "score", "--label-col", "label",
         "--policy", str(policy), "--report", str(report),
         "--work-dir", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: str = proc.stdout
    fired = _firing_time(out, "feature_drift", history.shifted)
    # the policy's `for: 30m` counts the history's time
    assert fired.timestamp() * 1000 >= history.shift_ms + 30 * 60_000, out
    assert re.search(r"alerts fired: 0 critical, \d+ major, \d+ minor", out), out
    figures = re.search(r"([\d,]+) rows .* replayed in ([\d.]+)s = ([\d,]+) rows/s", out)
    assert figures and int(figures.group(1).replace(",", "")) == history.rows, out
    assert report.exists() and "churn" in report.read_text()
    print(f"\nbacktest of {history.rows} rows: {figures.group(3)} rows/s replayed, "
          f"{wall:.1f}s wall in all")
    # everything it started is gone: the embedded broker no longer answers
    broker = re.search(r"broker 127\.0\.0\.1:(\d+)", proc.stderr)
    assert broker, proc.stderr[-2000:]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(broker.group(1)))) != 0
