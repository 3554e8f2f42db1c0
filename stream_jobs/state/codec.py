"""One versioned codec for every state snapshot a worker writes (no pickles).

A snapshot is ``version byte`` + length-prefixed blobs (:mod:`stream_jobs.blobs`): the first
blob is a JSON header (``kind`` says which stage wrote it, plus that stage's plain fields),
the others are the stage's binary parts (window partials, encoded partial records). A reader
refuses a version it does not know or a kind it did not ask for, loudly, instead of guessing.

>>> data = encode_state("drift", {"last_offset": 7}, [b"abc"])
>>> data[0], decode_state(data, "drift")
(1, ({'kind': 'drift', 'last_offset': 7}, [b'abc']))
>>> decode_state(b"\\x09", "drift")
Traceback (most recent call last):
...
stream_jobs.state.codec.StateCodecError: state version 9 is not one this worker reads (1)
"""

from __future__ import annotations

import json
from typing import Any

from stream_jobs.blobs import pack_blobs, unpack_blobs

VERSION = 1


class StateCodecError(ValueError):
    pass


def encode_state(kind: str, header: dict[str, Any], blobs: list[bytes]) -> bytes:
    head = json.dumps({"kind": kind, **header}, separators=(",", ":"), sort_keys=True)
    return bytes([VERSION]) + pack_blobs(head.encode(), *blobs)


def decode_state(data: bytes, kind: str) -> tuple[dict[str, Any], list[bytes]]:
    if not data:
        raise StateCodecError("empty state record")
    if data[0] != VERSION:
        raise StateCodecError(f"state version {data[0]} is not one this worker reads ({VERSION})")
    try:
        head, *blobs = unpack_blobs(data[1:])
        header = json.loads(head)
    except (ValueError, IndexError) as exc:
        raise StateCodecError(f"corrupt state record: {exc!r}") from exc
    if header.get("kind") != kind:
        raise StateCodecError(f"state of kind {header.get('kind')!r}, expected {kind!r}")
    return header, blobs
