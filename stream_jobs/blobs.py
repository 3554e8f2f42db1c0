"""Length-prefixed blobs and strings: the tiny binary framing of the compact ``to_bytes``
forms of window partials and performance accumulators.

>>> unpack_blobs(pack_blobs(b"ab", b"", b"c"))
[b'ab', b'', b'c']
>>> unpack_strings(pack_strings(["x", "é"]))
['x', 'é']
"""

from __future__ import annotations

import struct
from itertools import chain

import numpy as np

_LEN = struct.Struct("<I")


def pack_blobs(*blobs: bytes) -> bytes:
    """Concatenate byte strings, each prefixed by its 4-byte little-endian length."""
    if len(blobs) > 16:
        width = len(blobs[0])
        body = b"".join(blobs)
        if len(body) == width * len(blobs):  # all of one length (a batch's ids): one copy
            out = np.empty((len(blobs), 4 + width), dtype=np.uint8)
            out[:, :4] = np.frombuffer(_LEN.pack(width), dtype=np.uint8)
            out[:, 4:] = np.frombuffer(body, dtype=np.uint8).reshape(len(blobs), width)
            return out.tobytes()
    return b"".join(chain.from_iterable(zip(map(_LEN.pack, map(len, blobs)), blobs, strict=True)))


def unpack_blobs(data: bytes) -> list[bytes]:
    """Inverse of :func:`pack_blobs`."""
    out: list[bytes] = []
    pos = 0
    mv = memoryview(data)
    while pos < len(data):
        (n,) = _LEN.unpack_from(data, pos)
        pos += _LEN.size
        out.append(bytes(mv[pos : pos + n]))
        pos += n
    return out


def pack_strings(values: list[str]) -> bytes:
    """A list of strings as length-prefixed UTF-8 blobs."""
    return pack_blobs(*[v.encode() for v in values])


def unpack_strings(data: bytes) -> list[str]:
    return [b.decode() for b in unpack_blobs(data)]
