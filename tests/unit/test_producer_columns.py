"""Row → column conversion and per-partition routing helpers of the SDK (no Kafka)."""

from __future__ import annotations

import numpy as np

from producers.columns import concat_predictions, split_by_partition, take_predictions
from producers.rows import label_rows_to_columns, prediction_rows_to_columns
from schemas.codec import default_codec
from schemas.columnar import PredictionColumns


def _row(pid: str, **over: object) -> tuple:
    base = dict(
        prediction_id=pid,
        event_time_ms=1,
        numeric={"a": 1.0, "b": None},
        categorical={"c": "x"},
        score=0.5,
        predicted_class="yes",
        class_probabilities={"no": 0.5, "yes": 0.5},
        latency_ms=3.0,
        status="ok",
        error_type=None,
        request_bytes=1,
        response_bytes=2,
        segments={"region": "eu"},
    )
    base.update(over)
    return tuple(base.values())


def test_rows_with_different_feature_sets_fill_missing() -> None:
    rows = [
        _row("p1"),
        _row("p2", numeric={"b": 2.0, "z": 3.0}, categorical={}, status="fallback"),
        _row("p3", numeric=None, score=None, class_probabilities=None, segments=None),
    ]
    cols = prediction_rows_to_columns("m", "v", rows)
    assert cols.numeric["a"].tolist()[0] == 1.0 and np.isnan(cols.numeric["a"][1])
    assert np.isnan(cols.numeric["z"][0]) and cols.numeric["z"][1] == 3.0
    assert cols.categorical["c"].values() == ["x", None, "x"]
    assert cols.status.tolist() == [0, 2, 0]
    assert np.isnan(cols.score[2]) and np.isnan(cols.class_probabilities[2]).all()
    assert cols.segments["region"].values() == ["eu", "eu", None]
    # the result encodes and decodes as a PredictionBatch
    codec = default_codec()
    back = PredictionColumns.from_record(
        codec.decode(codec.encode("PredictionBatch", cols.to_record())).record
    )
    assert back.prediction_ids == ["p1", "p2", "p3"]


def test_labels_value_and_class() -> None:
    cols = label_rows_to_columns("m", [("a", 5, None, "yes"), ("b", 6, None, "no")])
    assert cols.label_value is None and cols.label_class.values() == ["yes", "no"]


def test_split_take_concat_round_trip_preserves_every_row() -> None:
    rows = [_row(f"p{i}", categorical={"c": "xyz"[i % 3]}, event_time_ms=i) for i in range(50)]
    cols = prediction_rows_to_columns("m", "v", rows)
    part = np.arange(50) % 4
    pieces = [take_predictions(cols, idx) for idx in split_by_partition(part, 4)]
    assert [p.n for p in pieces] == [13, 13, 12, 12]
    joined = concat_predictions(pieces)
    assert sorted(joined.prediction_ids) == sorted(cols.prediction_ids)
    by_id = dict(zip(joined.prediction_ids, joined.categorical["c"].values(), strict=True))
    assert all(by_id[f"p{i}"] == "xyz"[i % 3] for i in range(50))


def test_dict_key_order_and_swapped_keys_do_not_misalign_values() -> None:
    rows = [
        _row("p1", numeric={"a": 1.0, "b": 2.0}, categorical={"c": "x", "d": "y"}),
        _row("p2", numeric={"b": 20.0, "a": 10.0}, categorical={"d": "yy", "c": "xx"}),
        _row("p3", numeric={"a": 100.0, "z": 300.0}, categorical={"c": "x", "e": "q"}),
    ]
    cols = prediction_rows_to_columns("m", "v", rows)
    assert cols.numeric["a"].tolist() == [1.0, 10.0, 100.0]
    assert cols.numeric["b"].tolist()[:2] == [2.0, 20.0] and np.isnan(cols.numeric["b"][2])
    assert cols.categorical["c"].values() == ["x", "xx", "x"]
    assert cols.categorical["d"].values() == ["y", "yy", None]
    assert cols.categorical["e"].values() == [None, None, "q"]
