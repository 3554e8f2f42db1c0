"""The reference feed survives a broker that is down when it starts, and says so meanwhile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from modelwatch.broker import EmbeddedBroker, free_port
from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.reference.profile import build_profile
from stream_jobs.reference_feed import ReferenceFeed
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration


def test_feed_retries_until_the_broker_comes_and_then_reads(tmp_path: Path) -> None:
    port = free_port()
    topics = TopicNames()
    codec = default_codec()
    feed = ReferenceFeed(f"127.0.0.1:{port}", topics.references, codec, max_backoff_s=1.0,
                         stale_after_s=3.0)
    feed.start()
    try:
        wait_for(lambda: feed.failures >= 2, 60, "the feed to fail to connect and retry")
        wait_for(lambda: not feed.alive(), 30, "the feed to report itself down")
        assert feed.is_alive()  # the thread is still there, retrying
        with EmbeddedBroker(port=port, partitions=1, topics=topics) as broker:
            profile = build_profile("m", "", numeric={"x": np.arange(100.0)})
            producer = Producer({"bootstrap.servers": broker.bootstrap})
            producer.produce(topics.references, key=b"m/",
                             value=codec.encode("ReferenceProfile", profile))
            producer.produce(topics.references, key=b"m/", value=b"\x00garbage")
            assert producer.flush(15) == 0
            got: list = []
            wait_for(lambda: (got.extend(feed.drain()) or len(got)) >= 2, 60,
                     "both references read")
            assert got[0].profile is not None and got[0].profile["model"] == "m"
            assert got[1].profile is None and got[1].error_kind == "decode"
            assert (got[1].partition, got[1].offset) == (0, 1)
            wait_for(feed.alive, 10, "the feed to report itself up")
    finally:
        feed.stopping.set()
        feed.join(10)
    assert not feed.is_alive()
