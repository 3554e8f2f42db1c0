"""Read what the worker published, as a test would look at a topic."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from schemas.codec import DecodeError, default_codec


def read_topic(bootstrap: str, topic: str, model: str, name: str) -> list[dict]:
    """Records of schema ``name`` for ``model``, from the start until the topic goes quiet."""
    codec = default_codec()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out = []
    idle_until = time.monotonic() + 2.0
    while time.monotonic() < idle_until:
        msg = consumer.poll(0.3)
        if msg is None or msg.error():
            continue
        idle_until = time.monotonic() + 1.0
        try:
            rec = codec.decode(msg.value())
        except DecodeError:  # other tests write garbage on purpose
            continue
        if rec.name == name and rec.record["model"] == model:
            out.append(rec.record)
    consumer.close()
    return out
