"""Codec: round trips for every schema, clear errors on bad payloads, compatible evolution."""

from __future__ import annotations

import json
import struct

import fastavro
import pytest

from schemas.codec import SCHEMA_DIR, Codec, DecodeError, default_codec, load_registry
from schemas.columnar import PredictionColumns

EXAMPLES = {
    "PredictionEvent": {
        "prediction_id": "p1",
        "model": "churn",
        "model_version": "3",
        "event_time_ms": 1_700_000_000_000,
        "numeric_features": {"age": 41.0, "income": None},
        "categorical_features": {"plan": "gold", "x": None},
        "score": 0.73,
        "predicted_class": "yes",
        "class_probabilities": {"yes": 0.73, "no": 0.27},
        "latency_ms": 12.5,
        "status": "fallback",
        "error_type": None,
        "request_bytes": 512,
        "response_bytes": 64,
        "segments": {"region": "eu"},
    },
    "LabelEvent": {
        "prediction_id": "p1",
        "model": "churn",
        "event_time_ms": 1_700_000_100_000,
        "label_value": None,
        "label_class": "no",
    },
    "AlertEvent": {
        "alert_id": "a1",
        "fingerprint": "f" * 16,
        "model": "churn",
        "model_version": "3",
        "severity": "major",
        "status": "firing",
        "kind": "prediction_drift",
        "subject": "score",
        "detector": "wasserstein",
        "value": 0.21,
        "threshold": 0.1,
        "window_start_ms": 0,
        "window_end_ms": 60_000,
        "detected_at_ms": 60_000,
        "fired_at_ms": 61_000,
        "resolved_at_ms": None,
        "summary": "score drifted",
        "runbook_url": None,
        "labels": {"team": "ml"},
    },
    "DeadLetter": {
        "key": b"k",
        "value": b"\x00garbage",
        "reason": "bad magic",
        "error_kind": "decode",
        "source_topic": "modelwatch.predictions",
        "source_partition": 3,
        "source_offset": 42,
        "failed_at_ms": 1,
        "component": "worker",
    },
    "Detection": {
        "model": "churn",
        "model_version": "3",
        "kind": "feature_drift",
        "subject": "age",
        "detector": "ks",
        "value": 0.3,
        "threshold": 0.05,
        "active": True,
        "event_time_ms": 5,
        "window_start_ms": 0,
        "window_end_ms": 60_000,
        "partition": None,
        "offset": None,
        "details": {"p_value": "0.001"},
    },
}


@pytest.fixture(scope="module")
def codec() -> Codec:
    return default_codec()


def _defaults(codec: Codec, name: str) -> dict:
    """The smallest valid record of a schema, filled from the field defaults / types."""
    schema = codec.schema(codec.schema_id(name))
    zero = {"string": "", "long": 0, "int": 0, "double": 0.0, "boolean": False, "bytes": b""}
    rec = {}
    for f in schema["fields"]:
        if "default" in f:
            continue
        t = f["type"]
        if isinstance(t, str):
            rec[f["name"]] = zero[t]
        elif isinstance(t, dict) and t["type"] == "enum":
            rec[f["name"]] = t["symbols"][0]
        elif isinstance(t, dict) and t["type"] in ("array", "map"):
            rec[f["name"]] = [] if t["type"] == "array" else {}
        else:
            raise AssertionError(f"example generator does not know {t}")
    return rec


def test_every_registered_schema_round_trips(codec: Codec) -> None:
    cols = PredictionColumns.from_events(
        [
            EXAMPLES["PredictionEvent"],
            {**EXAMPLES["PredictionEvent"], "prediction_id": "p2", "score": None},
        ]
    )
    examples = {**EXAMPLES, "PredictionBatch": cols.to_record()}
    for name in codec.names:
        record = examples.get(name) or _defaults(codec, name)
        decoded = codec.decode(codec.encode(name, record))
        assert decoded.name == name
        for key, value in record.items():
            assert decoded.record[key] == value, (name, key)


