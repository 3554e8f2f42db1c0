"""The publishing SDK, simulator and replay against a real broker (the embedded Tansu).

Each test publishes to its own freshly created topics (a random prefix, 4 partitions for
predictions and labels), so other tests' traffic never mixes in and counts are exact.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from producers.partitioner import partition_for
from producers.replay import ReplaySpec, replay
from producers.sdk import ModelwatchPublisher
from producers.simulator.run import run_scenario
from producers.simulator.scenario import Scenario
from schemas.codec import default_codec
from schemas.columnar import LabelColumns, PredictionColumns
from schemas.topics import TopicNames
from tests.support.ports import closed_port

pytestmark = pytest.mark.integration
PARTITIONS = 4


def _create(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
        operation_timeout=15,
    )
    for f in futures.values():
        f.result(timeout=15)


@pytest.fixture
def topics(kafka_bootstrap: str) -> TopicNames:
    names = TopicNames.with_prefix(f"sdktest{uuid.uuid4().hex[:8]}.")
    _create(kafka_bootstrap, [names.predictions, names.labels], PARTITIONS)
    return names


def _consume(bootstrap: str, topic: str, want_rows: int, timeout_s: float = 30.0):
    """(partition, key, decoded) for every message until ``want_rows`` rows or timeout."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    codec, out, rows = default_codec(), [], 0
    deadline = time.monotonic() + timeout_s
    try:
        while rows < want_rows and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                assert msg.error() is None, msg.error()
                d = codec.decode(msg.value())
                out.append((msg.partition(), msg.key(), d))
                rows += d.record.get("n", 1)
        # anything beyond the expected count would show up here
        for msg in consumer.consume(500, 1.0):
            out.append((msg.partition(), msg.key(), codec.decode(msg.value())))
    finally:
        consumer.close()
    return out


