"""A worker leaves for good: its partitions' pending predictions still join their labels.

Worker A reads every prediction alone (they wait in its label store for their labels);
worker B joins the group and takes half the partitions; A is killed with SIGKILL and never
comes back, so B owns every partition. Only then are the labels published. B never read
A's predictions: it rebuilds the join state of the partitions A processed from the topics
on assignment, so every label joins on B, none waits for ever as an early label.

Labels are published while B's second rebalance may still be under way (B's first one took
two of A's partitions, cleanly handed over). That is the case that once failed about one
run in three: Faust resumes fetching a new assignment while its assignment receivers are
still awaited, in an arbitrary order, so B's labels could be joined before the label join
of their partition was restored; they stuck as early labels (the label gate now closes at
the start of every rebalance, ``label_pacing``)."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from producers.sdk import ModelwatchPublisher
from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from tests.conftest import TEST_PARTITIONS
from tests.support.groups import wait_group_done
from tests.support.processes import WorkerProcess, sample, wait_for
from tests.support.scale import prepare_topics

pytestmark = pytest.mark.integration

N = 8_000


def test_pending_predictions_move_with_their_partition(kafka_bootstrap: str, tmp_path) -> None:
    model = f"rebalance-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(17)
    start_ms = (int(time.time() * 1000) // 60_000 - 30) * 60_000
    t = np.sort(start_ms + rng.integers(0, 10 * 60_000, N)).astype("<i8")
    score = rng.random(N)
    ids = [uuid.uuid4().hex for _ in range(N)]
    preds = PredictionColumns(
        model=model, model_version="v1", prediction_ids=ids, event_time_ms=t,
        latency_ms=np.ones(N), status=np.zeros(N, "i1"), score=score,
        predicted_class=CategoricalArray(["0", "1"], (score > 0.5).astype("<i4")),
    )  # fmt: skip
    truth = rng.integers(0, 2, N).astype("<i4")
    labels = LabelColumns(
        model=model, prediction_ids=ids, event_time_ms=t + 30_000,
        label_class=CategoricalArray(["0", "1"], truth), label_value=truth.astype("<f8"),
    )  # fmt: skip
    group = f"g-{model}"
    # topics of its own: the early-label gauge counts every model's labels, and other
    # tests leave labels without a prediction (sentinels) on the shared topics
    prefix = f"rb{uuid.uuid4().hex[:6]}."
    topics = prepare_topics(kafka_bootstrap, prefix, TEST_PARTITIONS)
    env = {"MODELWATCH_TOPIC_PREFIX": prefix}
    with ModelwatchPublisher(kafka_bootstrap, model, "v1", topics=topics, linger_ms=20) as sdk:
        for lo in range(0, N, 1_000):
            assert sdk.publish_columns(preds.subset(np.arange(lo, lo + 1_000)))
        assert sdk.flush(30) == 0

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = WorkerProcess(kafka_bootstrap, tmp_path / "a", group, extra_env=env)
    b = WorkerProcess(kafka_bootstrap, tmp_path / "b", group, extra_env=env)
    with a:
        a.wait_ready()
        wait_for(
            lambda: sample(a.scrape(), "modelwatch_predictions_total", model=model) >= N,
            120,
            "worker A read every prediction",
        )
        # A has committed every prediction: B's restore is what moves them, not a re-read
        wait_group_done(kafka_bootstrap, group, [topics.predictions], 60, "A's commits")
        with b:
            b.wait_ready()
            wait_for(
                lambda: sample(b.scrape(), "modelwatch_rebalances_total") >= 1,
                60,
                "worker B assigned partitions",
            )
            a.kill()  # for good: B takes over A's partitions once A's session times out
            with ModelwatchPublisher(kafka_bootstrap, model, "v1", topics=topics,
                                     linger_ms=20) as sdk:
                for lo in range(0, N, 1_000):
                    rows = np.arange(lo, lo + 1_000)
                    assert sdk.publish_label_columns(
                        LabelColumns(
                            model=model,
                            prediction_ids=[ids[i] for i in rows.tolist()],
                            event_time_ms=labels.event_time_ms[rows],
                            label_class=labels.label_class.take(rows),
                            label_value=labels.label_value[rows],
                        )
                    )
                assert sdk.flush(30) == 0

            def b_joined() -> float:
                if not b.alive():
                    raise AssertionError(f"worker B exited:\n{b.log_tail()}")
                return sample(b.scrape(), "modelwatch_labels_joined_total", model=model)

            try:
                wait_for(lambda: b_joined() >= N, 180, f"{N} labels joined on B", every_s=1.0)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_diagnosis(b, model)}") from None
            # B has committed every label and prediction: a double count would show by now
            wait_group_done(kafka_bootstrap, group, [topics.labels, topics.predictions], 60,
                            "B's commits")
            metrics = b.scrape()
    assert sample(metrics, "modelwatch_labels_joined_total", model=model) == N
    assert sample(metrics, "modelwatch_duplicate_labels_total", model=model) == 0
    assert sample(metrics, "modelwatch_early_labels_waiting") == 0
    assert sample(metrics, "modelwatch_label_records_restored_total") > 0


def _diagnosis(worker: WorkerProcess, model: str) -> str:
    """What B's metrics say about the labels it has not joined (for a failure message)."""
    try:
        m = worker.scrape()
    except Exception as exc:  # B is gone
        return f"no metrics ({exc!r}); log:\n{worker.log_tail()}"
    names = ("labels_joined_total", "early_labels_total", "duplicate_labels_total",
             "orphan_labels_total", "late_labels_total")  # fmt: skip
    lines = [f"{n}={sample(m, 'modelwatch_' + n, model=model)}" for n in names]
    lines += [f"{n}={sample(m, 'modelwatch_' + n)}" for n in (
        "early_labels_waiting", "label_partition_pauses_total", "label_partitions_paused",
        "label_records_restored_total", "rebalances_total")]  # fmt: skip
    lines += [
        f"{n} {dict(lab)}={v}" for (n, lab), v in sorted(m.items())
        if n in ("modelwatch_consumer_lag", "modelwatch_events_processed_total")
    ]  # fmt: skip
    return "\n".join(lines) + f"\nlog:\n{worker.log_tail(60)}"
