"""The one Kafka I/O module against the embedded broker: topic creation with the broker's
replication factor and topic configs, reading to the end (the fetch's end-of-partition,
never ListOffsets), following, and a reference larger than a default record."""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka.admin import ConfigResource

from modelwatch import baseline
from modelwatch.baseline import publish_reference
from schemas.kafka import (
    KafkaConfig,
    TopicError,
    TopicMissing,
    create_topics,
    follow,
    last_per_key,
    read_to_end,
)
from schemas.topics import REFERENCE_MAX_BYTES, TopicNames, TopicSpec

pytestmark = pytest.mark.integration


@pytest.fixture(name="topics")
def topics_fixture(kafka_bootstrap: str) -> TopicNames:
    names = TopicNames.with_prefix(f"io{uuid.uuid4().hex[:8]}.")
    created = create_topics(kafka_bootstrap, names.specs(2), configs={"retention.ms": "3600000"})
    assert len(created) == len(names.specs(2))
    return names


def topic_config(kafka: KafkaConfig, topic: str) -> dict[str, str]:
    res = ConfigResource("topic", topic)
    admin = kafka.admin()  # kept alive until the future resolves
    return {k: v.value for k, v in admin.describe_configs([res])[res].result(15).items()}


def test_topics_get_spec_and_caller_configs(kafka_bootstrap: str, topics: TopicNames) -> None:
    kafka = KafkaConfig.of(kafka_bootstrap)
    refs = topic_config(kafka, topics.references)
    assert refs["max.message.bytes"] == str(REFERENCE_MAX_BYTES)
    assert refs["cleanup.policy"] == "compact" and refs["retention.ms"] == "3600000"
    meta = kafka.admin().list_topics(timeout=10).topics
    assert len(meta[topics.predictions].partitions) == len(meta[topics.labels].partitions) == 2
    # existing topics are left alone; predictions/labels of another shape are an error
    assert create_topics(kafka, topics.specs(2)) == []
    with pytest.raises(TopicError, match="partitioned alike"):
        create_topics(kafka, topics.specs(3))
    with pytest.raises(ValueError, match="replication factor"):
        create_topics(kafka, [TopicSpec(topics.predictions + "x", 1)], replication_factor=0)


def test_read_to_end_bounds_and_follow(kafka_bootstrap: str, topics: TopicNames) -> None:
    kafka = KafkaConfig.of(kafka_bootstrap)
    topic = topics.alerts  # 2 partitions
    assert read_to_end(kafka, topic, timeout_s=30) == []  # empty partitions end at once
    producer = kafka.producer()
    for i in range(10):
        producer.produce(topic, key=b"k%d" % (i % 3), value=b"v%d" % i, partition=i % 2)
    assert producer.flush(15) == 0
    records = read_to_end(kafka, topic, timeout_s=30)
    assert [(r.partition, r.value) for r in records] == sorted(
        (i % 2, b"v%d" % i) for i in range(10))
    assert all(r.timestamp_ms > 0 for r in records)
    bounded = read_to_end(kafka, topic, partitions=[0], upto={0: 2}, timeout_s=30)
    assert [r.offset for r in bounded] == [0, 1]
    assert last_per_key(records)[b"k0"].value == b"v9"

    stop = threading.Event()
    seen: list[bytes] = []

    def run() -> None:
        for rec in follow(kafka, topic, stop, poll_s=0.2):
            seen.append(rec.value)
            if len(seen) == 11:
                stop.set()

    follower = threading.Thread(target=run, daemon=True)
    follower.start()
    producer.produce(topic, value=b"late", partition=1)
    producer.flush(15)
    follower.join(60)
    assert not follower.is_alive() and b"late" in seen and len(seen) == 11


def test_missing_topic_is_named(kafka_bootstrap: str) -> None:
    with pytest.raises(TopicMissing, match="no-such-topic"):
        read_to_end(kafka_bootstrap, f"no-such-topic-{uuid.uuid4().hex[:6]}", timeout_s=10)


def test_a_reference_bigger_than_a_default_record(
    kafka_bootstrap: str, topics: TopicNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = b"x" * 3_000_000  # librdkafka refuses > 1 MB records unless told otherwise
    # the record's size is what is under test: the encoder is replaced, not the client
    monkeypatch.setattr(baseline, "encode_profile", lambda _profile: big)
    publish_reference(kafka_bootstrap, {"model": "big", "model_version": "v1"}, topics)
    (rec,) = read_to_end(kafka_bootstrap, topics.references, timeout_s=30)
    assert rec.key == b"big/v1" and rec.value == big
