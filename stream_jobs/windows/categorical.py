"""Mergeable partial statistics of one categorical column in one window.

Counts per category up to ``cap`` distinct categories; later categories fold into
``"__other__"``. Below the cap, merging is exact; above it, totals stay exact and only the
split between named categories and ``__other__`` depends on arrival order. ``unseen``
counts values absent from the reference's categories (when the reference is given and
was not itself capped).

>>> from schemas.columnar import CategoricalArray
>>> p = CategoricalPartial(cap=2, known=frozenset({"red"}))
>>> p.update(CategoricalArray.from_values(["red", "blue", None, "green", "red"]))
>>> p.count, p.missing, p.unseen, sorted(p.counts.items())
(5, 1, 2, [('__other__', 1), ('blue', 1), ('red', 2)])
>>> CategoricalPartial.from_bytes(p.to_bytes()).counts == p.counts
True
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from schemas.columnar import CategoricalArray
from stream_jobs.blobs import pack_blobs, pack_strings, unpack_blobs, unpack_strings

OTHER = "__other__"
_HEAD = struct.Struct("<iqqq?")
_I8 = np.dtype("<i8")


class CategoricalPartial:
    """Capped category counts, missing and unseen-vs-reference counts."""

    __slots__ = ("cap", "known", "count", "missing", "unseen", "counts")

    def __init__(self, cap: int = 100, known: frozenset[str] | None = None) -> None:
        self.cap = int(cap)
        self.known = known
        self.count = 0
        self.missing = 0
        self.unseen = 0
        self.counts: dict[str, int] = {}

    def _add(self, name: str, c: int) -> None:
        counts = self.counts
        if name in counts:
            counts[name] += c
        elif len(counts) - (OTHER in counts) < self.cap:
            counts[name] = c
        else:
            counts[OTHER] = counts.get(OTHER, 0) + c

    def update(self, values: CategoricalArray | Sequence[str | None]) -> None:
        """Add a batch: one ``bincount`` over the codes, then a loop over its dictionary."""
        if not isinstance(values, CategoricalArray):
            values = CategoricalArray.from_values(list(values))
        codes = values.codes
        if codes.size == 0:
            return
        bc = np.bincount(codes + 1, minlength=len(values.dictionary) + 1)
        self.count += int(codes.size)
        self.missing += int(bc[0])
        dictionary = values.dictionary
        known = self.known
        for i in np.flatnonzero(bc[1:]).tolist():
            name, c = dictionary[i], int(bc[i + 1])
            self._add(name, c)
            if known is not None and name not in known:
                self.unseen += c

    def add_missing(self, n: int) -> None:
        """Account ``n`` events in which the column was absent."""
        self.count += int(n)
        self.missing += int(n)

    def merge(self, other: CategoricalPartial) -> None:
        self.count += other.count
        self.missing += other.missing
        self.unseen += other.unseen
        for name, c in other.counts.items():
            self._add(name, c)

    @property
    def distinct(self) -> int:
        return len(self.counts)

    def to_bytes(self) -> bytes:
        names = list(self.counts)
        head = _HEAD.pack(self.cap, self.count, self.missing, self.unseen, self.known is not None)
        known = pack_strings(sorted(self.known)) if self.known is not None else b""
        return pack_blobs(
            head, pack_strings(names), np.array(list(self.counts.values()), _I8).tobytes(), known
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CategoricalPartial:
        head, names, counts, known = unpack_blobs(data)
        cap, count, missing, unseen, has_known = _HEAD.unpack(head)
        p = cls(cap, frozenset(unpack_strings(known)) if has_known else None)
        p.count, p.missing, p.unseen = count, missing, unseen
        p.counts = dict(
            zip(unpack_strings(names), np.frombuffer(counts, _I8).tolist(), strict=True)
        )
        return p
