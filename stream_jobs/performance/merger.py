"""Stage 2 of the performance half: partition partials of one window into its verdict.

Each input partition's label join keeps a :class:`WindowPerformance` per (model, version,
window); closed, it travels as a :class:`~stream_jobs.merge.protocol.PartialRecord` of
kind ``performance`` whose payload is::

    version u1 (stream_jobs.join.codec) | blobs( WindowPerformance bytes, class names of its codes )

Class codes are interned per process (a worker meets the classes in its own order), so
the payload carries its names and :class:`PerformanceMerger` maps every partial's
confusion matrix onto one class list (names in order of first appearance, partials taken
by partition, so the result does not depend on arrival order) before merging. Everything
else in a window (counts, delay histogram, AUC and calibration histograms, log-loss sums,
regression moments, label-value sketch, segment slices by name) is additive.

The merged window is judged once, here: the WindowStats performance part, label drift,
``performance_collapse`` and ``performance_drop`` against the reference
(:mod:`stream_jobs.performance.judge`), and the *ranking* of an active drop or collapse:
merged windows without one feed a decayed baseline of segment slices per (model, version)
(:attr:`PerformanceMerger.baselines`, carried in the merge stage's snapshot), and a window
with one is ranked against it (:func:`~stream_jobs.performance.slices.rank_segments`): the
detections' ``explained_by`` names the segments and feature ranges where the error rose
most. :attr:`PerformanceMerger.latest_closed` holds each model version's latest merged
document, what the performance gauges export.

Not judged here: concept drift (the online error-stream monitors run in stage 1, per
worker, :mod:`stream_jobs.join.engine`).

>>> import numpy as np
>>> parts = []
>>> for p, (names, yt, yp) in enumerate([(["a", "b"], [0, 1], [0, 0]), (["b", "a"], [0], [1])]):
...     w = WindowPerformance("m", "1", 0, 60_000, task=CLASSIFICATION)
...     w.n_predictions += len(yt); w.add_delays(np.ones(len(yt)))
...     w.cls.update(np.array(yt), np.array(yp))
...     parts.append(performance_partial(w, names, partition=p, partitions=2, input_offset=9))
>>> merged = PerformanceMerger(LabelConfig()).merge(parts, None)
>>> merged.stats["performance"]["labels_joined"], merged.stats["performance"]["accuracy"]
(3.0, 0.3333333333333333)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from schemas.detection import Detection
from stream_jobs.blobs import pack_blobs, pack_strings, unpack_blobs, unpack_strings
from stream_jobs.drift.config import DriftConfig
from stream_jobs.join.codec import seal, unseal
from stream_jobs.join.config import LabelConfig
from stream_jobs.merge.protocol import MergedWindow, PartialRecord
from stream_jobs.performance.judge import collapse, performance_part, versus_reference, window_doc
from stream_jobs.performance.label_drift import judge_label_drift
from stream_jobs.performance.slices import SliceTable, explain, rank_segments
from stream_jobs.performance.window import CLASSIFICATION, WindowPerformance
from stream_jobs.reference.view import ReferenceView

KIND = "performance"


def encode_payload(w: WindowPerformance, classes: list[str]) -> bytes:
    return seal(pack_blobs(w.to_bytes(), pack_strings(classes)))


def decode_payload(payload: bytes) -> tuple[WindowPerformance, list[str]]:
    """Raises :class:`~stream_jobs.join.codec.StateVersionError` (a ValueError) for a
    payload of an unknown version."""
    window, classes = unpack_blobs(unseal(payload, "performance partial"))
    return WindowPerformance.from_bytes(window), unpack_strings(classes)


def performance_partial(
    w: WindowPerformance,
    classes: list[str],
    *,
    partition: int,
    partitions: int,
    input_offset: int,
) -> PartialRecord:
    """One input partition's share of a performance window, ready for the partials topic."""
    return PartialRecord(
        model=w.model,
        model_version=w.model_version,
        kind=KIND,
        window_start_ms=w.start_ms,
        window_end_ms=w.end_ms,
        partition=partition,
        partitions=partitions,
        input_offset=input_offset,
        payload=encode_payload(w, classes),
    )


def recode_classes(
    w: WindowPerformance, classes: list[str], index: dict[str, int], k: int
) -> None:
    """Rewrite ``w``'s class codes (confusion matrix, positive class) into ``index``."""
    conf = w.cls.confusion
    n = conf.shape[0]
    codes = np.array([index[c] for c in classes[:n]], dtype=np.int64)
    out = np.zeros((k, k), dtype=conf.dtype)
    if n:
        np.add.at(out, (codes[:, None], codes[None, :]), conf[: codes.size, : codes.size])
    w.cls.confusion = out
    pos = w.cls.positive
    w.cls.positive = index[classes[pos]] if 0 <= pos < len(classes) else -1


