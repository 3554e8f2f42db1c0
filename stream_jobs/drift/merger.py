"""The ``drift`` merger: per-partition window partials into one judged window.

Payload (stage 1): version byte ``1``, the partition's late-event count since its previous
partial (little-endian int64), then :meth:`WindowPartial.to_bytes`. Partials are merged in
partition order, so the result does not depend on the order they arrived in; the merged
window is judged against the reference by :func:`stream_jobs.drift.evaluate.evaluate_window`
— the only place drift tests, the drift share and window detections are computed.

>>> import numpy as np
>>> from schemas.columnar import PredictionColumns
>>> def partial(p, n):
...     cols = PredictionColumns("m", "1", [""] * n, np.arange(n, dtype=np.int64),
...                              np.full(n, 5.0), np.zeros(n, np.int8),
...                              numeric={"x": np.arange(n, dtype=float)})
...     w = WindowPartial("m", "1", 0, 60_000)
...     w.update(cols)
...     return PartialRecord("m", "1", KIND, 0, 60_000, p, 2, 0, encode_drift_payload(w, p), 60_000)
>>> closed = DriftMerger(DriftConfig()).merge_closed([partial(1, 30), partial(0, 10)], None)
>>> closed.stats["count"], closed.stats["late_events"], closed.stats["features"][0]["max"]
(40, 1, 29.0)
"""

from __future__ import annotations

import struct

from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.evaluate import ClosedWindow, evaluate_window
from stream_jobs.merge.protocol import MergedWindow, PartialRecord
from stream_jobs.reference.view import ReferenceView
from stream_jobs.windows.spec import PartialSpec
from stream_jobs.windows.window import WindowPartial

KIND = "drift"
PAYLOAD_VERSION = 1
_LATE = struct.Struct("<q")


def encode_drift_payload(window: WindowPartial, late_events: int) -> bytes:
    return bytes([PAYLOAD_VERSION]) + _LATE.pack(int(late_events)) + window.to_bytes()


def decode_drift_payload(payload: bytes, spec: PartialSpec) -> tuple[WindowPartial, int]:
    if not payload or payload[0] != PAYLOAD_VERSION:
        raise ValueError(f"drift partial payload version {payload[:1]!r} is not 1")
    (late,) = _LATE.unpack_from(payload, 1)
    return WindowPartial.from_bytes(payload[1 + _LATE.size :], spec), late


class DriftMerger:
    """:class:`~stream_jobs.merge.protocol.PartialMerger` of kind ``drift``; pure."""

    kind = KIND

    def __init__(self, config: DriftConfig) -> None:
        self.config = config

    def spec(self, reference: ReferenceView | None) -> PartialSpec:
        c = self.config
        if reference is None:
            return PartialSpec(kll_k=c.kll_k, category_cap=c.category_cap)
        return reference.partial_spec(c.kll_k, c.category_cap)

    def merge_closed(
        self, partials: list[PartialRecord], reference: ReferenceView | None
    ) -> ClosedWindow:
        spec = self.spec(reference)
        ordered = sorted((p for p in partials if not p.is_marker), key=lambda p: p.partition)
        if not ordered:
            raise ValueError("no partial with data to merge")
        first = ordered[0]
        merged = WindowPartial(
            first.model, first.model_version, first.window_start_ms, first.window_end_ms, spec
        )
        late = 0
        for p in ordered:
            window, n_late = decode_drift_payload(p.payload, spec)
            merged.merge(window)
            late += n_late
        return evaluate_window(merged, reference, self.config, late)

    def merge(self, partials: list[PartialRecord], reference: object | None) -> MergedWindow:
        ref = reference if isinstance(reference, ReferenceView) else None
        closed = self.merge_closed(partials, ref)
        return MergedWindow(closed.stats, closed.detections)
