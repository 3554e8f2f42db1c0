"""Delayed labels on a real broker: exact join counts and per-window accuracy, and a worker
killed with SIGKILL mid-stream and restarted neither loses nor double counts."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from producers.sdk import ModelwatchPublisher
from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from tests.conftest import TEST_PARTITIONS
from tests.support.groups import wait_group_done
from tests.support.labelled import classifier_predictions, label_rows
from tests.support.processes import WorkerProcess, sample, wait_for
from tests.support.scale import one_id_per_partition
from tests.support.topics import read_topic

pytestmark = pytest.mark.integration

TOPICS = TopicNames()
WINDOW_MS = 60_000
N = 20_000
MAX_DELAY_MS = 90_000


def make_predictions(rng: np.random.Generator, model: str, start_ms: int) -> PredictionColumns:
    return classifier_predictions(rng, model, start_ms, N, 5 * WINDOW_MS, ["x"])


def make_labels(
    rng: np.random.Generator, preds: PredictionColumns
) -> tuple[LabelColumns, np.ndarray]:
    """Labels for 90% of predictions, 80% agreeing with the prediction, shuffled (out of order)."""
    chosen = np.flatnonzero(rng.random(N) < 0.9)
    rng.shuffle(chosen)
    predicted = preds.predicted_class.codes[chosen]
    truth = np.where(rng.random(chosen.size) < 0.8, predicted, 1 - predicted).astype("<i4")
    labels = LabelColumns(
        model=preds.model,
        prediction_ids=[preds.prediction_ids[i] for i in chosen.tolist()],
        event_time_ms=preds.event_time_ms[chosen] + rng.integers(1, MAX_DELAY_MS, chosen.size),
        label_class=CategoricalArray(["0", "1"], truth),
        label_value=truth.astype("<f8"),
    )
    return labels, chosen


def expected_accuracy(
    preds: PredictionColumns, labels: LabelColumns, chosen: np.ndarray
) -> dict[int, tuple[int, float]]:
    window = preds.event_time_ms[chosen] // WINDOW_MS * WINDOW_MS
    correct = preds.predicted_class.codes[chosen] == labels.label_class.codes
    return {
        int(w): (int((window == w).sum()), float(correct[window == w].mean()))
        for w in np.unique(window)
    }


def publish_labels(bootstrap: str, model: str, labels: LabelColumns, rows: slice) -> None:
    part = label_rows(labels, rows)
    with ModelwatchPublisher(bootstrap, model, "v1", linger_ms=20, batch_size=300) as sdk:
        for lo in range(0, part.n, 1000):
            assert sdk.publish_label_columns(label_rows(part, slice(lo, lo + 1000))) > 0
        assert sdk.flush(30) == 0


def publish_sentinel_label(bootstrap: str, model: str, event_time_ms: int) -> None:
    """A label for no prediction in every partition, late in event time: it only advances
    the label clocks (each partition closes its windows on its own)."""
    with ModelwatchPublisher(bootstrap, model, "v1", linger_ms=20) as sdk:
        for pid in one_id_per_partition(f"sentinel-{model}", TEST_PARTITIONS):
            sdk.publish_label(pid, label_class="0", event_time_ms=event_time_ms)
        assert sdk.flush(30) == 0


def test_join_counts_accuracy_and_sigkill_restart(kafka_bootstrap: str, tmp_path) -> None:
    model = f"labels-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(11)
    # 70 windows back: the sentinel label (start + 60 windows) stays behind the wall clock;
    # event times more than input_rules.max_ahead_s (15 min) ahead are dead-lettered
    start_ms = (int(time.time() * 1000) // WINDOW_MS - 70) * WINDOW_MS
    preds = make_predictions(rng, model, start_ms)
    labels, chosen = make_labels(rng, preds)
    half = labels.n // 2
    # windows close once the label clock passes their end + 10 min: later than any label here
    # (shuffled, at most 5 min of prediction time + 90 s of delay apart), so every window is
    # judged on all its labels; a final sentinel label moves the label clock past them all
    # the merge stage waits for every partition's partial: the killed worker's partitions
    # are silent until its restart has restored them, which may take longer than the 30 s
    # default timeout for a partition that stopped moving on a loaded machine
    env = {"MODELWATCH_LABELS__LABEL_HORIZON_MS": str(10 * WINDOW_MS),
           "MODELWATCH_DRIFT__IDLE_PARTITION_S": "300"}
    group = f"g-{model}"

    with ModelwatchPublisher(kafka_bootstrap, model, "v1", linger_ms=20) as sdk:
        for lo in range(0, N, 2000):
            sdk.publish_columns(preds.subset(np.arange(lo, min(N, lo + 2000))))
        assert sdk.flush(30) == 0

    first = WorkerProcess(kafka_bootstrap, tmp_path, group, extra_env=env)
    with first:
        first.wait_ready()
        publish_labels(kafka_bootstrap, model, labels, slice(0, half))
        wait_for(
            lambda: sample(first.scrape(), "modelwatch_labels_joined_total", model=model) >= half,
            60,
            "first half of the labels joined",
            every_s=0.05,
        )
        first.kill()  # SIGKILL: offsets of the last second are applied but not committed

    publish_labels(kafka_bootstrap, model, labels, slice(half, labels.n))
    with WorkerProcess(kafka_bootstrap, tmp_path, group, extra_env=env) as second:
        second.wait_ready()
        wait_for(
            lambda: (
                sample(second.scrape(), "modelwatch_labels_joined_total", model=model) >= labels.n
            ),
            60,
            "every label joined",
        )
        publish_sentinel_label(kafka_bootstrap, model, start_ms + 60 * WINDOW_MS)
        # committed to the end (the sentinel too): a double count would show by now
        wait_group_done(kafka_bootstrap, group, [TOPICS.labels, TOPICS.predictions], 120,
                        "every label")
        metrics = second.scrape()
        assert sample(metrics, "modelwatch_labels_joined_total", model=model) == labels.n
        assert sample(metrics, "modelwatch_duplicate_labels_total", model=model) == 0
        parts: dict[int, dict] = {}

        def windows_published() -> bool:
            for rec in read_topic(kafka_bootstrap, TOPICS.window_stats, model, "WindowStats"):
                if rec["performance"].get("labels_joined"):
                    parts[rec["window_start_ms"]] = rec  # the last part read wins
            return len(parts) >= 4

        wait_for(windows_published, 30, "performance of 4 windows")

    expected = expected_accuracy(preds, labels, chosen)
    for start, rec in parts.items():
        joined, accuracy = expected[start]
        perf = rec["performance"]
        in_window = (preds.event_time_ms // WINDOW_MS * WINDOW_MS) == start
        # every window holds all of its predictions and labels, whatever the restart did
        # to the order the two topics were read in (each stream is cut for a window at a
        # record of its own); it used to lose a partition's rows when the sentinel label
        # was read before that partition's predictions
        assert (perf["labels_joined"], perf["predictions"]) == (joined, int(in_window.sum()))
        assert abs(perf["accuracy"] - accuracy) < 1e-12, (start, perf["accuracy"], accuracy)
