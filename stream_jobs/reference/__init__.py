"""Reference profiles: build, pin, parse, read and write (pure; no Kafka)."""

from stream_jobs.reference.io import (
    decode_profile,
    encode_profile,
    profile_key,
    read_profile,
    write_profile,
)
from stream_jobs.reference.profile import build_profile, column_profile, profile_from_window
from stream_jobs.reference.view import ReferenceColumn, ReferenceView

__all__ = [
    "ReferenceColumn", "ReferenceView", "build_profile", "column_profile", "decode_profile",
    "encode_profile", "profile_from_window", "profile_key", "read_profile", "write_profile",
]  # fmt: skip
