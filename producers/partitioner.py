"""Kafka's Java-compatible murmur2 partitioner (librdkafka's ``murmur2_random``).

``partition = (murmur2(key) & 0x7fffffff) % partitions``; a null key goes to a random
partition. This is what the Java client's default partitioner and librdkafka's
``murmur2_random`` do, so a label keyed by a prediction_id lands in its prediction's
partition whichever client publishes it.

Two implementations agree bit for bit: :func:`murmur2` (one key, pure Python) and
:func:`murmur2_many` (numpy, vectorised over keys grouped by length, which is what the SDK
uses when it routes a drained buffer — uuid hex ids all have 32 bytes, so a whole buffer is
one group).

>>> murmur2(b"21"), murmur2(b"foobar"), murmur2(b"abc")
(-973932308, -790332482, 479470107)
>>> murmur2_many([b"21", b"foobar", b"abc"]).tolist()
[-973932308, -790332482, 479470107]
>>> partition_for(b"foobar", 4), partitions_for([b"foobar", b"21"], 4).tolist()
(2, [2, 0])
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

SEED = 0x9747B28C
M = 0x5BD1E995
MASK32 = 0xFFFFFFFF

_M32 = np.uint32(M)


def _to_signed(h: int) -> int:
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2(key: bytes | str) -> int:
    """Kafka's murmur2 of ``key`` as a signed 32-bit int (Java ``Utils.murmur2``).

    >>> murmur2("a-little-bit-long-string")
    -985981536
    """
    data = key.encode() if isinstance(key, str) else key
    length = len(data)
    h = (SEED ^ length) & MASK32
    n4 = length & ~3
    for i in range(0, n4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * M) & MASK32
        k ^= k >> 24
        k = (k * M) & MASK32
        h = (h * M) & MASK32
        h ^= k
    rem = length & 3
    if rem == 3:
        h ^= data[n4 + 2] << 16
    if rem >= 2:
        h ^= data[n4 + 1] << 8
    if rem >= 1:
        h ^= data[n4]
        h = (h * M) & MASK32
    h ^= h >> 13
    h = (h * M) & MASK32
    h ^= h >> 15
    return _to_signed(h)


def _murmur2_same_length(blob: bytes, n: int, length: int) -> np.ndarray:
    """Unsigned murmur2 of ``n`` keys of ``length`` bytes each, concatenated in ``blob``."""
    raw = np.frombuffer(blob, dtype=np.uint8).reshape(n, length)
    n4 = length & ~3
    h = np.full(n, (SEED ^ length) & MASK32, dtype=np.uint32)
    if n4:
        words = np.ascontiguousarray(raw[:, :n4]).view("<u4").astype(np.uint32, copy=False)
        for j in range(n4 // 4):
            k = words[:, j] * _M32
            k ^= k >> np.uint32(24)
            k *= _M32
            h *= _M32
            h ^= k
    rem = length & 3
    if rem == 3:
        h ^= raw[:, n4 + 2].astype(np.uint32) << np.uint32(16)
    if rem >= 2:
        h ^= raw[:, n4 + 1].astype(np.uint32) << np.uint32(8)
    if rem >= 1:
        h ^= raw[:, n4].astype(np.uint32)
        h *= _M32
    h ^= h >> np.uint32(13)
    h *= _M32
    h ^= h >> np.uint32(15)
    return h


def _as_bytes(keys: Sequence[bytes | str]) -> list[bytes]:
    return [k.encode() if isinstance(k, str) else k for k in keys]


def murmur2_many(keys: Sequence[bytes | str]) -> np.ndarray:
    """Signed murmur2 of many keys (``int32`` array), vectorised per key length.

    >>> murmur2_many(["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"]).tolist()
    [-58897971]
    """
    return _murmur2_unsigned(_as_bytes(keys)).view(np.int32)


def _murmur2_unsigned(keys: list[bytes]) -> np.ndarray:
    n = len(keys)
    out = np.empty(n, dtype=np.uint32)
    if n == 0:
        return out
    lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=n)
    first = int(lengths[0])
    if (lengths == first).all():  # the common case: uuid hex ids, one group
        return _murmur2_same_length(b"".join(keys), n, first)
    for length in np.unique(lengths).tolist():
        idx = np.flatnonzero(lengths == length)
        blob = b"".join(keys[i] for i in idx.tolist())
        out[idx] = _murmur2_same_length(blob, len(idx), int(length))
    return out


def partition_for(key: bytes | str | None, partitions: int) -> int:
    """The partition librdkafka's ``murmur2_random`` picks for ``key``; None → random."""
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    if key is None:
        return random.randrange(partitions)
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def partitions_for(keys: Sequence[bytes | str], partitions: int) -> np.ndarray:
    """Vectorised :func:`partition_for` for non-null keys (``int64`` array)."""
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    h = _murmur2_unsigned(_as_bytes(keys)) & np.uint32(0x7FFFFFFF)
    return (h % np.uint32(partitions)).astype(np.int64)
