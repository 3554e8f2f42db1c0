"""The worker's record handling without a broker: decode, validate, golden signals, dead letters."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.columnar import InvalidBatch, PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.golden import GoldenSignals
from stream_jobs.handler import PredictionHandler
from stream_jobs.pipeline_metrics import PipelineMetrics

NOW_MS = 1_800_000_000_000
codec = default_codec()


def events(n: int, model: str = "m", **over) -> list[dict]:
    rng = np.random.default_rng(1)
    return [
        {
            "prediction_id": f"id{i}",
            "model": model,
            "model_version": "v1",
            "event_time_ms": NOW_MS - 1000,
            "numeric_features": {"x": float(rng.normal())},
            "categorical_features": {"c": "abc"[i % 3]},
            "score": float(rng.random()),
            "latency_ms": 10.0 + i,
            "status": ("ok", "error", "fallback")[i % 3],
            "error_type": "Timeout" if i % 3 == 1 else None,
            **over,
        }
        for i in range(n)
    ]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> None:
        self.seen.append((partition, offset, cols.n))


@pytest.fixture
def setup():
    reg = CollectorRegistry()
    recorder = Recorder()
    handler = PredictionHandler(
        codec, TopicNames(), GoldenSignals(reg), PipelineMetrics(reg), [recorder]
    )
    return reg, handler, recorder


def total(reg: CollectorRegistry, name: str, **labels: str) -> float:
    return sum(
        s.value
        for m in reg.collect()
        for s in m.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_batch_and_single_events_share_one_path(setup) -> None:
    reg, handler, recorder = setup
    batch = codec.encode("PredictionBatch", PredictionColumns.from_events(events(300)).to_record())
    single = codec.encode("PredictionEvent", events(1)[0])
    assert handler.handle(b"k", batch, 2, 10, NOW_MS / 1000) == []
    assert handler.handle(b"k", single, 2, 11, NOW_MS / 1000) == []
    assert total(reg, "modelwatch_predictions_total", model="m") == 301
    assert total(reg, "modelwatch_predictions_total", status="error") == 100
    assert total(reg, "modelwatch_prediction_errors_total", error_type="Timeout") == 100
    assert total(reg, "modelwatch_prediction_latency_seconds_count") == 301
    assert total(reg, "modelwatch_processing_delay_seconds_count") == 301
    assert total(reg, "modelwatch_last_event_timestamp_seconds") == (NOW_MS - 1000) / 1000
    assert recorder.seen == [(2, 10, 300), (2, 11, 1)]


@pytest.mark.parametrize(
    ("payload", "kind", "reason"),
    [
        (b"\x00\x00\x00\x00\x01\xff\xff", "decode", "PredictionEvent body"),
        (b"not avro", "decode", "bad magic byte"),
        (
            codec.encode("LabelEvent", {"prediction_id": "x", "model": "m", "event_time_ms": 1}),
            "decode",
            "is LabelEvent",
        ),
    ],
)
def test_undecodable_records_become_dead_letters(setup, payload, kind, reason) -> None:
    reg, handler, recorder = setup
    out = handler.handle(b"key", payload, 1, 99, NOW_MS / 1000)
    assert len(out) == 1 and out[0].topic == TopicNames().dead_letter
    dead = codec.decode(out[0].value).record
    assert dead["error_kind"] == kind and reason in dead["reason"]
    assert (dead["source_partition"], dead["source_offset"], dead["value"]) == (1, 99, payload)
    assert total(reg, "modelwatch_dead_letters_total", error_kind=kind) == 1
    assert recorder.seen == []


def test_invalid_rows_are_split_off_and_the_rest_processed(setup) -> None:
    reg, handler, recorder = setup
    evs = events(10)
    evs[3]["latency_ms"] = -5.0
    evs[7]["event_time_ms"] = 12
    payload = codec.encode("PredictionBatch", PredictionColumns.from_events(evs).to_record())
    out = handler.handle(None, payload, 0, 5, NOW_MS / 1000)
    assert total(reg, "modelwatch_predictions_total") == 8
    dead = codec.decode(out[0].value).record
    assert dead["error_kind"] == "invalid"
    assert "latency_ms negative" in dead["reason"] and "rows [3]" in dead["reason"]
    bad_rows = PredictionColumns.from_record(codec.decode(dead["value"]).record)
    assert bad_rows.prediction_ids == ["id3", "id7"]


def test_batch_with_inconsistent_columns_is_rejected() -> None:
    rec = PredictionColumns.from_events(events(4)).to_record()
    rec["latency_ms"] = rec["latency_ms"][:-8]
    with pytest.raises(InvalidBatch, match="latency_ms"):
        PredictionColumns.from_record(rec)
    rec = PredictionColumns.from_events(events(4)).to_record()
    rec["categorical_features"]["c"]["codes"] = np.array([0, 1, 2, 9], "<i4").tobytes()
    with pytest.raises(InvalidBatch, match="outside its dictionary"):
        PredictionColumns.from_record(rec)


def test_columns_round_trip_and_subset() -> None:
    cols = PredictionColumns.from_events(events(6))
    back = PredictionColumns.from_record(
        codec.decode(codec.encode("PredictionBatch", cols.to_record())).record
    )
    np.testing.assert_array_equal(back.numeric["x"], cols.numeric["x"])
    assert back.categorical["c"].values() == cols.categorical["c"].values()
    sub = back.subset(np.array([True, False] * 3))
    assert sub.prediction_ids == ["id0", "id2", "id4"] and sub.status.tolist() == [0, 2, 1]


class Exploding:
    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> None:
        raise RuntimeError("bug in a stage")


def test_a_failing_stage_dead_letters_the_record_and_the_worker_goes_on() -> None:
    reg = CollectorRegistry()
    recorder = Recorder()
    handler = PredictionHandler(
        codec, TopicNames(), GoldenSignals(reg), PipelineMetrics(reg), [Exploding(), recorder]
    )
    payload = codec.encode("PredictionBatch", PredictionColumns.from_events(events(5)).to_record())
    out = handler.handle(b"k", payload, 3, 8, NOW_MS / 1000)
    dead = codec.decode(out[0].value).record
    assert dead["error_kind"] == "processing" and "bug in a stage" in dead["reason"]
    assert dead["value"] == payload and recorder.seen == [(3, 8, 5)]
    assert total(reg, "modelwatch_predictions_total") == 5


def test_decoded_columns_are_writable_for_native_libraries() -> None:
    cols = PredictionColumns.from_events(events(3))
    back = PredictionColumns.from_record(
        codec.decode(codec.encode("PredictionBatch", cols.to_record())).record
    )
    assert back.numeric["x"].flags.writeable and back.latency_ms.flags.writeable
