"""One column-type and task inference for reference build, replay and the SDK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from modelwatch.commands.reference import build_from_table, load_table
from producers.replay import ReplayError, ReplaySpec, chunk_to_columns, read_chunks, resolve_spec
from producers.rows import prediction_rows_to_columns
from schemas import column_types as ct
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.evaluate import evaluate_window
from stream_jobs.reference.view import ReferenceView
from stream_jobs.windows.window import WindowPartial


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < 0.9
    return pa.table(
        {
            "ts": np.arange(n, dtype=np.int64) + 1_700_000_000,
            "age": rng.normal(40, 10, n),
            "vip": rng.random(n) < 0.3,
            "clicks01": rng.integers(0, 2, n),
            "plan": rng.choice(["a", "b"], n),
            "pred": np.where(right, y, 1 - y),
            "label": y,
        }
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_boolean_column_is_the_same_categorical_feature_in_reference_and_replay(
    tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"data.{fmt}"
    table = _table(3_000)
    pacsv.write_csv(table, path) if fmt == "csv" else pq.write_table(table, path)
    data = load_table(path)
    ref = build_from_table("m", "", data, None, "label", "pred", str(path))
    kinds = {c["name"]: c["kind"] for c in ref["features"]}
    assert kinds == {
        "ts": "numeric",
        "age": "numeric",
        "vip": "categorical",
        "clicks01": "numeric",  # 0/1 integers stay numeric, on both sides
        "plan": "categorical",
    }
    vip = next(c for c in ref["features"] if c["name"] == "vip")
    assert set(vip["categories"]) == {"true", "false"}
    spec = ReplaySpec(time_col="ts", prediction_col="pred", label_col="label")
    view = ReferenceView(ref)
    for batch in read_chunks(path, 1_000):
        preds, labels = chunk_to_columns(batch, resolve_spec(batch, spec), "m", "v")
        assert set(preds.categorical) == {"vip", "plan"}
        assert set(preds.numeric) == {"age", "clicks01"}
        assert set(preds.categorical["vip"].dictionary) <= {"true", "false"}
        # the window judged against that reference: no type violation, no missing rate
        w = WindowPartial("m", "v", 0, 60_000, view.partial_spec(400, 100))
        w.update(preds)
        closed = evaluate_window(w, view, DriftConfig())
        fired = {(d.kind, d.subject) for d in closed.detections if d.active}
        assert not {k for k, s in fired if s == "vip"}, fired
        assert labels is not None and labels.label_class is not None


def test_binary_predictions_and_labels_are_a_classification_with_accuracy(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pacsv.write_csv(_table(2_000), path)
    ref = build_from_table("m", "", load_table(path), ["age"], "label", "pred", str(path))
    assert 0.85 < ref["performance"]["accuracy"] < 0.95
    assert {"precision", "recall", "f1", "error_rate"} <= set(ref["performance"])
    assert "mape" not in ref["performance"]
    assert ref["label"]["kind"] == "categorical" and set(ref["label"]["categories"]) == {"0", "1"}
    batch = next(read_chunks(path))
    spec = resolve_spec(batch, ReplaySpec(prediction_col="pred", label_col="label"))
    assert (spec.task, spec.prediction_kind) == ("classification", "class")
    preds, labels = chunk_to_columns(batch, spec, "m", "v")
    assert preds.score is None and set(preds.predicted_class.dictionary) == {"0", "1"}
    assert labels.label_value is None and set(labels.label_class.dictionary) == {"0", "1"}


def test_true_false_and_yes_no_labels_are_classes() -> None:
    assert ct.infer_task(pa.array([True, False])) == "classification"
    assert ct.infer_task(pa.array(["yes", "no", None])) == "classification"
    assert ct.infer_task(pa.array([0.0, 1.0, None])) == "classification"
    assert ct.infer_task(np.array([3, 1, 2, 2])) == "classification"  # a few integer classes
    assert ct.infer_task(pa.array(np.arange(50))) == "regression"  # many integers: a count
    assert ct.infer_task(pa.array([0.5, 1.25, 3.0])) == "regression"
    assert ct.class_names(pa.array(["True", "false", "yes"])) == ["1", "0", "yes"]


def test_replay_decides_the_task_once_and_task_option_overrides(tmp_path: Path) -> None:
    # the first chunk's labels are 0/1; later ones are not: the task does not flip
    y = np.concatenate([np.tile([0.0, 1.0], 50), np.linspace(0.1, 9.9, 100)])
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": y * 2, "pred": y, "label": y}), path)
    chunks = list(read_chunks(path, 100))
    auto = resolve_spec(chunks[0], ReplaySpec(prediction_col="pred", label_col="label"))
    assert auto.task == "classification"
    _, later = chunk_to_columns(chunks[1], auto, "m", "v")
    assert later.label_class is not None and later.label_value is None
    forced = resolve_spec(
        chunks[0], ReplaySpec(prediction_col="pred", label_col="label", task="regression")
    )
    preds, labels = chunk_to_columns(chunks[0], forced, "m", "v")
    assert preds.score is not None and labels.label_value is not None
    with pytest.raises(ValueError, match="unknown task"):
        ReplaySpec(task="ranking")
    text = pa.RecordBatch.from_pydict({"label": ["a", "b"]})
    with pytest.raises(ReplayError, match="regression target"):
        chunk_to_columns(text, ReplaySpec(label_col="label", task="regression"), "m", "v")


def test_scores_stay_scores_for_a_classifier() -> None:
    batch = pa.RecordBatch.from_pydict({"p": [0.9, 0.2, 0.7], "y": [1, 0, 0]})
    spec = resolve_spec(batch, ReplaySpec(prediction_col="p", label_col="y"))
    assert (spec.task, spec.prediction_kind) == ("classification", "score")
    preds, _ = chunk_to_columns(batch, spec, "m", "v")
    assert preds.score.tolist() == [0.9, 0.2, 0.7]


def test_sdk_booleans_are_categorical_wherever_passed() -> None:
    row = ("a", 1, {"x": 1.0, "vip": np.bool_(False)}, {"flag": "True"}, None, None, None,
           1.0, "ok", None, 0, 0, None)  # fmt: skip
    cols = prediction_rows_to_columns("m", "1", [row, row])
    assert list(cols.numeric) == ["x"]
    assert cols.categorical["vip"].values() == ["false", "false"]
    assert cols.categorical["flag"].values() == ["true", "true"]


def test_a_type_mismatch_is_one_type_violation_not_also_a_missing_rate() -> None:
    """Traffic from an old producer sends the boolean as 0/1 numbers: the window reports
    the type violation of that feature, and no missing rate for the same values."""
    rng = np.random.default_rng(5)
    n = 2_000
    ref_table = pa.table({"vip": rng.random(n) < 0.3, "age": rng.normal(40, 10, n)})
    data = {k: ct.feature_values(ref_table.column(k)) for k in ref_table.column_names}
    view = ReferenceView(build_from_table("m", "", data, None, None, None, "t"))
    batch = pa.RecordBatch.from_pydict(
        {"vip": (rng.random(n) < 0.3).astype(np.int64), "age": rng.normal(40, 10, n)}
    )
    preds, _ = chunk_to_columns(batch, ReplaySpec(), "m", "v")
    assert "vip" in preds.numeric  # an integer column: numeric, against a boolean reference
    w = WindowPartial("m", "v", 0, 60_000, view.partial_spec(400, 100))
    w.update(preds)
    closed = evaluate_window(w, view, DriftConfig())
    active = sorted((d.kind, d.subject) for d in closed.detections if d.active)
    assert active == [("type_violation", "vip")]


def test_the_module_examples_hold() -> None:
    import doctest

    result = doctest.testmod(ct, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_replayed_binary_predictions_and_labels_get_classification_metrics() -> None:
    """0/1 predictions with 0/1 labels, replayed, through the label engine: accuracy and
    the other classification metrics, no MAE / MAPE."""
    from stream_jobs.join.config import LabelConfig
    from stream_jobs.join.engine import LabelEngine
    from stream_jobs.join.store import MemoryStore

    table = _table(2_000)
    batch = table.to_batches()[0]
    spec = resolve_spec(batch, ReplaySpec(id_col=None, time_col="ts", prediction_col="pred",
                                          label_col="label"))  # fmt: skip
    preds, labels = chunk_to_columns(batch, spec, "m", "v")
    e = LabelEngine(LabelConfig(label_horizon_ms=0, window_ms=3_600_000), MemoryStore())
    e.observe_predictions("P", 0, 0, preds)
    e.observe_labels("L", 0, 0, labels)
    docs = e.open_windows("m")
    assert docs
    doc = docs[0]
    perf = doc["performance"]
    assert doc["task"] == "classification"
    assert {"accuracy", "precision", "recall", "f1", "error_rate"} <= set(perf)
    assert not {"mae", "rmse", "mape"} & set(perf)
    rows = np.asarray(table.column("ts")) // 3_600 == int(docs[0]["window_start_ms"]) // 3_600_000
    right = table.column("pred").to_numpy() == table.column("label").to_numpy()
    assert perf["accuracy"] == pytest.approx(float(right[rows].mean()))