def test_batched_predictions_and_labels_land_in_their_murmur2_partition(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    n, reg = 5000, CollectorRegistry()
    with ModelwatchPublisher(
        kafka_bootstrap,
        "sdk-int",
        "v7",
        topics=topics,
        batch_size=200,
        linger_ms=50,
        registry=reg,
    ) as pub:
        ids = [
            pub.publish_prediction(
                numeric={f"x{j}": float(i + j) for j in range(20)},
                categorical={f"c{j}": f"v{(i + j) % 3}" for j in range(5)},
                score=(i % 100) / 100,
                predicted_class="yes" if i % 2 else "no",
                class_probabilities={"no": 0.4, "yes": 0.6},
                latency_ms=float(i % 50),
                status="ok" if i % 10 else "error",
                error_type=None if i % 10 else "Timeout",
                segments={"region": "eu"},
                event_time_ms=1_700_000_000_000 + i,
            )
            for i in range(n)
        ]
        for i, pid in enumerate(ids[:3000]):
            pub.publish_label(pid, label_class="yes" if i % 3 else "no")
        assert pub.flush(30) == 0
        assert pub.published == {"prediction": n, "label": 3000}
        assert pub.dropped == {}
    assert (
        reg.get_sample_value(
            "modelwatch_sdk_events_published_total", {"model": "sdk-int", "kind": "prediction"}
        )
        == n
    )
    assert reg.get_sample_value("modelwatch_sdk_send_latency_seconds_count", {"model": "sdk-int"})

    got = _consume(kafka_bootstrap, topics.predictions, n)
    seen: Counter[str] = Counter()
    partition_of: dict[str, int] = {}
    for partition, key, d in got:
        assert d.name == "PredictionBatch"
        cols = PredictionColumns.from_record(d.record)
        assert cols.model == "sdk-int" and cols.model_version == "v7"
        assert 1 <= cols.n <= 200
        assert key.decode() == cols.prediction_ids[0]  # documented: key = first id
        for pid in cols.prediction_ids:
            assert partition_for(pid, PARTITIONS) == partition
            partition_of[pid] = partition
        seen.update(cols.prediction_ids)
        i = ids.index(cols.prediction_ids[0])
        assert cols.numeric["x3"][0] == i + 3 and cols.event_time_ms[0] == 1_700_000_000_000 + i
    assert seen == Counter(ids)  # exactly n rows, none twice
    assert len({p for p, _, _ in got}) == PARTITIONS

    labels = _consume(kafka_bootstrap, topics.labels, 3000)
    label_ids: list[str] = []
    for partition, _key, d in labels:
        cols = LabelColumns.from_record(d.record)
        for pid in cols.prediction_ids:
            assert partition_of[pid] == partition  # a label lands with its prediction
        label_ids.extend(cols.prediction_ids)
    assert sorted(label_ids) == sorted(ids[:3000])


def test_single_events_mix_with_batches(kafka_bootstrap: str, topics: TopicNames) -> None:
    with ModelwatchPublisher(
        kafka_bootstrap, "sdk-mix", "1", topics=topics, registry=CollectorRegistry()
    ) as pub:
        batched = [pub.publish_prediction(latency_ms=1.0, score=0.1) for _ in range(1000)]
        singles = [
            pub.publish_single_prediction(latency_ms=2.0, numeric={"x": 1.0}) for _ in range(100)
        ]
        assert pub.flush(30) == 0
        assert pub.published == {"prediction": 1100}
    got = _consume(kafka_bootstrap, topics.predictions, 1100)
    kinds = Counter(d.name for _, _, d in got)
    assert kinds["PredictionEvent"] == 100
    single_ids = [d.record["prediction_id"] for _, _, d in got if d.name == "PredictionEvent"]
    assert sorted(single_ids) == sorted(singles)
    for partition, key, d in got:  # librdkafka placed each single where murmur2 says
        if d.name == "PredictionEvent":
            assert key.decode() == d.record["prediction_id"]
            assert partition == partition_for(d.record["prediction_id"], PARTITIONS)
    rows = sum(d.record["n"] for _, _, d in got if d.name == "PredictionBatch")
    assert rows == len(batched)


def test_librdkafka_murmur2_random_agrees_with_our_partitioner(kafka_bootstrap: str) -> None:
    topic, partitions = f"murmur2test.{uuid.uuid4().hex[:8]}", 7
    _create(kafka_bootstrap, [topic], partitions)
    keys = [
        "21",
        "foobar",
        "a-little-bit-long-string",
        "a-little-bit-longer-string",
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        "abc",
    ]
    keys += [uuid.uuid4().hex for _ in range(300)] + [f"k{i}" for i in range(100)]
    placed: dict[str, int] = {}

    def on_delivery(err, msg) -> None:  # noqa: ANN001
        assert err is None, err
        placed[msg.key().decode()] = msg.partition()

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    for k in keys:
        producer.produce(topic, b"v", k, on_delivery=on_delivery)
    assert producer.flush(20) == 0
    assert len(placed) == len(keys)
    mismatches = {
        k: (p, partition_for(k, partitions))
        for k, p in placed.items()
        if p != partition_for(k, partitions)
    }
    assert mismatches == {}




@pytest.mark.parametrize("partitions", [None, 4], ids=["no-metadata", "known-partitions"])
def test_broker_down_never_blocks_never_raises_and_reports_drops(partitions: int | None) -> None:
    reg = CollectorRegistry()
    pub = ModelwatchPublisher(
        closed_port(),
        "sdk-down",
        "1",
        max_buffered_events=5000,
        message_timeout_ms=1000,
        linger_ms=20,
        partitions=partitions,
        registry=reg,
    )
    numeric = {f"x{j}": float(j) for j in range(20)}
    categorical = {f"c{j}": "v" for j in range(5)}
    times = np.empty(20_000)
    try:
        for i in range(20_000):
            t = time.perf_counter()
            pid = pub.publish_prediction(
                numeric=numeric, categorical=categorical, score=0.5, latency_ms=3.0
            )
            if i % 2:
                pub.publish_label(pid, label_value=1.0)
            times[i] = time.perf_counter() - t
        left = pub.flush(10)
    finally:
        t = time.perf_counter()
        pub.close(timeout=2)
        close_s = time.perf_counter() - t
    # Nothing waits on the network. A call that waited for the broker would take at least
    # message.timeout.ms (1 s here); calls take a few µs, but on a shared, loaded 2-core
    # machine one can be preempted for ~100 ms (the sender thread holds the GIL, other
    # processes hold the cores). So the bound separates "waits for the broker" from
    # "scheduling noise" rather than timing the SDK (its speed is measured in make bench).
    assert times.mean() < 0.005, f"mean {times.mean() * 1e6:.1f} us"
    assert times.max() < 0.5, f"max {times.max() * 1e3:.2f} ms: a call waited on the broker"
    assert close_s < 5
    assert left == 0  # everything was dropped (timeout / no_metadata), nothing hangs
    dropped = pub.dropped
    assert sum(dropped.values()) == 30_000  # every prediction and label accounted for
    assert dropped["buffer_full"] > 0
    assert set(dropped) <= {"buffer_full", "timeout", "no_metadata", "queue_full", "closed"}
    total = sum(
        reg.get_sample_value(
            "modelwatch_sdk_events_dropped_total",
            {"model": "sdk-down", "kind": kind, "reason": reason},
        )
        or 0
        for kind in ("prediction", "label")
        for reason in dropped
    )
    assert total == 30_000
    assert pub.published == {}


def test_async_publisher_from_a_coroutine(kafka_bootstrap: str, topics: TopicNames) -> None:
    from producers.sdk import AsyncModelwatchPublisher

    async def serve() -> dict[str, int]:
        async with AsyncModelwatchPublisher(
            kafka_bootstrap, "sdk-async", "1", topics=topics, registry=CollectorRegistry()
        ) as pub:
            for _ in range(300):
                pub.publish_prediction(latency_ms=1.0)
                await asyncio.sleep(0)
            assert await pub.aflush(30) == 0
            return pub.published

    assert asyncio.run(serve()) == {"prediction": 300}


def test_simulator_run_publishes_what_it_generates(
    kafka_bootstrap: str, topics: TopicNames
) -> None:
    sc = Scenario.load("default")
    with ModelwatchPublisher(
        kafka_bootstrap, "sim-int", "v1", topics=topics, registry=CollectorRegistry()
    ) as pub:
        stats = run_scenario(pub, sc, n_events=20_000, rate=0, seed=5)
        assert pub.flush(30) == 0
        assert pub.published == {"prediction": 20_000, "label": stats.labels}
    assert stats.predictions == 20_000 and 0.85 * 20_000 < stats.labels < 0.95 * 20_000
    got = _consume(kafka_bootstrap, topics.predictions, 20_000)
    assert sum(d.record["n"] for _, _, d in got) == 20_000


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_replay_keeps_timestamps_and_publishes_labels(
    kafka_bootstrap: str, topics: TopicNames, tmp_path: Path, fmt: str
) -> None:
    n = 3000
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "request_id": [f"req-{i}" for i in range(n)],
            "ts": [f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}" for i in range(n)],
            "amount": rng.normal(100, 10, n),
            "items": rng.integers(1, 5, n),
            "country": rng.choice(["US", "DE", "IN"], n),
            "proba": rng.random(n),
            "fraud": [None if i % 10 == 0 else int(i % 7 == 0) for i in range(n)],
        }
    )
    path = tmp_path / f"log.{fmt}"
    if fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    spec = ReplaySpec(
        id_col="request_id",
        time_col="ts",
        prediction_col="proba",
        label_col="fraud",
        label_delay_s=3600,
    )
    with ModelwatchPublisher(
        kafka_bootstrap, "replay-int", "r1", topics=topics, registry=CollectorRegistry()
    ) as pub:
        stats = replay(pub, path, spec, chunk_rows=700)
        assert pub.flush(30) == 0
    assert (stats.rows, stats.predictions, stats.labels) == (n, n, n - n // 10)
    preds = _consume(kafka_bootstrap, topics.predictions, n)
    time_of: dict[str, int] = {}
    for _, _, d in preds:
        cols = PredictionColumns.from_record(d.record)
        assert set(cols.numeric) == {"amount", "items"} and set(cols.categorical) == {"country"}
        time_of.update(zip(cols.prediction_ids, cols.event_time_ms.tolist(), strict=True))
    assert len(time_of) == n
    assert time_of["req-61"] == 1_767_225_600_000 + 61_000
    labels = _consume(kafka_bootstrap, topics.labels, n - n // 10)
    got = {}
    for _, _, d in labels:
        cols = LabelColumns.from_record(d.record)
        # a 0/1 label column is a classification: its labels are the classes "1" / "0"
        assert cols.label_value is None
        got.update(zip(cols.prediction_ids, cols.label_class.values(), strict=True))
        for pid, t in zip(cols.prediction_ids, cols.event_time_ms.tolist(), strict=True):
            assert t == time_of[pid] + 3_600_000
    assert len(got) == n - n // 10 and got["req-7"] == "1" and got["req-8"] == "0"
