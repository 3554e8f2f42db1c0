"""Drift end to end on a real broker: one of 20 numeric features shifts at a known event time;
the worker names that feature, and only it, within two windows, and nothing before."""

from __future__ import annotations

import time
import uuid

import pytest

from modelwatch.baseline import publish_reference, simulated_reference
from producers.sdk import ModelwatchPublisher
from producers.simulator.model import generate
from producers.simulator.scenario import Scenario
from schemas.kafka import read_to_end
from schemas.topics import TopicNames
from tests.support.processes import WorkerProcess, sample, wait_for
from tests.support.topics import read_topic

pytestmark = pytest.mark.integration

TOPICS = TopicNames()
WINDOW_MS = 60_000
SHIFT_AT_S = 6 * 60  # event-time offset of the shift, on a window boundary
DRIFTING = "age"


def test_one_shifted_feature_is_named_within_two_windows(kafka_bootstrap: str, tmp_path) -> None:
    model = f"drift-{uuid.uuid4().hex[:6]}"
    scenario = Scenario.from_dict(
        {
            "name": "one-shift",
            "rate": 2000,
            "speedup": 30,
            "label_fraction": 0.0,
            "phases": [
                {"name": "baseline", "kind": "normal", "start": "0s", "end": f"{SHIFT_AT_S}s"},
                {
                    "name": "shift",
                    "kind": "feature_drift",
                    "start": f"{SHIFT_AT_S}s",
                    "feature": DRIFTING,
                    "shift": 12,
                },
            ],
        }
    )
    publish_reference(kafka_bootstrap, simulated_reference(scenario, model), TOPICS)
    references = len(read_to_end(kafka_bootstrap, TOPICS.references))  # ours is among them
    start_ms = (int(time.time() * 1000) // WINDOW_MS - 30) * WINDOW_MS
    shift_ms = start_ms + SHIFT_AT_S * 1000
    with WorkerProcess(kafka_bootstrap, tmp_path, f"g-{model}") as worker:
        worker.wait_ready()
        # the reference feed reads the references topic from the start
        wait_for(lambda: sample(worker.scrape(), "modelwatch_references_total") >= references,
                 60, f"{references} references loaded or rejected")
        with ModelwatchPublisher(kafka_bootstrap, model, "v1", linger_ms=50) as sdk:
            for preds, _ in generate(
                scenario,
                None,
                seed=3,
                start_ms=start_ms,
                model=model,
                labels=False,
                duration_s=SHIFT_AT_S + 4 * 60,
                batch_size=2000,
            ):
                if preds is not None:
                    assert sdk.publish_columns(preds) == preds.n
            assert sdk.flush(30) == 0

        def windows_closed() -> bool:
            return sample(worker.scrape(), "modelwatch_windows_closed_total", model=model) >= 9

        wait_for(windows_closed, 90, "9 closed windows")
        metrics = worker.scrape()
        stats: list[dict] = []

        def stats_published() -> bool:
            stats[:] = read_topic(kafka_bootstrap, TOPICS.window_stats, model, "WindowStats")
            return len(stats) >= 9

        wait_for(stats_published, 30, "9 window-stats records")
        detections = read_topic(kafka_bootstrap, TOPICS.detections, model, "Detection")
    stats.sort(key=lambda s: s["window_start_ms"])
    assert len(stats) >= 9
    drifted = {
        s["window_start_ms"]: {v["column"] for v in s["drift"] if v["drifted"]} for s in stats
    }
    before = {t: cols for t, cols in drifted.items() if t + WINDOW_MS <= shift_ms}
    after = [drifted[t] for t in sorted(drifted) if t >= shift_ms]
    false_alarms = {t: cols for t, cols in before.items() if cols}
    assert len(before) >= 5 and not false_alarms, [
        (s["window_start_ms"], s["count"], [v for v in s["drift"] if v["drifted"]])
        for s in stats
        if s["window_start_ms"] in false_alarms
    ]
    assert DRIFTING in after[0] | after[1], after[:2]
    assert all(cols <= {DRIFTING} for cols in after), after
    assert all(v["test"] for s in stats for v in s["drift"])  # verdicts name their test

    feature_alarms = [d for d in detections if d["kind"] == "feature_drift" and d["active"]]
    assert feature_alarms and {d["subject"] for d in feature_alarms} == {DRIFTING}
    # window tests carry their window; online detectors (ADWIN, Page-Hinkley) the event
    # time where they fired, which must not be before the shift either
    windowed = [d["window_start_ms"] for d in feature_alarms if d["window_start_ms"] is not None]
    assert windowed, feature_alarms
    assert shift_ms <= min(windowed) < shift_ms + 2 * WINDOW_MS
    assert all(d["event_time_ms"] >= shift_ms for d in feature_alarms), feature_alarms
    assert sample(metrics, "modelwatch_feature_drift_detected", model=model, feature=DRIFTING) == 1
    assert sample(metrics, "modelwatch_feature_drift_detected", model=model) == 1
