"""Avro codec in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, body.

Schema ids are stable and kept in ``schemas/registry.json``; decoding dispatches on the id
in the header, so one topic can carry several record types (a single ``PredictionEvent``
or a columnar ``PredictionBatch``) and several versions of one type.

>>> from schemas.codec import default_codec
>>> codec = default_codec()
>>> payload = codec.encode("LabelEvent", {"prediction_id": "p1", "model": "m",
...                                       "event_time_ms": 1, "label_class": "yes"})
>>> payload[:5].hex()
'0000000003'
>>> decoded = codec.decode(payload)
>>> decoded.name, decoded.record["label_class"]
('LabelEvent', 'yes')
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

MAGIC_BYTE = 0
HEADER = struct.Struct(">bI")
SCHEMA_DIR = Path(__file__).parent / "avro"
REGISTRY_FILE = Path(__file__).parent / "registry.json"


class DecodeError(ValueError):
    """A payload that is not a valid modelwatch record; the message names the problem."""


@dataclass(frozen=True)
class Decoded:
    schema_id: int
    name: str
    record: dict[str, Any]


class Codec:
    """Encodes and decodes records by schema name / schema id."""

    def __init__(self, schema_files: dict[int, Path]) -> None:
        self._by_id: dict[int, Any] = {}
        self._name_of: dict[int, str] = {}
        self._latest_id: dict[str, int] = {}
        named: dict[str, Any] = {}
        for schema_id in sorted(schema_files):
            raw = json.loads(schema_files[schema_id].read_text())
            parsed = fastavro.parse_schema(raw, named_schemas=dict(named))
            name = raw["name"]
            self._by_id[schema_id] = parsed
            self._name_of[schema_id] = name
            self._latest_id[name] = schema_id  # ids grow with versions: the last wins

    @property
    def names(self) -> list[str]:
        return sorted(self._latest_id)

    def schema_id(self, name: str) -> int:
        try:
            return self._latest_id[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r}; known: {self.names}") from None

    def schema(self, schema_id: int) -> Any:
        return self._by_id[schema_id]

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        schema_id = self.schema_id(name)
        out = io.BytesIO()
        out.write(HEADER.pack(MAGIC_BYTE, schema_id))
        fastavro.schemaless_writer(out, self._by_id[schema_id], record)
        return out.getvalue()

    def decode(self, payload: bytes | None, expect: tuple[str, ...] = ()) -> Decoded:
        """Decode one payload; raise :class:`DecodeError` naming what is wrong with it."""
        if payload is None:
            raise DecodeError("empty payload (null value)")
        if len(payload) < HEADER.size:
            raise DecodeError(
                f"truncated header: {len(payload)} bytes, need at least {HEADER.size}"
            )
        magic, schema_id = HEADER.unpack_from(payload)
        if magic != MAGIC_BYTE:
            raise DecodeError(
                f"bad magic byte {magic} (expected {MAGIC_BYTE}): not Confluent wire format"
            )
        schema = self._by_id.get(schema_id)
        if schema is None:
            raise DecodeError(f"unknown schema id {schema_id}; known ids: {sorted(self._by_id)}")
        name = self._name_of[schema_id]
        if expect and name not in expect:
            raise DecodeError(f"schema id {schema_id} is {name}, expected one of {list(expect)}")
        body = io.BytesIO(payload)
        body.seek(HEADER.size)
        reader = self._by_id[self._latest_id[name]]
        try:
            record = fastavro.schemaless_reader(body, schema, reader)
        except (EOFError, StopIteration) as exc:
            raise DecodeError(f"truncated {name} body (schema id {schema_id}): {exc!r}") from None
        except Exception as exc:  # fastavro raises many types on garbage
            raise DecodeError(f"corrupt {name} body (schema id {schema_id}): {exc!r}") from None
        if body.tell() != len(payload):
            raise DecodeError(
                f"{len(payload) - body.tell()} trailing bytes after {name} body "
                f"(schema id {schema_id})"
            )
        return Decoded(schema_id, name, record)


def load_registry(
    registry_file: Path = REGISTRY_FILE, schema_dir: Path = SCHEMA_DIR
) -> dict[int, Path]:
    entries = json.loads(registry_file.read_text())["schemas"]
    return {int(k): schema_dir / v for k, v in entries.items()}


@lru_cache(maxsize=1)
def default_codec() -> Codec:
    return Codec(load_registry())
