"""Performance per segment tag value, and which segment explains a performance drop.

A :class:`SliceTable` keeps, per ``(tag, value)``, four sums: predictions, labels (joined
rows), errors (classification: misclassified rows; regression: sum of absolute errors)
and squared errors. The caller bounds the cardinality (the join catalog maps values
beyond the cap to ``"__other__"``), so a table stays small and mergeable.

:func:`rank_segments` decomposes the change of a tag's overall error between two windows
into per-value contributions that add up to that change::

    E = sum_s w_s e_s            (w: share of labelled rows, e: error per row)
    dE = sum_s (w1_s e1_s - w0_s e0_s)
       = sum_s [ w1_s (e1_s - e0_s)  +  (w1_s - w0_s) e0_s ]
                 performance change      traffic-mix change

A contribution alone cannot tell a segment where the error rose from one that merely
carries its share of a rise spread everywhere (half the traffic carries half of any
uniform rise). The **excess** contribution, ``x_s = contribution_s - w1_s dE``, is what
the segment adds beyond its traffic share (excesses within a tag sum to zero; a uniform
rise gives every segment about zero). Rows are ranked by ``score_s = x_s^2 / w1_s``
(signed like ``x_s``) — the segment's term of the between-segment sum of squares of the
error rise — so a sharp rise on a small slice ranks above a slight one on a large slice:
a big bin that is a little worse than average is not what changed.

>>> import numpy as np
>>> before, after = SliceTable(), SliceTable()
>>> codes = np.array([0, 0, 1, 1])
>>> before.add("region", ["eu", "us"], codes, labels=np.ones(4), errors=np.zeros(4))
>>> after.add("region", ["eu", "us"], codes, labels=np.ones(4), errors=np.array([0, 0, 1, 1.]))
>>> top = rank_segments(before, after)[0]
>>> top["value"], top["contribution"], top["error_after"]
('us', 0.5, 1.0)
"""

from __future__ import annotations

import math

import numpy as np

from stream_jobs.blobs import pack_blobs, pack_strings, unpack_blobs, unpack_strings

_F8 = np.dtype("<f8")
COLUMNS = ("predictions", "labels", "errors", "sq_errors")
PRED, LAB, ERR, SQ = range(4)


