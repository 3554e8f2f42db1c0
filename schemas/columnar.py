"""In-memory columnar form of prediction and label batches, and its wire form.

The wire records (``PredictionBatch`` / ``LabelBatch``) carry numeric columns as packed
little-endian arrays so that a batch decodes into numpy with ``np.frombuffer`` and no
per-value Python work. Single events (``PredictionEvent`` / ``LabelEvent``) convert into
one-row columns, so the worker has one code path.

>>> cols = PredictionColumns.from_events([
...     {"prediction_id": "a", "model": "m", "model_version": "1", "event_time_ms": 5,
...      "numeric_features": {"x": 1.5}, "categorical_features": {"c": "red"},
...      "score": 0.9, "latency_ms": 12.0, "status": "ok"},
...     {"prediction_id": "b", "model": "m", "model_version": "1", "event_time_ms": 6,
...      "numeric_features": {"x": None}, "categorical_features": {"c": None},
...      "score": 0.1, "latency_ms": 30.0, "status": "error", "error_type": "Timeout"},
... ])
>>> back = PredictionColumns.from_record(cols.to_record())
>>> back.n, back.numeric["x"].tolist()[0], back.categorical["c"].values()
(2, 1.5, ['red', None])
>>> back.status.tolist(), back.error_type.values()
([0, 1], [None, 'Timeout'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUS_CODES: dict[str, int] = {"ok": 0, "error": 1, "fallback": 2}
STATUS_NAMES: tuple[str, ...] = ("ok", "error", "fallback")

F8 = np.dtype("<f8")
I8 = np.dtype("<i8")
I4 = np.dtype("<i4")
I1 = np.dtype("i1")


class InvalidBatch(ValueError):
    """A batch whose columns disagree with its declared size or each other."""


def _array(raw: bytes, dtype: np.dtype, n: int, column: str, width: int = 1) -> np.ndarray:
    expected = n * width * dtype.itemsize
    if len(raw) != expected:
        raise InvalidBatch(
            f"column {column!r}: {len(raw)} bytes, expected {expected} "
            f"({n} x {width} x {dtype.str})"
        )
    # a writable copy: consumers (e.g. datasketches) reject read-only buffers; 8 KB a column
    return np.frombuffer(bytearray(raw), dtype=dtype)


@dataclass
class CategoricalArray:
    """Dictionary-encoded strings: ``codes[i]`` indexes ``dictionary``; -1 is missing."""

    dictionary: list[str]
    codes: np.ndarray

    @classmethod
    def from_values(cls, values: Sequence[str | None]) -> CategoricalArray:
        index: dict[str, int] = {}
        codes = np.empty(len(values), dtype=I4)
        for i, v in enumerate(values):
            codes[i] = -1 if v is None else index.setdefault(v, len(index))
        return cls(list(index), codes)

    def values(self) -> list[str | None]:
        return [None if c < 0 else self.dictionary[c] for c in self.codes.tolist()]

    def to_record(self) -> dict[str, Any]:
        return {"dictionary": self.dictionary, "codes": self.codes.astype(I4, copy=False).tobytes()}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], n: int, column: str) -> CategoricalArray:
        codes = _array(rec["codes"], I4, n, column)
        dictionary = list(rec["dictionary"])
        if n and (codes.max(initial=-1) >= len(dictionary) or codes.min(initial=0) < -1):
            raise InvalidBatch(
                f"column {column!r}: code outside its dictionary of {len(dictionary)}"
            )
        return cls(dictionary, codes)

    def take(self, index: np.ndarray) -> CategoricalArray:
        return CategoricalArray(self.dictionary, self.codes[index])


def _opt_cat(values: Sequence[str | None]) -> CategoricalArray | None:
    return None if all(v is None for v in values) else CategoricalArray.from_values(values)


@dataclass
class PredictionColumns:
    model: str
    model_version: str
    prediction_ids: list[str]
    event_time_ms: np.ndarray
    latency_ms: np.ndarray
    status: np.ndarray
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    categorical: dict[str, CategoricalArray] = field(default_factory=dict)
    score: np.ndarray | None = None
    predicted_class: CategoricalArray | None = None
    class_names: list[str] = field(default_factory=list)
    class_probabilities: np.ndarray | None = None  # shape (n, len(class_names))
    error_type: CategoricalArray | None = None
    request_bytes: np.ndarray | None = None
    response_bytes: np.ndarray | None = None
    segments: dict[str, CategoricalArray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.prediction_ids)

    # ---- wire form -------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        def f8(a: np.ndarray) -> bytes:
            return np.ascontiguousarray(a, dtype=F8).tobytes()

        return {
            "model": self.model,
            "model_version": self.model_version,
            "n": self.n,
            "prediction_ids": list(self.prediction_ids),
            "event_time_ms": np.ascontiguousarray(self.event_time_ms, dtype=I8).tobytes(),
            "numeric_features": {k: f8(v) for k, v in self.numeric.items()},
            "categorical_features": {k: v.to_record() for k, v in self.categorical.items()},
            "score": None if self.score is None else f8(self.score),
            "predicted_class": None
            if self.predicted_class is None
            else self.predicted_class.to_record(),
            "class_names": list(self.class_names),
            "class_probabilities": None
            if self.class_probabilities is None
            else f8(self.class_probabilities),
            "latency_ms": f8(self.latency_ms),
            "status": np.ascontiguousarray(self.status, dtype=I1).tobytes(),
            "error_type": None if self.error_type is None else self.error_type.to_record(),
            "request_bytes": None
            if self.request_bytes is None
            else np.ascontiguousarray(self.request_bytes, dtype=I4).tobytes(),
            "response_bytes": None
            if self.response_bytes is None
            else np.ascontiguousarray(self.response_bytes, dtype=I4).tobytes(),
            "segments": {k: v.to_record() for k, v in self.segments.items()},
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> PredictionColumns:
        """Validate and view a decoded ``PredictionBatch``; raises :class:`InvalidBatch`."""
        n = int(rec["n"])
        ids = rec["prediction_ids"]
        if n <= 0:
            raise InvalidBatch(f"batch declares n={n}")
        if len(ids) != n:
            raise InvalidBatch(f"prediction_ids has {len(ids)} entries, batch declares n={n}")
        if not rec["model"]:
            raise InvalidBatch("empty model name")
        status = _array(rec["status"], I1, n, "status")
        if status.min() < 0 or status.max() > 2:
            raise InvalidBatch("status codes outside 0..2")
        k = len(rec["class_names"])
        probs = rec["class_probabilities"]
        return cls(
            model=rec["model"],
            model_version=rec["model_version"],
            prediction_ids=ids,
            event_time_ms=_array(rec["event_time_ms"], I8, n, "event_time_ms"),
            latency_ms=_array(rec["latency_ms"], F8, n, "latency_ms"),
            status=status,
            numeric={k_: _array(v, F8, n, k_) for k_, v in rec["numeric_features"].items()},
            categorical={
                k_: CategoricalArray.from_record(v, n, k_)
                for k_, v in rec["categorical_features"].items()
            },
            score=None if rec["score"] is None else _array(rec["score"], F8, n, "score"),
            predicted_class=None
            if rec["predicted_class"] is None
            else CategoricalArray.from_record(rec["predicted_class"], n, "predicted_class"),
            class_names=list(rec["class_names"]),
            class_probabilities=None
            if probs is None
            else _array(probs, F8, n, "class_probabilities", k).reshape(n, k),
            error_type=None
            if rec["error_type"] is None
            else CategoricalArray.from_record(rec["error_type"], n, "error_type"),
            request_bytes=None
            if rec["request_bytes"] is None
            else _array(rec["request_bytes"], I4, n, "request_bytes"),
            response_bytes=None
            if rec["response_bytes"] is None
            else _array(rec["response_bytes"], I4, n, "response_bytes"),
            segments={
                k_: CategoricalArray.from_record(v, n, "segment " + k_)
                for k_, v in rec["segments"].items()
            },
        )

    def subset(self, index: np.ndarray) -> PredictionColumns:
        """The rows selected by a boolean mask or an integer index array."""
        rows = np.flatnonzero(index) if index.dtype == bool else index

        def opt(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        def opt_cat(c: CategoricalArray | None) -> CategoricalArray | None:
            return None if c is None else c.take(rows)

        return PredictionColumns(
            model=self.model,
            model_version=self.model_version,
            prediction_ids=[self.prediction_ids[i] for i in rows.tolist()],
            event_time_ms=self.event_time_ms[rows],
            latency_ms=self.latency_ms[rows],
            status=self.status[rows],
            numeric={k: v[rows] for k, v in self.numeric.items()},
            categorical={k: v.take(rows) for k, v in self.categorical.items()},
            score=opt(self.score),
            predicted_class=opt_cat(self.predicted_class),
            class_names=list(self.class_names),
            class_probabilities=opt(self.class_probabilities),
            error_type=opt_cat(self.error_type),
            request_bytes=opt(self.request_bytes),
            response_bytes=opt(self.response_bytes),
            segments={k: v.take(rows) for k, v in self.segments.items()},
        )

    # ---- single events ---------------------------------------------------------------
    @classmethod
    def from_events(cls, events: Sequence[Mapping[str, Any]]) -> PredictionColumns:
        """Columns from ``PredictionEvent`` dicts of one model version."""
        if not events:
            raise InvalidBatch("no events")
        first = events[0]
        model, version = first["model"], first["model_version"]
        if not model:
            raise InvalidBatch("empty model name")
        if any(e["model"] != model or e["model_version"] != version for e in events):
            raise InvalidBatch("events of several model versions in one column set")

        def keys(field_name: str) -> list[str]:
            seen: dict[str, None] = {}
            for e in events:
                seen.update(dict.fromkeys(e.get(field_name) or {}))
            return list(seen)

        def num(get: Iterable[float | None]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in get], dtype=F8)

        class_names = keys("class_probabilities")
        probs = None
        if class_names:
            probs = np.array(
                [
                    [(e.get("class_probabilities") or {}).get(c, np.nan) for c in class_names]
                    for e in events
                ],
                dtype=F8,
            )
        scores = [e.get("score") for e in events]
        return cls(
            model=model,
            model_version=version,
            prediction_ids=[e["prediction_id"] for e in events],
            event_time_ms=np.array([e["event_time_ms"] for e in events], dtype=I8),
            latency_ms=num(e["latency_ms"] for e in events),
            status=np.array([STATUS_CODES[e.get("status", "ok")] for e in events], dtype=I1),
            numeric={
                k: num(e.get("numeric_features", {}).get(k) for e in events)
                for k in keys("numeric_features")
            },
            categorical={
                k: CategoricalArray.from_values(
                    [e.get("categorical_features", {}).get(k) for e in events]
                )
                for k in keys("categorical_features")
            },
            score=None if all(s is None for s in scores) else num(scores),
            predicted_class=_opt_cat([e.get("predicted_class") for e in events]),
            class_names=class_names,
            class_probabilities=probs,
            error_type=_opt_cat([e.get("error_type") for e in events]),
            request_bytes=np.array([e.get("request_bytes", 0) for e in events], dtype=I4),
            response_bytes=np.array([e.get("response_bytes", 0) for e in events], dtype=I4),
            segments={
                k: CategoricalArray.from_values([e.get("segments", {}).get(k) for e in events])
                for k in keys("segments")
            },
        )


@dataclass
class LabelColumns:
    model: str
    prediction_ids: list[str]
    event_time_ms: np.ndarray
    label_value: np.ndarray | None = None
    label_class: CategoricalArray | None = None

    @property
    def n(self) -> int:
        return len(self.prediction_ids)

    def to_record(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n": self.n,
            "prediction_ids": list(self.prediction_ids),
            "event_time_ms": np.ascontiguousarray(self.event_time_ms, dtype=I8).tobytes(),
            "label_value": None
            if self.label_value is None
            else np.ascontiguousarray(self.label_value, dtype=F8).tobytes(),
            "label_class": None if self.label_class is None else self.label_class.to_record(),
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> LabelColumns:
        n = int(rec["n"])
        if n <= 0 or len(rec["prediction_ids"]) != n:
            raise InvalidBatch(f"label batch: n={n} but {len(rec['prediction_ids'])} ids")
        if rec["label_value"] is None and rec["label_class"] is None:
            raise InvalidBatch("label batch carries neither label_value nor label_class")
        return cls(
            model=rec["model"],
            prediction_ids=rec["prediction_ids"],
            event_time_ms=_array(rec["event_time_ms"], I8, n, "event_time_ms"),
            label_value=None
            if rec["label_value"] is None
            else _array(rec["label_value"], F8, n, "label_value"),
            label_class=None
            if rec["label_class"] is None
            else CategoricalArray.from_record(rec["label_class"], n, "label_class"),
        )

    @classmethod
    def from_events(cls, events: Sequence[Mapping[str, Any]]) -> LabelColumns:
        if not events:
            raise InvalidBatch("no label events")
        values = [e.get("label_value") for e in events]
        classes = [e.get("label_class") for e in events]
        if all(v is None for v in values) and all(c is None for c in classes):
            raise InvalidBatch("label event carries neither label_value nor label_class")
        return cls(
            model=events[0]["model"],
            prediction_ids=[e["prediction_id"] for e in events],
            event_time_ms=np.array([e["event_time_ms"] for e in events], dtype=I8),
            label_value=None
            if all(v is None for v in values)
            else np.array([np.nan if v is None else v for v in values], dtype=F8),
            label_class=_opt_cat(classes),
        )
