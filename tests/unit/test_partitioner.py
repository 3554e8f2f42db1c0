"""The murmur2 partitioner agrees with Kafka's Java client (UtilsTest vectors)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from producers.partitioner import murmur2, murmur2_many, partition_for, partitions_for

# org.apache.kafka.common.utils.UtilsTest#testMurmur2
JAVA_VECTORS = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), sorted(JAVA_VECTORS.items()))
def test_scalar_matches_java_vectors(key: str, expected: int) -> None:
    assert murmur2(key) == expected
    assert murmur2(key.encode()) == expected


def test_vectorised_matches_java_vectors_in_one_mixed_length_call() -> None:
    keys = list(JAVA_VECTORS)
    assert murmur2_many(keys).tolist() == list(JAVA_VECTORS.values())


def test_vectorised_equals_scalar_on_many_lengths_and_uuids() -> None:
    rng = np.random.default_rng(3)
    keys = [rng.bytes(int(n)) for n in rng.integers(0, 70, 2000)] + [
        uuid.uuid4().hex for _ in range(2000)
    ]
    assert murmur2_many(keys).tolist() == [murmur2(k) for k in keys]
    assert partitions_for(keys, 7).tolist() == [partition_for(k, 7) for k in keys]


def test_partition_is_positive_modulo() -> None:
    # murmur2("foobar") is negative: Kafka masks the sign bit before the modulo
    assert partition_for("foobar", 4) == (-790332482 & 0x7FFFFFFF) % 4
    assert 0 <= partition_for(None, 3) < 3
    with pytest.raises(ValueError):
        partition_for("x", 0)


def test_empty_inputs() -> None:
    assert murmur2(b"") == murmur2_many([b""])[0]
    assert partitions_for([], 4).tolist() == []