class SliceTable:
    def __init__(self) -> None:
        self.tags: dict[str, dict[str, np.ndarray]] = {}
        # per tag: (value count, its values packed); values are only ever appended, so the
        # count tells the packed names still hold (a window is written at every batch)
        self._packed: dict[str, tuple[int, bytes]] = {}

    def add(
        self,
        tag: str,
        names: list[str],
        codes: np.ndarray,
        *,
        predictions: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        errors: np.ndarray | None = None,
        sq_errors: np.ndarray | None = None,
    ) -> None:
        """Add per-row amounts grouped by ``codes`` (indexes into ``names``; -1 skipped)."""
        ok = codes >= 0
        if not ok.any():
            return
        c = codes[ok]
        m = len(names)
        sums = np.zeros((m, 4), dtype=_F8)
        for j, w in enumerate((predictions, labels, errors, sq_errors)):
            if w is not None:
                sums[:, j] = np.bincount(c, weights=np.asarray(w, _F8)[ok], minlength=m)[:m]
        table = self.tags.setdefault(tag, {})
        for i in np.flatnonzero(sums.any(axis=1)).tolist():
            row = table.get(names[i])
            if row is None:
                table[names[i]] = sums[i].copy()
            else:
                row += sums[i]

    def merge(self, other: SliceTable) -> None:
        for tag, values in other.tags.items():
            table = self.tags.setdefault(tag, {})
            for v, row in values.items():
                if v in table:
                    table[v] = table[v] + row
                else:
                    table[v] = row.copy()

    def scale(self, factor: float) -> None:
        """Multiply every sum (an exponentially decayed baseline keeps shares and rates)."""
        for values in self.tags.values():
            for row in values.values():
                row *= factor

    @property
    def empty(self) -> bool:
        return not any(self.tags.values())

    def metrics(self, regression: bool = False) -> dict[str, dict[str, dict[str, float]]]:
        """``{tag: {value: {predictions, labels, error_rate|mae, rmse?}}}``."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for tag, values in self.tags.items():
            out[tag] = {}
            for v, row in values.items():
                d = {"predictions": float(row[PRED]), "labels": float(row[LAB])}
                if row[LAB] > 0:
                    if regression:
                        d["mae"] = float(row[ERR] / row[LAB])
                        d["rmse"] = float(np.sqrt(row[SQ] / row[LAB]))
                    else:
                        d["error_rate"] = float(row[ERR] / row[LAB])
                        d["accuracy"] = 1.0 - d["error_rate"]
                out[tag][v] = d
        return out

    def to_bytes(self) -> bytes:
        blobs = []
        for tag, values in self.tags.items():
            packed = self._packed.get(tag)
            if packed is None or packed[0] != len(values):
                packed = self._packed[tag] = (len(values), pack_strings(list(values)))
            mat = np.array(list(values.values()), dtype=_F8).reshape(len(values), 4)
            blobs.append(pack_blobs(tag.encode(), packed[1], mat.tobytes()))
        return pack_blobs(*blobs)

    @classmethod
    def from_bytes(cls, data: bytes) -> SliceTable:
        t = cls()
        for blob in unpack_blobs(data):
            tag, names, mat = unpack_blobs(blob)
            names_l = unpack_strings(names)
            arr = np.frombuffer(mat, _F8).reshape(len(names_l), 4)
            t.tags[tag.decode()] = {v: arr[i].copy() for i, v in enumerate(names_l)}
        return t


def rank_segments(
    before: SliceTable, after: SliceTable, tag: str | None = None, min_labels: int = 1
) -> list[dict[str, float | str]]:
    """Segments ordered by how sharply they add more than their traffic share to the error
    increase from ``before`` to ``after`` (``score``, largest first). Contributions within
    one tag sum to that tag's change of the overall error (error rate for classification,
    MAE for regression)."""
    rows: list[dict[str, float | str]] = []
    tags = [tag] if tag is not None else sorted(set(before.tags) | set(after.tags))
    for t in tags:
        b, a = before.tags.get(t, {}), after.tags.get(t, {})
        tot_b = sum(float(r[LAB]) for r in b.values())
        tot_a = sum(float(r[LAB]) for r in a.values())
        if tot_b < min_labels or tot_a < min_labels:
            continue
        d_error = (
            sum(float(r[ERR]) for r in a.values()) / tot_a
            - sum(float(r[ERR]) for r in b.values()) / tot_b
        )
        for v in sorted(set(b) | set(a)):
            rb, ra = b.get(v), a.get(v)
            nb = 0.0 if rb is None else float(rb[LAB])
            na = 0.0 if ra is None else float(ra[LAB])
            w0, w1 = nb / tot_b, na / tot_a
            e0 = float(rb[ERR] / nb) if nb > 0 else 0.0
            e1 = float(ra[ERR] / na) if na > 0 else 0.0
            if nb == 0:
                e0 = e1  # a new segment: all of it is mix change at its own error
            rows.append(
                {
                    "tag": t,
                    "value": v,
                    "share_before": w0,
                    "share_after": w1,
                    "error_before": e0,
                    "error_after": e1,
                    "performance_part": w1 * (e1 - e0),
                    "mix_part": (w1 - w0) * e0,
                    "contribution": w1 * e1 - w0 * e0,
                    "excess": w1 * e1 - w0 * e0 - w1 * d_error,
                    "tag_change": d_error,
                }
            )
            x = float(rows[-1]["excess"])
            rows[-1]["score"] = math.copysign(x * x / w1, x) if w1 > 0 else 0.0
    rows.sort(key=lambda r: -float(r["score"]))
    return rows


def explain(rows: list[dict[str, float | str]], top: int = 3) -> str:
    """The ``top`` rows with a positive excess, for a person on call::

    feature:x=≥ 0.9 error 0.1→1 on 10% of labels (51% of the rise)
    """
    parts = []
    for r in rows:
        if len(parts) == top or float(r["excess"]) <= 0:
            break
        change = float(r["tag_change"])
        part = (
            f"{r['tag']}={r['value']} error {float(r['error_before']):.2g}→"
            f"{float(r['error_after']):.2g} on {float(r['share_after']):.0%} of labels"
        )
        if change > 0:
            part += f" ({float(r['contribution']) / change:.0%} of the rise)"
        parts.append(part)
    return "; ".join(parts)
