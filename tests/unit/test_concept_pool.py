"""The pooled concept test runs in the merge stage: one, two or three workers (label stages
with their own stores) owning six partitions between them give the same concept_drift
detections, in the same event time, as one engine owning them all — whatever order the
partials reach the merge stage in."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.columnar import CategoricalArray
from schemas.topics import TopicNames
from stream_jobs.concept.pool import ConceptPool
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.label_stage import LabelStage
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink
from stream_jobs.performance.merger import PerformanceMerger
from stream_jobs.performance.metrics import LabelMetrics
from stream_jobs.state.metrics import StateMetrics
from tests.unit.test_join_engine import LT, PT, labels, preds

W = 60_000
PARTS = 6
CFG = LabelConfig(window_ms=W, label_horizon_ms=5_000, vote_window_ms=30_000)
CHANGE_MS = 150_000


def workload(seed: int = 2) -> dict[int, list[tuple[list[str], np.ndarray, list[str], list]]]:
    """partition -> batches of (ids, times, predicted classes, true classes): the error rate
    goes from 10 % to 30 % at ``CHANGE_MS``."""
    rng = np.random.default_rng(seed)
    n = 36_000
    t = np.sort(rng.integers(0, 300_000, n))
    part = rng.integers(0, PARTS, n)
    pred = rng.choice(["0", "1"], n)
    wrong = rng.random(n) < np.where(t < CHANGE_MS, 0.10, 0.30)
    truth = np.where(wrong, np.where(pred == "0", "1", "0"), pred)
    out: dict[int, list] = {}
    for p in range(PARTS):
        rows = np.flatnonzero(part == p)
        out[p] = [([f"r{i}" for i in c], t[c], pred[c].tolist(), truth[c].tolist())
                  for c in np.array_split(rows, 30)]  # fmt: skip
    return out


def feed(observe, observe_labels, p: int, batches: list) -> None:
    for k, (ids, t, pred, truth) in enumerate(batches):
        cols = preds(ids, t, np.full(len(ids), 0.5))
        cols.predicted_class = CategoricalArray.from_values(pred)
        observe(p, k, cols)
        observe_labels(p, k, labels(ids, t + 2_000, truth))
    end = len(batches)  # both clocks past the last window
    observe_labels(p, end, labels([f"end{p}"], [400_000], ["1"]))
    observe(p, end, preds([f"end{p}"], [400_000], [0.5]))


def concept(dets: list) -> list[tuple]:
    return sorted((d["event_time_ms"], d["active"], d["window_end_ms"], round(d["value"], 9))
                  for d in dets if d["kind"] == "concept_drift")  # fmt: skip


def in_process() -> list[tuple]:
    e = LabelEngine(CFG, MemoryStore())
    e.input_partitions = PARTS
    for p, batches in workload().items():
        feed(lambda p_, k, c: e.observe_predictions(PT, p_, k, c),
             lambda p_, k, c: e.observe_labels(LT, p_, k, c), p, batches)  # fmt: skip
    dets = e.poll(0).detections + e.flush_windows().detections + e.poll(0).detections
    return concept([d.to_record() for d in dets])


def merged(workers: int, order_seed: int) -> list[tuple]:
    codec, topics = default_codec(), TopicNames()
    stages = []
    for _ in range(workers):
        e = LabelEngine(CFG, MemoryStore())
        reg = CollectorRegistry()
        stage = LabelStage(e, LabelMetrics(reg, e), DetectionSink(codec, topics, reg), codec,
                           topics)  # fmt: skip
        stage.on_assign(topics.labels, [], {}, PARTS)
        stages.append(stage)
    for p, batches in workload().items():
        s = stages[p % workers]
        feed(s.observe, s.observe_labels, p, batches)
    # the partials-topic partition holds each worker's records in that worker's order; the
    # workers' records interleave in any way
    by_worker = [[o for o in s.poll(0.0) if o.topic == topics.window_partials] for s in stages]
    rng = np.random.default_rng(order_seed)
    order: list = []
    while any(by_worker):
        i = int(rng.choice([j for j, q in enumerate(by_worker) if q]))
        order.append(by_worker[i].pop(0))
    reg = CollectorRegistry()
    merge = MergeStage(DriftConfig(), DriftMetrics(reg), StateMetrics(reg),
                       DetectionSink(codec, topics, reg), codec, topics,
                       mergers=[PerformanceMerger(CFG)], concept=ConceptPool(CFG, 1e9))  # fmt: skip
    out = []
    for off, o in enumerate(order):
        merge.observe_partial(0, off, o.value)
        if off % 7 == 0:
            out += merge.poll(0.0)
    out += merge.poll(0.0) + merge.poll(0.0)
    return concept([codec.decode(o.value).record for o in out if o.topic == topics.detections])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_workers_give_the_concept_verdicts_of_one_engine(workers: int) -> None:
    expected = in_process()
    onsets = [d for d in expected if d[1] and d[0] != d[2]]
    assert onsets and CHANGE_MS <= onsets[0][0] < CHANGE_MS + 20_000  # quick, not early
    assert any(not d[1] and d[0] > onsets[0][0] for d in expected)  # and resolves
    for seed in range(3):
        assert merged(workers, seed) == expected
