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
(:mod:`stream_jobs.performance.judge`, the same functions the label engine uses).

Not judged here: concept drift (online detectors vote per partition; their quorum is a
separate stream) and the drop ranking (it needs a baseline of earlier healthy windows,
state this pure merger does not keep).

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

import numpy as np

from stream_jobs.blobs import pack_blobs, pack_strings, unpack_blobs, unpack_strings
from stream_jobs.drift.config import DriftConfig
from stream_jobs.join.codec import seal, unseal
from stream_jobs.join.config import LabelConfig
from stream_jobs.merge.protocol import MergedWindow, PartialRecord
from stream_jobs.performance.judge import collapse, performance_part, versus_reference, window_doc
from stream_jobs.performance.label_drift import judge_label_drift
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


def _recode(w: WindowPerformance, classes: list[str], index: dict[str, int], k: int) -> None:
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
            _recode(w, names, index, len(classes))
            if merged is None:
                merged = w
            else:
                if merged.cls.positive < 0:
                    merged.cls.positive = w.cls.positive
                merged.merge(w)
        assert merged is not None
        return merged, classes

    def merge(self, partials: list[PartialRecord], reference: object | None) -> MergedWindow:
        w, classes = self.merge_windows(partials)
        ref = reference if isinstance(reference, ReferenceView) else None
        doc = window_doc(w, classes, closed=True)
        column, label_drift = judge_label_drift(w, classes, ref, self.drift)
        doc["label"] = column
        detections = [] if label_drift is None else [label_drift]
        detections += collapse(self.config, w, doc["performance"])
        detections += versus_reference(self.config, w, doc, ref)
        return MergedWindow(stats=performance_part(doc), detections=detections)


__all__ = [
    "CLASSIFICATION",
    "KIND",
    "PerformanceMerger",
    "decode_payload",
    "encode_payload",
    "performance_partial",
]
