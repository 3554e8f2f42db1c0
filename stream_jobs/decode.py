"""Decode and validate records from the predictions and labels topics.

A payload either becomes columns, or raises :class:`RejectedRecord` with a reason naming
the problem; rows of a valid batch that break a rule (negative latency, missing event
time, event time far ahead of the clock, …) are split off so the rest of the batch is still
processed. Validation happens before anything changes state: a row that passes can be
stored (event times fit the join's 8-byte keys, numbers are what they claim to be).

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
from schemas.columnar import CategoricalArray, InvalidBatch, LabelColumns, PredictionColumns
from stream_jobs.input_rules import InputRules

PREDICTION_SCHEMAS = ("PredictionEvent", "PredictionBatch")
LABEL_SCHEMAS = ("LabelEvent", "LabelBatch")
DEFAULT_RULES = InputRules()


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


@dataclass
class ValidatedLabels:
    good: LabelColumns | None
    bad: LabelColumns | None
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


def _event_time_rules(t: np.ndarray, now_ms: int, rules: InputRules) -> dict[str, np.ndarray]:
    return {
        "event_time_ms before min_event_time_ms": t < rules.min_event_time_ms,
        f"event_time_ms more than {rules.max_ahead_s:g} s ahead of the worker clock": t
        > now_ms + rules.max_ahead_ms,
    }


def _split(rules: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, str]:
    """Rows breaking any rule, and a reason naming each rule broken with its first rows."""
    bad = np.zeros(n, dtype=bool)
    reasons = []
    for reason, mask in rules.items():
        if mask.any():
            rows = np.flatnonzero(mask)
            reasons.append(f"{reason} (rows {rows[:10].tolist()}{'…' if rows.size > 10 else ''})")
            bad |= mask
    return bad, "; ".join(reasons)


def _unknown_sizes(a: np.ndarray | None) -> np.ndarray | None:
    """Negative request/response sizes mean "unknown" (a common -1): counted as no bytes."""
    if a is None or not (a < 0).any():
        return a
    return np.where(a < 0, 0, a).astype(a.dtype)


def validate_rows(
    cols: PredictionColumns, now_ms: int, rules: InputRules = DEFAULT_RULES
) -> ValidatedBatch:
    """Split rows that break a rule from those that don't, naming the rules broken.

    >>> from schemas.columnar import PredictionColumns
    >>> now = 1_800_000_000_000
    >>> cols = PredictionColumns("m", "1", ["a", "b"], np.array([now, now + 3_600_000]),
    ...                          np.array([5.0, 5.0]), np.zeros(2, np.int8),
    ...                          request_bytes=np.array([-1, 10], np.int32))
    >>> checked = validate_rows(cols, now)
    >>> checked.good.n, checked.good.request_bytes.tolist(), checked.bad_reason
    (1, [0], 'event_time_ms more than 900 s ahead of the worker clock (rows [1])')
    """
    cols.request_bytes = _unknown_sizes(cols.request_bytes)
    cols.response_bytes = _unknown_sizes(cols.response_bytes)
    bad, reason = _split(
        {
            "latency_ms negative or not finite": ~(
                np.isfinite(cols.latency_ms) & (cols.latency_ms >= 0)
            ),
            **_event_time_rules(cols.event_time_ms, now_ms, rules),
        },
        cols.n,
    )
    if not bad.any():
        return ValidatedBatch(cols, None)
    if bad.all():
        return ValidatedBatch(None, cols, reason)
    return ValidatedBatch(cols.subset(~bad), cols.subset(bad), reason)


def _label_rows(labels: LabelColumns, rows: np.ndarray) -> LabelColumns:
    return LabelColumns(
        model=labels.model,
        prediction_ids=[labels.prediction_ids[i] for i in rows.tolist()],
        event_time_ms=labels.event_time_ms[rows],
        label_value=None if labels.label_value is None else labels.label_value[rows],
        label_class=None
        if labels.label_class is None
        else CategoricalArray(labels.label_class.dictionary, labels.label_class.codes[rows]),
    )


def validate_labels(
    labels: LabelColumns, now_ms: int, rules: InputRules = DEFAULT_RULES
) -> ValidatedLabels:
    """Labels follow the predictions' rules: a model, bounded event time, and a value.

    >>> now = 1_800_000_000_000
    >>> labels = LabelColumns("m", ["a", "b", "c"], np.array([now, 2**63 - 1, now]),
    ...                       label_value=np.array([1.0, 1.0, np.nan]))
    >>> checked = validate_labels(labels, now)
    >>> checked.good.prediction_ids, checked.bad.prediction_ids
    (['a'], ['b', 'c'])
    >>> print(checked.bad_reason.replace("; ", "\\n"))
    event_time_ms more than 900 s ahead of the worker clock (rows [1])
    label carries no value (neither a finite label_value nor a label_class) (rows [2])
    """
    if not labels.model:
        return ValidatedLabels(None, labels, "empty model name")
    has_value = np.zeros(labels.n, dtype=bool)
    if labels.label_value is not None:
        has_value |= np.isfinite(labels.label_value)
    if labels.label_class is not None:
        has_value |= labels.label_class.codes >= 0
    bad, reason = _split(
        {
            **_event_time_rules(labels.event_time_ms, now_ms, rules),
            "label carries no value (neither a finite label_value nor a label_class)": ~has_value,
            "empty prediction_id": np.array([not p for p in labels.prediction_ids], dtype=bool),
        },
        labels.n,
    )
    if not bad.any():
        return ValidatedLabels(labels, None)
    if bad.all():
        return ValidatedLabels(None, labels, reason)
    return ValidatedLabels(
        _label_rows(labels, np.flatnonzero(~bad)), _label_rows(labels, np.flatnonzero(bad)), reason
    )
