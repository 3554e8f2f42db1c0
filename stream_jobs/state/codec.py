"""One versioned codec for every state snapshot a worker writes (no pickles).

A snapshot is ``version byte`` + length-prefixed blobs (:mod:`stream_jobs.blobs`): the first
blob is a JSON header (``kind`` says which stage wrote it, plus that stage's plain fields),
the others are the stage's binary parts (window partials, encoded partial records). Version
2 (written) zstd-compresses the blobs (window sketches and partial records compress several
times over, and a snapshot must fit the producer's request limit); version 1 (read still)
is the same without compression. A reader refuses a version it does not know or a kind it
did not ask for, loudly, instead of guessing.

>>> data = encode_state("drift", {"last_offset": 7}, [b"abc"])
>>> data[0], decode_state(data, "drift"), state_header(data)["last_offset"]
(2, ({'kind': 'drift', 'last_offset': 7}, [b'abc']), 7)
>>> decode_state(b"\\x09", "drift")
Traceback (most recent call last):
...
stream_jobs.state.codec.StateCodecError: state version 9 is not one this worker reads (1, 2)
"""

from __future__ import annotations

import json
from typing import Any

import cramjam

from stream_jobs.blobs import pack_blobs, unpack_blobs

PLAIN, ZSTD = 1, 2
VERSION = ZSTD
ZSTD_LEVEL = 3  # measured on merge-book snapshots: level 9 saves a few % for 4x the time


class StateCodecError(ValueError):
    pass


def encode_state(kind: str, header: dict[str, Any], blobs: list[bytes]) -> bytes:
    head = json.dumps({"kind": kind, **header}, separators=(",", ":"), sort_keys=True)
    packed = pack_blobs(head.encode(), *blobs)
    return bytes([ZSTD]) + bytes(cramjam.zstd.compress(packed, level=ZSTD_LEVEL))


def _unpack(data: bytes) -> list[bytes]:
    if not data:
        raise StateCodecError("empty state record")
    if data[0] not in (PLAIN, ZSTD):
        raise StateCodecError(f"state version {data[0]} is not one this worker reads (1, 2)")
    try:
        body = data[1:] if data[0] == PLAIN else bytes(cramjam.zstd.decompress(data[1:]))
        return unpack_blobs(body)
    except (ValueError, IndexError, cramjam.DecompressionError) as exc:
        raise StateCodecError(f"corrupt state record: {exc!r}") from exc


def state_header(data: bytes) -> dict[str, Any]:
    """The JSON header of a snapshot (any kind)."""
    head = _unpack(data)[0]
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise StateCodecError(f"corrupt state header: {exc!r}") from exc
    if not isinstance(header, dict):
        raise StateCodecError("state header is not an object")
    return header


def decode_state(data: bytes, kind: str) -> tuple[dict[str, Any], list[bytes]]:
    head, *blobs = _unpack(data)
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise StateCodecError(f"corrupt state record: {exc!r}") from exc
    if not isinstance(header, dict) or header.get("kind") != kind:
        got = header.get("kind") if isinstance(header, dict) else None
        raise StateCodecError(f"state of kind {got!r}, expected {kind!r}")
    return header, blobs
