"""The worker against a real embedded broker: exact counts, dead letters, keeps going."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from producers.sdk import ModelwatchPublisher
from schemas.codec import default_codec
from schemas.topics import TopicNames
from tests.support.groups import wait_group_done
from tests.support.processes import WorkerProcess, sample, wait_for

pytestmark = pytest.mark.integration

TOPICS = TopicNames()


def dead_letters_for(bootstrap: str, payloads: set[bytes], timeout_s: float = 30.0) -> list[dict]:
    """Read the dead-letter topic from the start until every payload in ``payloads`` is seen."""
    codec = default_codec()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"dlq-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(TOPICS.dead_letter, 0, 0)])
    found: list[dict] = []
    deadline = time.monotonic() + timeout_s
    try:
        # at-least-once: a record replayed after a rebalance is dead-lettered again
        while time.monotonic() < deadline and len({r["value"] for r in found}) < len(payloads):
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            rec = codec.decode(msg.value()).record
            if rec["value"] in payloads:
                found.append(rec)
    finally:
        consumer.close()
    return found


def test_worker_counts_exactly_and_dead_letters_garbage(kafka_bootstrap: str, tmp_path) -> None:
    model = f"golden-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(7)
    with WorkerProcess(kafka_bootstrap, tmp_path, f"g-{model}") as worker:
        worker.wait_ready()
        with ModelwatchPublisher(kafka_bootstrap, model, "v1", batch_size=500, linger_ms=50) as sdk:
            for i in range(10_000):
                sdk.publish_prediction(
                    numeric={f"f{j}": float(rng.normal()) for j in range(5)},
                    categorical={"plan": "abc"[i % 3]},
                    score=float(rng.random()),
                    latency_ms=float(rng.lognormal(3, 0.5)),
                    status="error" if i % 50 == 0 else "ok",
                    error_type="Timeout" if i % 50 == 0 else None,
                )
            for _ in range(100):
                sdk.publish_single_prediction(latency_ms=5.0, score=0.5)
            assert sdk.flush(30) == 0
            assert sum(sdk.dropped.values()) == 0

        garbage = {
            b"\x00\x00\x00\x00\x02" + bytes(rng.integers(0, 256, 40, dtype=np.uint8))
            for _ in range(10)
        }
        garbage |= {f"not-avro-{i}".encode() for i in range(10)}
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for payload in garbage:
            producer.produce(TOPICS.predictions, key=b"junk", value=payload)
        assert producer.flush(10) == 0

        def counted() -> bool:
            return sample(worker.scrape(), "modelwatch_predictions_total", model=model) >= 10_100

        wait_for(counted, 60, "10,100 predictions counted")
        dead = dead_letters_for(kafka_bootstrap, garbage)
        assert {d["value"] for d in dead} == garbage
        assert all(d["reason"] and d["source_topic"] == TOPICS.predictions for d in dead)
        assert all(d["source_offset"] >= 0 for d in dead)
        # the group committed to the end of every partition (garbage last on some: records
        # only dead-lettered are acknowledged at once), so anything extra (double counting)
        # would show up by now
        wait_group_done(kafka_bootstrap, worker.group_id, [TOPICS.predictions], 60,
                        "every prediction")
        s = worker.scrape()
        assert sample(s, "modelwatch_predictions_total", model=model) == 10_100
        assert sample(s, "modelwatch_predictions_total", model=model, status="error") == 200
        assert sample(s, "modelwatch_prediction_latency_seconds_count", model=model) == 10_100
        assert sample(s, "modelwatch_dead_letters_total") >= 20
        assert worker.alive(), worker.log_tail()