def test_schema_ids_are_stable_and_in_the_header(codec: Codec) -> None:
    registry = json.loads((SCHEMA_DIR.parent / "registry.json").read_text())["schemas"]
    assert registry["1"] == "PredictionEvent.v1.avsc" and registry["2"] == "PredictionBatch.v1.avsc"
    payload = codec.encode("LabelEvent", EXAMPLES["LabelEvent"])
    assert payload[0] == 0 and struct.unpack(">I", payload[1:5])[0] == 3


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (None, "empty payload"),
        (b"\x00\x00", "truncated header"),
        (b"garbage-bytes", "bad magic byte"),
        (b"\x00\x00\x00\x03\xe7abc", "unknown schema id 999"),
        (b"\x00\x00\x00\x00\x03", "truncated LabelEvent body"),
    ],
)
def test_bad_payloads_name_the_problem(codec: Codec, payload: bytes | None, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        codec.decode(payload)


def test_truncated_body_and_trailing_bytes(codec: Codec) -> None:
    good = codec.encode("PredictionEvent", EXAMPLES["PredictionEvent"])
    with pytest.raises(DecodeError, match="PredictionEvent body"):
        codec.decode(good[: len(good) // 2])
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(good + b"\x01\x02")


def test_expect_rejects_other_record_types(codec: Codec) -> None:
    payload = codec.encode("LabelEvent", EXAMPLES["LabelEvent"])
    with pytest.raises(DecodeError, match="is LabelEvent, expected one of"):
        codec.decode(payload, expect=("PredictionEvent",))


def test_new_optional_field_keeps_old_readers_and_old_data(tmp_path) -> None:
    """A v2 of LabelEvent with a new optional field: old data reads under v2 (the default
    fills in) and v2 data reads under a v1-only reader (the new field is skipped)."""
    v1 = json.loads((SCHEMA_DIR / "LabelEvent.v1.avsc").read_text())
    v2 = json.loads(json.dumps(v1))
    v2["fields"].append({"name": "label_source", "type": ["null", "string"], "default": None})
    (tmp_path / "LabelEvent.v1.avsc").write_text(json.dumps(v1))
    (tmp_path / "LabelEvent.v2.avsc").write_text(json.dumps(v2))
    old_codec = Codec({3: tmp_path / "LabelEvent.v1.avsc"})
    new_codec = Codec({3: tmp_path / "LabelEvent.v1.avsc", 12: tmp_path / "LabelEvent.v2.avsc"})
    assert new_codec.schema_id("LabelEvent") == 12

    old_payload = old_codec.encode("LabelEvent", EXAMPLES["LabelEvent"])
    upgraded = new_codec.decode(old_payload).record
    assert upgraded["label_source"] is None and upgraded["label_class"] == "no"

    new_payload = new_codec.encode("LabelEvent", {**EXAMPLES["LabelEvent"], "label_source": "crm"})
    # an old reader is handed the writer schema (as a registry would) and resolves to v1
    body = new_payload[5:]
    import io

    old_view = fastavro.schemaless_reader(
        io.BytesIO(body), new_codec.schema(12), old_codec.schema(3)
    )
    assert "label_source" not in old_view and old_view["label_class"] == "no"
    # and the real registry's checked-in schemas all parse with every id distinct
    assert len(set(load_registry().values())) == len(load_registry())


def test_a_detection_record_is_its_asdict_with_the_kind_as_text(codec: Codec) -> None:
    import dataclasses

    from schemas.detection import Detection, DetectionKind

    d = Detection(model="churn", kind=DetectionKind.FEATURE_DRIFT, subject="age",
                  detector="ks", value=1, threshold=0.05, event_time_ms=60_000,
                  model_version="3", active=False, window_start_ms=0, window_end_ms=60_000,
                  partition=2, offset=7, details={"p_value": "0.01"})  # fmt: skip
    rec = d.to_record()
    want = dataclasses.asdict(d) | {"kind": "feature_drift", "value": 1.0, "threshold": 0.05}
    assert rec == want and type(rec["kind"]) is str and type(rec["value"]) is float
    rec["details"]["p_value"] = "changed"  # a copy: the frozen detection is unchanged
    assert d.details == {"p_value": "0.01"}
    assert codec.decode(codec.encode("Detection", d.to_record())).record == d.to_record()
