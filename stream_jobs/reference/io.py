"""Reference profiles on disk: Avro (Confluent wire format, via ``schemas.codec``) or JSON.

JSON keeps the record's shape with the sketch bytes base64-encoded, so profiles can be
read and diffed by people; ``.avro`` files hold exactly what goes on the references topic.

>>> import numpy as np, tempfile, pathlib
>>> from stream_jobs.reference.profile import build_profile
>>> prof = build_profile("m", "1", numeric={"x": np.arange(10.0)}, created_at_ms=1)
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> all(read_profile(write_profile(d / f"p.{ext}", prof)) == prof for ext in ("avro", "json"))
True
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from schemas.codec import default_codec

SCHEMA = "ReferenceProfile"
_B64 = "__b64__"


def encode_profile(record: dict[str, Any]) -> bytes:
    """Wire bytes (Confluent framing + Avro body) of a ReferenceProfile record."""
    return default_codec().encode(SCHEMA, record)


def decode_profile(payload: bytes) -> dict[str, Any]:
    return default_codec().decode(payload, expect=(SCHEMA,)).record


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {_B64: base64.b64encode(obj).decode()}
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_jsonable(v) for v in obj]
    return obj


def from_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_B64}:
            return base64.b64decode(obj[_B64])
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    return obj


def profile_key(record: dict[str, Any]) -> str:
    """The references topic key: ``model/version``."""
    return f"{record['model']}/{record.get('model_version', '')}"


def write_profile(path: str | Path, record: dict[str, Any]) -> Path:
    """``.avro`` → wire bytes; anything else → JSON."""
    path = Path(path)
    if path.suffix == ".avro":
        path.write_bytes(encode_profile(record))
    else:
        path.write_text(json.dumps(to_jsonable(record), indent=1, sort_keys=True))
    return path


def read_profile(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.suffix == ".avro":
        return decode_profile(path.read_bytes())
    return from_jsonable(json.loads(path.read_text()))
