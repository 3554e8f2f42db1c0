"""Local state belongs to one life of the input topics: a fresh broker means a clean start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelwatch.broker import EmbeddedBroker
from schemas.topics import TopicNames
from stream_jobs.state_identity import IDENTITY_FILE, ensure_worker_state

pytestmark = pytest.mark.integration
T = TopicNames()


def _ensure(broker: EmbeddedBroker, data: Path) -> bool:
    return ensure_worker_state(broker.bootstrap, T.predictions, T.labels, data, "g")


def test_state_of_an_earlier_broker_life_is_moved_aside_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with EmbeddedBroker(partitions=1) as first:
        assert _ensure(first, data) is False
        (data / "join-g").mkdir()
        (data / "join-g" / "applied").write_text("offsets of the first life")
        assert _ensure(first, data) is False  # same life: the state is kept
        assert (data / "join-g" / "applied").exists()
    with EmbeddedBroker(partitions=1) as second, caplog.at_level(logging.ERROR):
        assert _ensure(second, data) is True
        assert "ANOTHER LIFE" in caplog.text
    assert not (data / "join-g").exists()
    (aside,) = data.glob("join-g.stale-*")
    assert (aside / "applied").read_text() == "offsets of the first life"
    assert (data / IDENTITY_FILE).exists()
