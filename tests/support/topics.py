"""Read what the worker published, as a test would look at a topic."""

from __future__ import annotations

from schemas.codec import DecodeError, default_codec
from schemas.kafka import read_to_end


def read_topic(bootstrap: str, topic: str, model: str, name: str) -> list[dict]:
    """Records of schema ``name`` for ``model``, from the start to the topic's end now."""
    codec = default_codec()
    out = []
    for rec in read_to_end(bootstrap, topic, timeout_s=30.0):
        try:
            decoded = codec.decode(rec.value)
        except DecodeError:  # other tests write garbage on purpose
            continue
        if decoded.name == name and decoded.record["model"] == model:
            out.append(decoded.record)
    return out
