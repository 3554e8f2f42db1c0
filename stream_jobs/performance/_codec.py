"""Length-prefixed blobs and strings: the tiny binary framing of the accumulators.

>>> unpack_blobs(pack_blobs(b"ab", b"", b"c"))
[b'ab', b'', b'c']
>>> unpack_strings(pack_strings(["x", "é"]))
['x', 'é']
"""

from __future__ import annotations

import struct

_LEN = struct.Struct("<I")


def pack_blobs(*blobs: bytes) -> bytes:
    out = bytearray()
    for b in blobs:
        out += _LEN.pack(len(b))
        out += b
    return bytes(out)


def unpack_blobs(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    mv = memoryview(data)
    while pos < len(data):
        (n,) = _LEN.unpack_from(data, pos)
        pos += 4
        out.append(bytes(mv[pos : pos + n]))
        pos += n
    return out


def pack_strings(items: list[str]) -> bytes:
    return pack_blobs(*(s.encode() for s in items))


def unpack_strings(data: bytes) -> list[str]:
    return [b.decode() for b in unpack_blobs(data)]
