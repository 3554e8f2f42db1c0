"""Decode and validate records from the predictions and labels topics.

A payload either becomes columns, or raises :class:`RejectedRecord` with a reason naming
the problem; rows of a valid batch that break a rule (negative latency, missing event
time, …) are split off so the rest of the batch is still processed.

>>> from schemas.codec import default_codec
>>> codec = default_codec()
>>> try:
...     decode_predictions(codec, b"garbage")
... except RejectedRecord as exc:
...     print(exc.kind, "|", exc.reason)
decode | bad magic byte 103 (expected 0): not Confluent wire format
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.codec import Codec, DecodeError
from schemas.columnar import InvalidBatch, LabelColumns, PredictionColumns

PREDICTION_SCHEMAS = ("PredictionEvent", "PredictionBatch")
LABEL_SCHEMAS = ("LabelEvent", "LabelBatch")
# event times before 2000-01-01 or more than a day ahead of the worker clock are invalid
MIN_EVENT_TIME_MS = 946_684_800_000
MAX_FUTURE_MS = 86_400_000


class RejectedRecord(ValueError):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass
class ValidatedBatch:
    good: PredictionColumns | None
    bad: PredictionColumns | None
    bad_reason: str = ""


def _decode_columns(
    codec: Codec,
    payload: bytes | None,
    schemas: tuple[str, str],
    columns: type[PredictionColumns] | type[LabelColumns],
) -> PredictionColumns | LabelColumns:
    """``schemas`` = (single event, columnar batch); either becomes ``columns``."""
    try:
        decoded = codec.decode(payload, expect=schemas)
        if decoded.name == schemas[1]:
            return columns.from_record(decoded.record)
        return columns.from_events([decoded.record])
    except DecodeError as exc:
        raise RejectedRecord("decode", str(exc)) from None
    except (InvalidBatch, KeyError, TypeError, ValueError) as exc:
        raise RejectedRecord("invalid", str(exc)) from None


def decode_predictions(codec: Codec, payload: bytes | None) -> PredictionColumns:
    return _decode_columns(codec, payload, PREDICTION_SCHEMAS, PredictionColumns)  # type: ignore[return-value]


def decode_labels(codec: Codec, payload: bytes | None) -> LabelColumns:
    return _decode_columns(codec, payload, LABEL_SCHEMAS, LabelColumns)  # type: ignore[return-value]


def validate_rows(cols: PredictionColumns, now_ms: int) -> ValidatedBatch:
    """Split rows that break a rule from those that don't, naming the rules broken."""
    rules = {
        "latency_ms negative or not finite": ~(
            np.isfinite(cols.latency_ms) & (cols.latency_ms >= 0)
        ),
        "event_time_ms before 2000-01-01": cols.event_time_ms < MIN_EVENT_TIME_MS,
        "event_time_ms more than a day in the future": cols.event_time_ms > now_ms + MAX_FUTURE_MS,
    }
    bad = np.zeros(cols.n, dtype=bool)
    reasons = []
    for reason, mask in rules.items():
        if mask.any():
            rows = np.flatnonzero(mask)
            reasons.append(f"{reason} (rows {rows[:10].tolist()}{'…' if rows.size > 10 else ''})")
            bad |= mask
    if not bad.any():
        return ValidatedBatch(cols, None)
    if bad.all():
        return ValidatedBatch(None, cols, "; ".join(reasons))
    return ValidatedBatch(cols.subset(~bad), cols.subset(bad), "; ".join(reasons))
