"""Topic administration on any cluster: wait for it to answer, create topics explicitly.

Replication factor ``-1`` asks the broker for its ``default.replication.factor`` (KIP-464,
Kafka >= 2.4; MSK, Confluent Cloud and Aiven support it). Topic configs come from the spec
(e.g. the references topic's ``max.message.bytes``) and from the caller (applied to every
topic, or to one topic by name).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic

from schemas.kafka.config import KafkaConfig, KafkaUnavailable, describe
from schemas.kafka.properties import KafkaConfigError
from schemas.topics import TopicSpec

BROKER_DEFAULT = -1


class TopicError(RuntimeError):
    """A topic could not be created, or exists with an incompatible shape."""


def wait_until_answers(conn: str | KafkaConfig, timeout_s: float = 20.0) -> None:
    """Block until a metadata request succeeds, or raise :class:`KafkaUnavailable`."""
    config = KafkaConfig.of(conn)
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    admin = config.admin()
    while True:
        try:
            admin.list_topics(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            return
        except KafkaException as exc:  # while the port is not up yet, or auth refused
            last = describe(exc)
        if time.monotonic() >= deadline:
            raise KafkaUnavailable(
                f"cannot reach Kafka at {config} within {timeout_s:g}s: {last}"
            )
        time.sleep(0.2)


def create_topics(
    conn: str | KafkaConfig,
    specs: list[TopicSpec],
    replication_factor: int = BROKER_DEFAULT,
    configs: Mapping[str, str] | None = None,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create topics with explicit partition counts; existing ones are left as they are.

    Returns the names created. Raises :class:`TopicError` when an existing predictions or
    labels topic's partition count differs from the spec (their partitioning must agree).
    """
    if replication_factor == 0 or replication_factor < BROKER_DEFAULT:
        raise KafkaConfigError(f"replication factor {replication_factor}: use -1 or >= 1")
    config = KafkaConfig.of(conn)
    admin = config.admin()
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot reach Kafka at {config}: {describe(exc)}") from None
    for spec in specs:
        have = existing.get(spec.name)
        mismatch = have is not None and len(have.partitions) != spec.partitions
        if mismatch and spec.name.endswith(("predictions", "labels")):
            raise TopicError(
                f"topic {spec.name} has {len(have.partitions)} partitions, "
                f"expected {spec.partitions}: predictions and labels must be partitioned alike"
            )
    todo = [s for s in specs if s.name not in existing]
    if not todo:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=replication_factor,
                config={**s.config, **(configs or {})},
            )
            for s in todo
        ],
        operation_timeout=timeout_s,
    )
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise TopicError(f"could not create topic {name}: {describe(exc)}") from None
    return [s.name for s in todo]
