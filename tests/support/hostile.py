"""Seeded hostile payloads for every topic a modelwatch process reads.

One generator per topic: garbage bytes, truncations, bit flips, wrong schema ids, and valid
records whose field values are hostile (negative / NaN / inf / huge numbers, 2^63-1 times,
empty / huge / non-UTF-8 / markup / CR-LF strings, missing values). The fuzz tests feed
them to the handlers without a broker; the hostile-input integration test publishes them.

>>> gen = Hostile(seed=1, now_ms=1_800_000_000_000)
>>> len([gen.payload("predictions") for _ in range(50)])
50
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from schemas.codec import HEADER, MAGIC_BYTE, default_codec
from schemas.columnar import PredictionColumns

POOL = 64  # valid seed records per schema
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
NON_UTF8_MARK = "\u2603\u2603"  # 6 bytes in UTF-8, replaced by invalid UTF-8 after encoding
NON_UTF8_BYTES = b"\xff\xfe\xc3\x28\xa0\xa1"

HOSTILE_DOUBLES = [float("nan"), float("inf"), float("-inf"), -1.0, -0.0, 1e308, -1e308,
                   5e-324, 2.0**63, 1e19]
HOSTILE_LONGS = [I64_MAX, I64_MIN, -1, 0, 2**53 + 1, 253_402_300_800_000, 1]
HOSTILE_INTS = [-1, 2**31 - 1, -(2**31), 0]
HOSTILE_STRINGS = [
    "",
    "x" * 20_000,
    "model\r\nBcc: victim@example.com",
    "a\nb\rc",
    "*bold* _it_ <!channel> <@U123> <https://evil.example|click>",
    "[bold red]rich[/bold red] [link=https://evil.example]x[/link]",
    "<script>alert(1)</script>&amp;",
    "%s %d {0} {x}",
    "\x00\x01\x1b[31m",
    "é" * 300,
    "../../etc/passwd",
    NON_UTF8_MARK,
]

# the topics a process reads, and the record types that belong on each
TOPIC_SCHEMAS = {
    "predictions": ("PredictionEvent", "PredictionBatch"),
    "labels": ("LabelEvent", "LabelBatch"),
    "references": ("ReferenceProfile",),
    "silences": ("Silence",),
    "detections": ("Detection",),
    "alerts": ("AlertEvent",),
}


class Hostile:
    """``payload(topic)`` → one hostile (or, sometimes, valid) record value, seeded."""

    def __init__(self, seed: int, now_ms: int) -> None:
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.now_ms = now_ms
        self.codec = default_codec()
        self.ids = sorted(self.codec._name_of)  # noqa: SLF001 - every registered id
        self._pool: dict[str, list[dict[str, Any]]] = {}
        self._seeds: dict[str, Callable[[], dict[str, Any]]] = {
            "PredictionEvent": self._prediction_event,
            "PredictionBatch": self._prediction_batch,
            "LabelEvent": self._label_event,
            "LabelBatch": self._label_batch,
            "ReferenceProfile": self._reference,
            "Silence": self._silence,
            "Detection": self._detection,
            "AlertEvent": self._alert,
        }

    # ---- valid seeds ---------------------------------------------------------------
    def _id(self) -> str:
        return f"p{self.rng.randrange(10_000)}"

    def _prediction_event(self) -> dict[str, Any]:
        r = self.rng
        return {
            "prediction_id": self._id(),
            "model": r.choice(["m", "churn"]),
            "model_version": "1",
            "event_time_ms": self.now_ms - r.randrange(60_000),
            "numeric_features": {"x": r.gauss(0, 1), "y": r.random()},
            "categorical_features": {"c": r.choice(["a", "b", None])},
            "score": r.random(),
            "predicted_class": r.choice(["0", "1", None]),
            "class_probabilities": {"0": 0.4, "1": 0.6},
            "latency_ms": r.random() * 100,
            "status": r.choice(["ok", "error", "fallback"]),
            "error_type": r.choice([None, "Timeout"]),
            "request_bytes": r.randrange(1000),
            "response_bytes": r.randrange(1000),
            "segments": {"region": r.choice(["eu", "us"])},
        }

    def _prediction_batch(self) -> dict[str, Any]:
        events = [self._prediction_event() for _ in range(self.rng.randrange(1, 8))]
        for e in events:
            e["model"], e["model_version"] = events[0]["model"], "1"
        return PredictionColumns.from_events(events).to_record()

    def _label_event(self) -> dict[str, Any]:
        r = self.rng
        return {
            "prediction_id": self._id(),
            "model": r.choice(["m", "churn"]),
            "event_time_ms": self.now_ms - r.randrange(60_000),
            "label_value": r.choice([None, r.random()]),
            "label_class": r.choice(["0", "1"]),
        }

    def _label_batch(self) -> dict[str, Any]:
        n = self.rng.randrange(1, 8)
        t = np.array([self.now_ms - self.rng.randrange(60_000) for _ in range(n)], "<i8")
        return {
            "model": "m",
            "n": n,
            "prediction_ids": [self._id() for _ in range(n)],
            "event_time_ms": t.tobytes(),
            "label_value": None,
            "label_class": {
                "dictionary": ["0", "1"],
                "codes": np.array([self.rng.randrange(2) for _ in range(n)], "<i4").tobytes(),
            },
        }

    def _reference(self) -> dict[str, Any]:
        from stream_jobs.reference.profile import build_profile

        x = self.np_rng.normal(size=200)
        return build_profile(
            "m", self.rng.choice(["", "1"]), numeric={"x": x},
            categorical={"c": ["a", "b", None, "a"]}, prediction=self.np_rng.random(200),
            label=["0", "1", "1", "0"], source="fuzz",
        ) if self.rng.random() < 0.5 else build_profile(
            "m", "", numeric={"x": x}, categorical={"c": ["a", "b"]}, source="fuzz")

    def _silence(self) -> dict[str, Any]:
        return {
            "id": f"s{self.rng.randrange(100)}",
            "model": "m",
            "kind": self.rng.choice([None, "feature_drift"]),
            "created_at_ms": self.now_ms - 1000,
            "expires_at_ms": self.now_ms + 60_000,
            "reason": "fuzz",
            "created_by": "fuzz",
        }

    def _detection(self) -> dict[str, Any]:
        r = self.rng
        return {
            "model": r.choice(["m", "churn"]),
            "model_version": "1",
            "kind": r.choice(["feature_drift", "no_traffic", "error_rate", "latency_slo",
                              "concept_drift", "unknown_kind"]),
            "subject": r.choice(["x", "prediction", "latency_p99"]),
            "detector": "psi",
            "value": r.random(),
            "threshold": 0.2,
            "active": r.random() < 0.7,
            "event_time_ms": self.now_ms - r.randrange(600_000),
            "window_start_ms": self.now_ms - 60_000,
            "window_end_ms": self.now_ms,
            "partition": 0,
            "offset": r.randrange(1000),
            "details": {"explained_by": "region=eu"},
        }

    def _alert(self) -> dict[str, Any]:
        r = self.rng
        return {
            "alert_id": f"a{r.randrange(1000)}",
            "fingerprint": f"fp{r.randrange(50)}",
            "model": "m",
            "model_version": "1",
            "severity": r.choice(["critical", "major", "minor"]),
            "status": r.choice(["firing", "resolved"]),
            "kind": "feature_drift",
            "subject": "x",
            "detector": "psi",
            "value": r.random(),
            "threshold": 0.2,
            "window_start_ms": self.now_ms - 60_000,
            "window_end_ms": self.now_ms,
            "detected_at_ms": self.now_ms,
            "fired_at_ms": self.now_ms,
            "resolved_at_ms": None,
            "summary": "feature x drifted",
            "runbook_url": None,
            "labels": {"team": "ml"},
        }

    # ---- hostile values in a valid record --------------------------------------------
    def _hostile_value(self, v: Any, name: str) -> Any:
        r = self.rng
        if isinstance(v, bool):
            return not v
        if isinstance(v, int):
            if "bytes" in name and not name.endswith("ms"):
                return r.choice(HOSTILE_INTS)
            return r.choice(HOSTILE_LONGS)
        if isinstance(v, float):
            return r.choice(HOSTILE_DOUBLES)
        if isinstance(v, str):
            return r.choice(HOSTILE_STRINGS)
        if isinstance(v, bytes):
            return self._hostile_column(v, name)
        if v is None:
            return None
        return v

    def _hostile_column(self, raw: bytes, name: str) -> bytes:
        """A packed numeric column filled with hostile numbers (or the wrong length)."""
        r = self.rng
        if r.random() < 0.2:
            return raw[: r.randrange(len(raw) + 1)] + bytes(r.randrange(3))
        if name in ("event_time_ms",):
            vals = [r.choice(HOSTILE_LONGS + [self.now_ms]) for _ in range(len(raw) // 8)]
            return struct.pack(f"<{len(vals)}q", *vals)
        if name in ("codes",):
            vals = [r.choice([-2, -1, 0, 1, 2**31 - 1]) for _ in range(len(raw) // 4)]
            return struct.pack(f"<{len(vals)}i", *vals)
        if name in ("request_bytes", "response_bytes"):
            vals = [r.choice(HOSTILE_INTS) for _ in range(len(raw) // 4)]
            return struct.pack(f"<{len(vals)}i", *vals)
        if name == "status":
            return bytes(r.choice([0, 1, 2, 3, 255]) for _ in raw)
        if name in ("kll_sketch",):
            b = bytearray(raw)
            for _ in range(r.randrange(1, 6)):
                if b:
                    b[r.randrange(len(b))] = r.randrange(256)
            return bytes(b) if r.random() < 0.7 else bytes(b[: r.randrange(len(b) + 1)])
        vals = [r.choice(HOSTILE_DOUBLES) for _ in range(len(raw) // 8)]
        return struct.pack(f"<{len(vals)}d", *vals)

    def _mutate(self, rec: Any, depth: int = 0, name: str = "") -> Any:
        """Replace a few leaves of ``rec`` with hostile values of the same Avro type."""
        r = self.rng
        if isinstance(rec, dict):
            out = {}
            for k, v in rec.items():
                if isinstance(v, dict | list) and v:
                    out[k] = self._mutate(v, depth + 1, k)
                elif r.random() < 0.3:
                    out[k] = self._hostile_value(v, k)
                else:
                    out[k] = v
            if depth > 0 and r.random() < 0.1:  # a hostile map key (feature name, label, …)
                key = r.choice(HOSTILE_STRINGS)
                if out and all(isinstance(v, float | type(None)) for v in out.values()):
                    out[key] = r.choice(HOSTILE_DOUBLES + [None])
                elif out and all(isinstance(v, str | type(None)) for v in out.values()):
                    out[key] = r.choice(HOSTILE_STRINGS + [None])
            return out
        if isinstance(rec, list):
            items = [self._mutate(v, depth + 1, name) if isinstance(v, dict | list)
                     else (self._hostile_value(v, name) if r.random() < 0.3 else v)
                     for v in rec]
            if r.random() < 0.1:
                items = []
            return items
        return rec

    def record(self, name: str) -> dict[str, Any]:
        """A valid record from a seeded pool (shared: :meth:`_mutate` copies, never edits)."""
        pool = self._pool.get(name)
        if pool is None:
            pool = self._pool[name] = [self._seeds[name]() for _ in range(POOL)]
        return self.rng.choice(pool)

    def encode(self, name: str, rec: dict[str, Any]) -> bytes:
        payload = self.codec.encode(name, rec)
        mark = NON_UTF8_MARK.encode()
        return payload.replace(mark, NON_UTF8_BYTES)

    # ---- the payloads ----------------------------------------------------------------
    def payload(self, topic: str) -> bytes | None:
        r = self.rng
        names = TOPIC_SCHEMAS[topic]
        name = r.choice(names)
        kind = r.random()
        if kind < 0.05:
            return None
        if kind < 0.12:
            return bytes(r.randrange(256) for _ in range(r.randrange(0, 64)))
        if kind < 0.18:  # a valid header with garbage behind it
            sid = self.codec.schema_id(name)
            body = bytes(r.randrange(256) for _ in range(r.randrange(0, 64)))
            return HEADER.pack(MAGIC_BYTE, sid) + body
        if kind < 0.24:  # a record of another topic (wrong schema id)
            other = r.choice([n for n in self._seeds if n not in names])
            return self.encode(other, self.record(other))
        if kind < 0.27:  # an unknown schema id
            return HEADER.pack(MAGIC_BYTE, r.choice([0, 99, 2**31 - 1])) + b"\x00" * 8
        valid = self.encode(name, self.record(name))
        if kind < 0.35:  # truncated
            return valid[: r.randrange(len(valid))]
        if kind < 0.42:  # bit flips in the body
            b = bytearray(valid)
            for _ in range(r.randrange(1, 4)):
                i = r.randrange(HEADER.size, len(b))
                b[i] ^= 1 << r.randrange(8)
            return bytes(b)
        if kind < 0.47:
            return valid
        try:
            return self.encode(name, self._mutate(self.record(name)))
        except (ValueError, TypeError, OverflowError, struct.error):
            return valid  # the hostile value did not fit its Avro type: the writer refused it