class PerformanceMerger:
    """:class:`~stream_jobs.merge.protocol.PartialMerger` of kind ``performance``."""

    kind = KIND

    def __init__(self, config: LabelConfig, drift: DriftConfig | None = None) -> None:
        self.config = config
        self.drift = drift or DriftConfig()
        self.baselines: dict[tuple[str, str], SliceTable] = {}  # healthy merged windows
        self.latest_closed: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_windows(self, partials: list[PartialRecord]) -> tuple[WindowPerformance, list[str]]:
        """The merged accumulator and its class names (one partial per input partition:
        of repeats, the one reflecting the latest input offset)."""
        if not partials:
            raise ValueError("no partials to merge")
        latest: dict[int, PartialRecord] = {}
        for rec in partials:
            have = latest.get(rec.partition)
            if have is None or rec.input_offset > have.input_offset:
                latest[rec.partition] = rec
        decoded = [decode_payload(latest[p].payload) for p in sorted(latest)]
        classes: list[str] = []
        index: dict[str, int] = {}
        for w, names in decoded:
            for name in (
                names[: w.cls.confusion.shape[0]] + names[w.cls.positive : w.cls.positive + 1]
            ):
                if name not in index:
                    index[name] = len(classes)
                    classes.append(name)
        merged: WindowPerformance | None = None
        for w, names in decoded:
            recode_classes(w, names, index, len(classes))
            if merged is None:
                merged = w
            else:
                if merged.cls.positive < 0:
                    merged.cls.positive = w.cls.positive
                merged.merge(w)
        assert merged is not None
        return merged, classes

    def judge(
        self, partials: list[PartialRecord], reference: object | None
    ) -> tuple[dict[str, Any], list[Detection]]:
        """The merged window's document and detections (label drift first, then collapse,
        drop, each active one explained by the ranking)."""
        w, classes = self.merge_windows(partials)
        ref = reference if isinstance(reference, ReferenceView) else None
        doc = window_doc(w, classes, closed=True)
        column, label_drift = judge_label_drift(w, classes, ref, self.drift)
        doc["label"] = column
        judged = collapse(self.config, w, doc["performance"])
        judged += versus_reference(self.config, w, doc, ref)
        detections = [] if label_drift is None else [label_drift]
        detections += self._explain(w, doc, judged)
        key = (w.model, w.model_version)
        have = self.latest_closed.get(key)
        if have is None or have["window_end_ms"] <= w.end_ms:
            self.latest_closed[key] = doc
        return doc, detections

    def merge(self, partials: list[PartialRecord], reference: object | None) -> MergedWindow:
        doc, detections = self.judge(partials, reference)
        return MergedWindow(stats=performance_part(doc), detections=detections)

    def _explain(
        self, w: WindowPerformance, doc: dict[str, Any], judged: list[Detection]
    ) -> list[Detection]:
        """Name what explains an active drop or collapse; healthy windows feed the baseline."""
        c = self.config
        key = (w.model, w.model_version)
        baseline = self.baselines.get(key)
        if not any(d.active for d in judged):
            if baseline is None:
                baseline = self.baselines[key] = SliceTable()
            baseline.scale(c.baseline_decay)
            baseline.merge(w.slices)
            return judged
        if baseline is None or baseline.empty:
            return judged
        ranking = rank_segments(baseline, w.slices, min_labels=c.min_labels_for_performance)
        doc["ranking"] = ranking[: c.ranking_top]
        text = explain(ranking, c.ranking_top)
        if not text:
            return judged
        return [
            dataclasses.replace(d, details={**d.details, "explained_by": text}) if d.active else d
            for d in judged
        ]

    # ---- state (the ranking baselines), carried by the merge stage's snapshot ------------
    def state(self, models: set[str]) -> dict[str, str]:
        """The baselines of ``models`` (JSON-safe: model NUL version -> hex bytes)."""
        return {
            f"{m}\x00{v}": t.to_bytes().hex()
            for (m, v), t in sorted(self.baselines.items())
            if m in models
        }

    def load_state(self, state: dict[str, str]) -> None:
        for key, data in state.items():
            m, v = key.split("\x00", 1)
            self.baselines[(m, v)] = SliceTable.from_bytes(bytes.fromhex(data))


__all__ = [
    "CLASSIFICATION",
    "KIND",
    "PerformanceMerger",
    "decode_payload",
    "encode_payload",
    "performance_partial",
    "recode_classes",
]
