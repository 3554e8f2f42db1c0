"""Performance windows merged across partitions: N partition partials give the window one
label engine computes over all labels (stage 2 of the performance half, pure)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.performance.judge import window_doc
from stream_jobs.performance.merger import (
    PerformanceMerger,
    decode_payload,
    encode_payload,
    performance_partial,
)
from stream_jobs.performance.window import WindowPerformance

PT, LT = "modelwatch.predictions", "modelwatch.labels"
WINDOW = 60_000
CFG = LabelConfig(window_ms=WINDOW, label_horizon_ms=0, performance_floors={"accuracy": 0.9})


def data(rng: np.random.Generator, n: int, classes: list[str], regression: bool = False):
    ids = [f"id{i}" for i in range(n)]
    t = rng.integers(0, 3 * WINDOW, n).astype(np.int64)
    seg = CategoricalArray.from_values(rng.choice(["eu", "us", "apac"], n).tolist())
    if regression:
        y = rng.normal(size=n)
        pred = y + rng.normal(scale=0.3, size=n)
        preds = PredictionColumns(
            model="m", model_version="1", prediction_ids=ids, event_time_ms=t,
            latency_ms=np.ones(n), status=np.zeros(n, np.int8), score=pred,
            segments={"region": seg},
        )
        labs = LabelColumns(model="m", prediction_ids=ids, event_time_ms=t + 1_000,
                            label_value=y)
        return preds, labs
    pred = rng.choice(classes, n).tolist()
    truth = [p if rng.random() < 0.7 else rng.choice(classes) for p in pred]
    preds = PredictionColumns(
        model="m", model_version="1", prediction_ids=ids, event_time_ms=t,
        latency_ms=np.ones(n), status=np.zeros(n, np.int8),
        predicted_class=CategoricalArray.from_values(pred), segments={"region": seg},
    )
    labs = LabelColumns(model="m", prediction_ids=ids, event_time_ms=t + 1_000,
                        label_class=CategoricalArray.from_values(truth))
    return preds, labs


def engine() -> LabelEngine:
    return LabelEngine(CFG, MemoryStore())


def feed(e: LabelEngine, preds: PredictionColumns, labs: LabelColumns, rows, off: int) -> None:
    rows = np.asarray(rows, dtype=np.int64)
    lab_rows = rows[::-1]  # labels in another order than their predictions
    e.observe_predictions(PT, 0, off, preds.subset(rows))
    e.observe_labels(LT, 0, off, LabelColumns(
        model="m", prediction_ids=[labs.prediction_ids[i] for i in lab_rows.tolist()],
        event_time_ms=labs.event_time_ms[lab_rows],
        label_class=None if labs.label_class is None else labs.label_class.take(lab_rows),
        label_value=None if labs.label_value is None else labs.label_value[lab_rows],
    ))
    # one prediction past the last window's end + the allowed lateness: the prediction
    # stream is cut past every window (the label clock is already)
    tick = preds.subset(np.array([0]))
    tick.prediction_ids = ["tick"]
    tick.event_time_ms = np.array([3 * WINDOW + 10_000], dtype=np.int64)
    e.observe_predictions(PT, 0, off + 1, tick)


@pytest.mark.parametrize("regression", [False, True])
def test_partials_of_n_partitions_merge_to_the_window_of_all_labels(regression):
    rng = np.random.default_rng(3)
    n, parts = 4_000, 4
    classes = ["cat", "dog", "bird", "fish"]
    preds, labs = data(rng, n, classes, regression)
    whole = engine()
    feed(whole, preds, labs, np.arange(n), 0)
    partition = rng.integers(0, parts, n)
    engines = []
    for p in range(parts):
        e = engine()
        # each partition meets the classes in its own order: codes differ per engine
        e.observe_predictions(PT, 0, 0, preds.subset(np.array([], dtype=np.int64)))
        feed(e, preds, labs, np.flatnonzero(partition == p), 1)
        engines.append(e)
    merger = PerformanceMerger(CFG)
    [cat] = whole.catalogs.values()
    whole_windows = {r.window_start_ms: decode_payload(r.payload)[0]
                     for r in whole.drain_partials() if not r.is_marker}  # fmt: skip
    closed = [[r for r in e.drain_partials() if not r.is_marker] for e in engines]
    assert sorted(whole_windows) == [0, WINDOW, 2 * WINDOW]  # both clocks passed them
    for start in (0, WINDOW, 2 * WINDOW):
        expected = window_doc(whole_windows[start], cat.classes, closed=True)
        partials = [dataclasses.replace(r, partition=p, partitions=parts)
                    for p, recs in enumerate(closed) for r in recs
                    if r.window_start_ms == start]  # fmt: skip
        assert len(partials) == parts
        rng.shuffle(partials)  # arrival order does not matter
        merged = merger.merge(partials, None)
        got, want = merged.stats["performance"], expected["performance"]
        assert set(got) == set(want)
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12), k
        mw, names = merger.merge_windows(partials)
        got_doc = window_doc(mw, names, closed=True)
        assert got_doc.get("label_counts") == expected.get("label_counts")
        for tag, values in expected["slices"].items():
            for value, metrics in values.items():
                assert got_doc["slices"][tag][value] == pytest.approx(metrics, rel=1e-9), value
        if not regression:  # the accuracy floor is judged on the merged window
            [d] = merged.detections
            assert d.subject == "accuracy" and d.active == (want["accuracy"] < 0.9)


def test_a_repeated_partial_of_a_partition_counts_once():
    w = WindowPerformance("m", "1", 0, WINDOW)
    w.n_predictions = 10
    w.add_delays(np.ones(4))
    w.cls.update(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
    old = performance_partial(w, ["a", "b"], partition=2, partitions=4, input_offset=5)
    w.n_predictions = 12
    new = performance_partial(w, ["a", "b"], partition=2, partitions=4, input_offset=7)
    merged, _ = PerformanceMerger(CFG).merge_windows([new, old, old])
    assert merged.n_predictions == 12 and merged.cls.n == 4


def test_payload_carries_a_version_byte():
    w = WindowPerformance("m", "1", 0, WINDOW)
    payload = encode_payload(w, ["x"])
    assert payload[0] == 1 and decode_payload(payload)[1] == ["x"]
    with pytest.raises(ValueError, match="version 9"):
        decode_payload(b"\x09" + payload[1:])
