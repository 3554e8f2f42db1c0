"""Compact binary values of the join store: pending predictions and early labels.

A pending prediction is one fixed-layout little-endian record per prediction_id::

    flags u1 | catalog id u4 | event time i8 | score f8 | predicted class i2
    | class probabilities f4 x k | segment value codes i2 x s

``k`` and ``s`` are fixed per model version by its :class:`Catalog` entry (class names,
probability column order, segment tags and their values, all interned to small codes),
so a batch packs with one numpy structured-array ``tobytes`` and unpacks with one
``np.frombuffer`` per (catalog id, width) group. A binary model with two probabilities
and two segment tags takes 23 + 8 + 4 = 35 bytes. Probabilities are stored as float32
(relative error 6e-8, far below what log loss or calibration can resolve).

A prediction read after its partition's performance window had already passed its
prediction cut (:mod:`stream_jobs.join.engine`) carries the :data:`LATE` flag: it still joins
its label (totals, delays) but changes no window.

An early label (read before its prediction) keeps its partition's label *clock* before
the record it came in (the largest label time read until then): where the label stream had
got when it was read, so that whether it counts in its window, and in which concept bucket,
does not depend on when its prediction comes.

A joined prediction is replaced by the one-byte :data:`JOINED` marker, which keeps
duplicate labels detectable until the prediction's TTL expires.

>>> import numpy as np
>>> cat = Catalog(1, "m", "v1")
>>> arr = pack_predictions(cat, np.array([5, 6]), np.array([0.9, 0.2]),
...                        np.array([1, 0]), None, np.zeros((2, 0), np.int16))
>>> recs = [arr[0], arr[1]]
>>> cid, rows, pos = unpack_predictions(recs, {1: cat})[0]
>>> cid, rows["t"].tolist(), rows["cls"].tolist()
(1, [5, 6], [1, 0])
>>> lab = pack_label("m", 30, np.nan, "yes", clock=25); unpack_label(lab)
('m', 30, nan, 'yes', 25)
"""

from __future__ import annotations

import struct
from collections import defaultdict

import numpy as np

from stream_jobs.blobs import pack_blobs, pack_strings, unpack_blobs, unpack_strings

JOINED = b"\x00"
OTHER = "__other__"
HAS_SCORE, HAS_CLASS, HAS_PROBS, LATE = 1, 2, 4, 8
_LABEL = struct.Struct("<qqdH")  # label clock before, time, value, model length


