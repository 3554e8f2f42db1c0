"""SDK bookkeeping without a broker: bounded buffer, drops by reason, metrics, ids.

The publisher points at a closed loopback port (nothing listens on it), so nothing is ever
acknowledged: what the tests see is the SDK's own accounting.
"""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from producers.sdk import ModelwatchPublisher
from tests.support.ports import closed_port


def _sample(reg: CollectorRegistry, name: str, **labels: str) -> float:
    value = reg.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_full_buffer_drops_and_counts_without_blocking() -> None:
    reg = CollectorRegistry()
    pub = ModelwatchPublisher(
        closed_port(), "m", "1", max_buffered_events=1000, registry=reg, partitions=4
    )
    try:
        worst = 0.0
        for i in range(5000):
            t = time.perf_counter()
            pid = pub.publish_prediction(numeric={"x": float(i)}, latency_ms=1.0)
            worst = max(worst, time.perf_counter() - t)
            assert len(pid) == 32
        assert pub.buffered == 1000
        assert pub.dropped == {"buffer_full": 4000}
        assert worst < 0.5  # waiting on the broker would take seconds; this is noise room
        assert (
            _sample(
                reg,
                "modelwatch_sdk_events_dropped_total",
                model="m",
                kind="prediction",
                reason="buffer_full",
            )
            == 4000
        )
        pub.publish_label("x", label_value=1.0)
        assert pub.dropped_by_kind[("label", "buffer_full")] == 1
    finally:
        pub.close(timeout=0.2)
    # what was still held at close is reported too: nothing silently disappears
    assert pub.dropped["buffer_full"] + pub.dropped["closed"] == 5001
    assert pub.buffered == 0


def test_invalid_and_after_close_are_dropped_not_raised() -> None:
    pub = ModelwatchPublisher(closed_port(), "m", "1", registry=CollectorRegistry())
    pub.publish_prediction(status="exploded")
    pub.publish_label("p")  # neither value nor class
    pub.close(timeout=0.1)
    pid = pub.publish_prediction(latency_ms=1.0, prediction_id="given")
    assert pid == "given"
    assert pub.dropped_by_kind == {
        ("prediction", "invalid"): 1,
        ("label", "invalid"): 1,
        ("prediction", "closed"): 1,
    }


def test_unknown_partition_count_expires_as_no_metadata() -> None:
    pub = ModelwatchPublisher(
        closed_port(), "m", "1", message_timeout_ms=300, registry=CollectorRegistry()
    )
    try:
        for _ in range(10):
            pub.publish_prediction(latency_ms=1.0)
        deadline = time.monotonic() + 10
        while pub.dropped.get("no_metadata", 0) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pub.dropped == {"no_metadata": 10}
        assert pub.buffered == 0
    finally:
        pub.close(timeout=0.1)


def test_unacknowledged_batches_time_out_as_drops() -> None:
    reg = CollectorRegistry()
    pub = ModelwatchPublisher(
        closed_port(),
        "m",
        "1",
        partitions=4,
        linger_ms=10,
        message_timeout_ms=500,
        registry=reg,
    )
    try:
        for _ in range(100):
            pub.publish_prediction(latency_ms=1.0)
        assert pub.flush(10) == 0  # flush returns once everything is acked *or* dropped
        assert pub.dropped == {"timeout": 100}
        assert pub.published == {}
        assert _sample(reg, "modelwatch_sdk_buffered_events", model="m") == 0
    finally:
        pub.close(timeout=0.1)


def test_generated_ids_are_uuid4_hex_and_unique() -> None:
    import uuid

    pub = ModelwatchPublisher(
        closed_port(),
        "m",
        "1",
        registry=CollectorRegistry(),
        partitions=1,
        max_buffered_events=10_000,
    )
    try:
        ids = [pub.publish_prediction() for _ in range(5000)]
    finally:
        pub.close(timeout=0.1)
    assert len(set(ids)) == 5000
    assert all(uuid.UUID(hex=i).version == 4 for i in ids[:100])


def test_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValueError):
        ModelwatchPublisher("127.0.0.1:1", "", "1")
    with pytest.raises(ValueError):
        ModelwatchPublisher("127.0.0.1:1", "m", "1", batch_size=0)


def test_two_publishers_share_one_registry() -> None:
    reg = CollectorRegistry()
    a = ModelwatchPublisher(closed_port(), "a", "1", registry=reg, max_buffered_events=1)
    b = ModelwatchPublisher(closed_port(), "b", "1", registry=reg, max_buffered_events=1)
    for p in (a, b):
        p.publish_prediction()
        p.publish_prediction()
        p.close(timeout=0.1)
    for model in ("a", "b"):
        assert (
            _sample(
                reg,
                "modelwatch_sdk_events_dropped_total",
                model=model,
                kind="prediction",
                reason="buffer_full",
            )
            == 1
        )
