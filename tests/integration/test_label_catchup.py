"""Catching up: hundreds of thousands of predictions and labels are already on the topics
when the worker starts (after downtime, a backfill, a simulator at full speed). The label
side has less work per record and would run ahead of its predictions; the worker reads the
two topics in step by event time (pausing label partitions that run ahead), early labels
wait on disk without a cap, and every label joins: none is dropped for being early."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from producers.sdk import ModelwatchPublisher
from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from tests.conftest import TEST_PARTITIONS
from tests.support.labelled import classifier_predictions, label_rows
from tests.support.processes import WorkerProcess, sample, wait_for
from tests.support.scale import prepare_topics

pytestmark = pytest.mark.integration

N = 200_000
LABELLED = 0.9
CHUNK = 5_000


def make_predictions(rng: np.random.Generator, model: str, start_ms: int) -> PredictionColumns:
    return classifier_predictions(rng, model, start_ms, N, 20 * 60_000,
                                  [f"x{j}" for j in range(8)])


def make_labels(rng: np.random.Generator, preds: PredictionColumns) -> LabelColumns:
    """Labels 1 s .. 2 min after their prediction, published in label-time order."""
    chosen = np.flatnonzero(rng.random(N) < LABELLED)
    t = preds.event_time_ms[chosen] + rng.integers(1_000, 120_000, chosen.size)
    order = np.argsort(t, kind="stable")
    chosen, t = chosen[order], t[order]
    truth = rng.integers(0, 2, chosen.size).astype("<i4")
    return LabelColumns(
        model=preds.model,
        prediction_ids=[preds.prediction_ids[i] for i in chosen.tolist()],
        event_time_ms=t.astype("<i8"),
        label_class=CategoricalArray(["0", "1"], truth),
        label_value=truth.astype("<f8"),
    )


def publish(
    bootstrap: str, topics: TopicNames, preds: PredictionColumns, labels: LabelColumns
) -> None:
    with ModelwatchPublisher(bootstrap, preds.model, "v1", topics=topics, linger_ms=20) as sdk:
        for lo in range(0, N, CHUNK):
            while not sdk.publish_columns(preds.subset(np.arange(lo, min(N, lo + CHUNK)))):
                sdk.flush(5)  # buffer bound reached: let it drain
        for lo in range(0, labels.n, CHUNK):
            chunk = label_rows(labels, slice(lo, lo + CHUNK))
            while not sdk.publish_label_columns(chunk):
                sdk.flush(5)
        assert sdk.flush(60) == 0


def test_backlog_of_predictions_and_labels_joins_every_label(kafka_bootstrap: str, tmp_path):
    model = f"catchup-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(5)
    start_ms = (int(time.time() * 1000) // 60_000 - 60) * 60_000
    preds = make_predictions(rng, model, start_ms)
    labels = make_labels(rng, preds)
    # topics of its own: the early-label gauge counts every model's labels, and other tests
    # leave labels without a prediction (sentinels) on the shared topics
    prefix = f"cu{uuid.uuid4().hex[:6]}."
    topics = prepare_topics(kafka_bootstrap, prefix, TEST_PARTITIONS)
    publish(kafka_bootstrap, topics, preds, labels)  # all on the topics before the worker

    env = {"MODELWATCH_TOPIC_PREFIX": prefix}
    with WorkerProcess(kafka_bootstrap, tmp_path, f"g-{model}", extra_env=env) as worker:
        worker.wait_ready()

        def joined() -> float:
            if not worker.alive():
                raise AssertionError(f"worker exited:\n{worker.log_tail()}")
            return sample(worker.scrape(), "modelwatch_labels_joined_total", model=model)

        wait_for(lambda: joined() >= labels.n, 600, f"{labels.n} labels joined", every_s=1.0)
        metrics = worker.scrape()

    assert sample(metrics, "modelwatch_labels_joined_total", model=model) == labels.n
    assert sample(metrics, "modelwatch_orphan_labels_total", model=model) == 0
    assert sample(metrics, "modelwatch_duplicate_labels_total", model=model) == 0
    assert sample(metrics, "modelwatch_early_labels_waiting") == 0
    # few labels came before their prediction: without the pacing 60 % did on this
    # machine, with it 1.4 % (the first label batch of each partition, and out-of-order
    # predictions); they waited on disk and joined. (Whether a label partition had to be
    # paused for that depends on which topic the consumer fetched first: on a loaded
    # machine it can read the predictions far enough ahead that none is.)
    early = sample(metrics, "modelwatch_early_labels_total", model=model)
    pauses = sample(metrics, "modelwatch_label_partition_pauses_total")
    print(f"early labels: {early:.0f} of {labels.n} ({early / labels.n:.1%}); pauses {pauses:.0f}")
    assert early < 0.1 * labels.n
