"""Shared fixtures: a real embedded Kafka-compatible broker (Tansu) on a free loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from modelwatch.broker import EmbeddedBroker
from schemas.topics import TopicNames

TEST_PARTITIONS = 4

# Every client a test opens (in-process or in a subprocess, which inherits the environment)
# talks to the embedded broker: its profile, and no client properties file from the shell.
os.environ["MODELWATCH_PROFILE"] = "embedded"
os.environ.pop("MODELWATCH_KAFKA_CONFIG", None)


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(partitions=TEST_PARTITIONS, topics=TopicNames()) as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(embedded_broker: EmbeddedBroker) -> str:
    """``127.0.0.1:PORT`` of a real broker with every modelwatch topic created."""
    return embedded_broker.bootstrap
