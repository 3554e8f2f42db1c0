"""Join keys of a whole batch at once: the ids encoded in one call, prefixed, deduplicated.

The per-id Python work of a batch (``prefix + pid.encode()`` and a ``setdefault`` per id)
was most of the join's cost; these do the same in a few C-level calls.

>>> enc = encode_ids(["a", "é", "a"]); enc
[b'a', b'\\xc3\\xa9', b'a']
>>> keys = prefixed(b"p", enc); keys
[b'pa', b'p\\xc3\\xa9', b'pa']
>>> first_rows(keys)  # the first row of each key, in first-occurrence order
{b'pa': 0, b'p\\xc3\\xa9': 1}
>>> first_rows(keys[:2]) is None  # no duplicate: every row is its key's first
True
>>> encode_ids(["x\\x00y", "z"])  # a NUL inside an id: encoded one by one
[b'x\\x00y', b'z']
"""

from __future__ import annotations

from collections.abc import Sequence

_SEP = "\x00"


def encode_ids(ids: Sequence[str]) -> list[bytes]:
    """``[pid.encode() for pid in ids]``: one encode of the joined ids, split on NUL (when
    no id holds a NUL, the only case the split cannot tell apart)."""
    if not ids:
        return []
    joined = _SEP.join(ids)
    if joined.count(_SEP) != len(ids) - 1:
        return [pid.encode() for pid in ids]
    return joined.encode().split(b"\x00")


def prefixed(prefix: bytes, encoded: Sequence[bytes]) -> list[bytes]:
    """``[prefix + e for e in encoded]``."""
    return list(map(prefix.__add__, encoded))


def first_rows(keys: Sequence[bytes]) -> dict[bytes, int] | None:
    """Each key's first row, in first-occurrence order; None when no key repeats (then
    every row is its key's first, in order)."""
    if len(set(keys)) == len(keys):
        return None
    first: dict[bytes, int] = {}
    for i, k in enumerate(keys):
        first.setdefault(k, i)
    return first