class Catalog:
    """Interned names of one model version: classes, probability columns, segments."""

    def __init__(self, cid: int, model: str, version: str, max_classes: int = 1000) -> None:
        self.cid = cid
        self.max_classes = max_classes
        self.model = model
        self.version = version
        self.classes: list[str] = []
        self._class_index: dict[str, int] = {}
        self.prob_classes: list[str] | None = None  # fixed at the first batch with probs
        self.tags: list[str] | None = None  # fixed at the first batch
        self.tag_values: list[list[str]] = []
        self._tag_index: list[dict[str, int]] = []
        self.dirty = True

    # ---- classes ----------------------------------------------------------------------
    def class_code(self, name: str) -> int:
        code = self._class_index.get(name)
        if code is None:
            if len(self.classes) >= self.max_classes and name != OTHER:
                return self.class_code(OTHER)  # bounded: codes are int16, matrices k x k
            code = self._class_index[name] = len(self.classes)
            self.classes.append(name)
            self.dirty = True
        return code

    def class_codes(self, names: list[str]) -> np.ndarray:
        return np.array([self.class_code(n) for n in names], dtype=np.int64)

    # ---- segments ---------------------------------------------------------------------
    def ensure_tags(self, tags: list[str]) -> None:
        if self.tags is None:
            self.tags = sorted(tags)
            self.tag_values = [[] for _ in self.tags]
            self._tag_index = [{} for _ in self.tags]
            self.dirty = True

    def segment_code(self, t: int, value: str, cap: int) -> int:
        index = self._tag_index[t]
        code = index.get(value)
        if code is None:
            if len(self.tag_values[t]) >= cap:
                value = OTHER
                code = index.get(value)
                if code is not None:
                    return code
            code = index[value] = len(self.tag_values[t])
            self.tag_values[t].append(value)
            self.dirty = True
        return code

    def segment_codes(self, t: int, values: list[str], cap: int) -> list[int]:
        """:meth:`segment_code` of each value (one dict lookup each when all are known)."""
        get = self._tag_index[t].get
        codes = [get(v) for v in values]
        if None in codes:
            return [self.segment_code(t, v, cap) for v in values]
        return codes  # type: ignore[return-value]

    def segment_names(self, t: int) -> list[str]:
        return self.tag_values[t]

    # ---- layout -----------------------------------------------------------------------
    def dtype(self) -> np.dtype:
        fields: list[tuple] = [
            ("flags", "u1"),
            ("cid", "<u4"),
            ("t", "<i8"),
            ("score", "<f8"),
            ("cls", "<i2"),
        ]
        if self.prob_classes:
            fields.append(("probs", "<f4", (len(self.prob_classes),)))
        if self.tags:
            fields.append(("segs", "<i2", (len(self.tags),)))
        return np.dtype(fields)

    def to_bytes(self) -> bytes:
        return pack_blobs(
            struct.pack("<I", self.cid),
            self.model.encode(),
            self.version.encode(),
            pack_strings(self.classes),
            b"" if self.prob_classes is None else b"\x01" + pack_strings(self.prob_classes),
            b"" if self.tags is None else b"\x01" + pack_strings(self.tags),
            pack_blobs(*(pack_strings(v) for v in self.tag_values)),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Catalog:
        cid, model, version, classes, probs, tags, values = unpack_blobs(data)
        cat = cls(struct.unpack("<I", cid)[0], model.decode(), version.decode())
        for c in unpack_strings(classes):
            cat.class_code(c)
        cat.prob_classes = unpack_strings(probs[1:]) if probs else None
        if tags:
            cat.tags = unpack_strings(tags[1:])
            cat.tag_values = [unpack_strings(b) for b in unpack_blobs(values)]
            cat._tag_index = [{v: i for i, v in enumerate(vs)} for vs in cat.tag_values]
        cat.dirty = False
        return cat


def pack_predictions(
    cat: Catalog,
    t: np.ndarray,
    score: np.ndarray | None,
    cls: np.ndarray | None,
    probs: np.ndarray | None,
    segs: np.ndarray,
    late: np.ndarray | None = None,
) -> list[bytes]:
    """One record per row (``probs`` already in ``cat.prob_classes`` column order;
    ``late``: rows read after their window's prediction cut)."""
    n = t.size
    dt = cat.dtype()
    arr = np.zeros(n, dtype=dt)
    flags = 0
    arr["cid"] = cat.cid
    arr["t"] = t
    arr["score"] = np.nan if score is None else score
    arr["cls"] = -1 if cls is None else cls
    if score is not None:
        flags |= HAS_SCORE
    if cls is not None:
        flags |= HAS_CLASS
    if cat.prob_classes:
        if probs is not None:
            arr["probs"] = probs
            flags |= HAS_PROBS
        else:
            arr["probs"] = np.nan
    if cat.tags:
        arr["segs"] = segs
    arr["flags"] = flags if late is None else np.where(late, flags | LATE, flags)
    # each row's bytes: a view of the rows as opaque records of the row's size (bytes
    # objects, trailing NULs kept), one C-level tolist
    return arr.view(np.dtype((np.void, dt.itemsize))).tolist()


def unpack_predictions(
    records: list[bytes], catalogs: dict[int, Catalog]
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Group records by catalog id: ``[(cid, rows structured array, positions)]``.

    ``positions`` index ``records``; callers align the rows with their labels by it.
    """
    if records:
        width = len(records[0])
        buf = b"".join(records)
        if len(buf) == width * len(records):  # one width (most batches): grouped by numpy
            cids = np.frombuffer(buf, dtype=np.dtype([("f", "u1"), ("cid", "<u4"),
                                                      ("r", f"V{width - 5}")]))["cid"]  # fmt: skip
            if (cids == cids[0]).all():
                cat = catalogs[int(cids[0])]
                rows = np.frombuffer(buf, dtype=cat.dtype())
                return [(cat.cid, rows, np.arange(len(records), dtype=np.int64))]
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        groups[(int.from_bytes(r[1:5], "little"), len(r))].append(i)
    out = []
    for (cid, _), pos in groups.items():
        cat = catalogs[cid]
        rows = np.frombuffer(b"".join(records[i] for i in pos), dtype=cat.dtype())
        out.append((cid, rows, np.array(pos, dtype=np.int64)))
    return out


def pack_label(
    model: str, t: int, value: float, label_class: str | None, *, clock: int
) -> bytes:
    m = model.encode()
    c = b"" if label_class is None else b"\x01" + label_class.encode()
    return _LABEL.pack(clock, t, value, len(m)) + m + c


def unpack_label(data: bytes) -> tuple[str, int, float, str | None, int]:
    """``(model, event time, value, class, label clock before it)`` of an early label."""
    clock, t, value, mlen = _LABEL.unpack_from(data)
    p = _LABEL.size
    model = data[p : p + mlen].decode()
    rest = data[p + mlen :]
    return model, t, value, (rest[1:].decode() if rest else None), clock
