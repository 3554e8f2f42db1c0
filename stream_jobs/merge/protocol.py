"""The contract between stage 1 (per input partition) and stage 2 (per model).

Stage 1 publishes one :class:`PartialRecord` per (model, version, window, kind, input
partition) to the window-partials topic, keyed by model, so every partial of a model meets
in one partition of that topic and one merge stage sees them all. Stage 2 groups partials by
:attr:`PartialRecord.window_key`, asks the :class:`PartialMerger` registered for the
record's ``kind`` to merge the payloads, and emits exactly one final result per window: once
every input partition's partial of the window has arrived, or once the model's watermark plus
the allowed lateness has passed it.

``kind`` says who made the payload and who merges it:

=============== ============================================ ===============================
kind            payload (stage 1)                            merged into (stage 2)
=============== ============================================ ===============================
``drift``       a drift window partial (sketches, counts)    WindowStats features + drift
``performance`` a performance accumulator of joined labels   WindowStats performance part
``vote``        one online-detector firing of the partition  the per-model quorum
``concept``     error counts of the buckets the partition    the pooled concept test
                settled (:mod:`stream_jobs.concept.pool`)    (:mod:`stream_jobs.concept.pool`)
=============== ============================================ ===============================

A record with an empty payload is a *progress marker*: its input partition has closed
every window of ``kind`` ending at or before ``progress_ms`` without data for them. The
last partial of a closing step carries ``progress_ms`` as well (the step's others ``-1``:
:mod:`stream_jobs.merge.progress`), and a window is complete once every input partition has
progressed past its end (rules: :mod:`stream_jobs.merge.book`). A stage 1 of
another kind sends markers the same way, or its windows wait for the timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from schemas.detection import Detection


@dataclass(frozen=True)
class PartialRecord:
    """One input partition's share of one window, as it travels on the partials topic."""

    model: str
    model_version: str
    kind: str
    window_start_ms: int
    window_end_ms: int
    partition: int  # the input partition this partial summarises
    partitions: int  # how many input partitions the model's topic has
    input_offset: int  # the last input offset reflected in the payload
    payload: bytes  # kind-specific, versioned by its own first byte; empty: a progress marker
    # every window of this kind ending at or before progress_ms is closed in ``partition``
    # and its partial sent before this record (-1: unknown). Windows close in order per
    # partition, so this is all the merge stage needs to know that a partition without
    # data for a window has nothing more to send.
    progress_ms: int = -1

    @property
    def is_marker(self) -> bool:
        return not self.payload

    def to_record(self) -> dict[str, Any]:
        """The ``WindowPartial`` Avro record."""
        return {
            "model": self.model, "model_version": self.model_version, "kind": self.kind,
            "window_start_ms": self.window_start_ms, "window_end_ms": self.window_end_ms,
            "partition": self.partition, "partitions": self.partitions,
            "input_offset": self.input_offset, "progress_ms": self.progress_ms,
            "payload": self.payload,
        }  # fmt: skip

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> PartialRecord:
        return cls(
            r["model"], r["model_version"], r["kind"], int(r["window_start_ms"]),
            int(r["window_end_ms"]), int(r["partition"]), int(r["partitions"]),
            int(r["input_offset"]), bytes(r["payload"]), int(r.get("progress_ms", -1)),
        )  # fmt: skip

    @property
    def window_key(self) -> tuple[str, str, str, int]:
        return (self.model, self.model_version, self.kind, self.window_start_ms)


@dataclass(frozen=True)
class MergedWindow:
    """What a merger makes of all partials of one window."""

    stats: dict[str, Any]  # a WindowStats record (or the part this kind fills)
    detections: list[Detection]


class PartialMerger(Protocol):
    """Merges the payloads of one kind; pure, no Kafka."""

    kind: str

    def merge(self, partials: list[PartialRecord], reference: Any | None) -> MergedWindow:
        """All partials of one window (one per input partition that had data) into its final
        stats and detections, judged against ``reference`` (a ReferenceView or None)."""
        ...
