"""Shared fixtures: a real embedded Kafka-compatible broker (Tansu) on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelwatch.broker import EmbeddedBroker
from schemas.topics import TopicNames

TEST_PARTITIONS = 4


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(partitions=TEST_PARTITIONS, topics=TopicNames()) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(embedded_broker: EmbeddedBroker) -> str:
    """``127.0.0.1:PORT`` of a real broker with every modelwatch topic created."""
    return embedded_broker.bootstrap
