"""One versioned codec for the label side's state: a version byte, then the record's body.

Every value the label join stores (pending predictions, early labels, expiry index,
performance accumulators, catalogs, totals, concept monitors and votes, ranking baselines,
outbox) and every performance partial it publishes is sealed with :func:`seal` and read
with :func:`unseal`, which refuses a version it does not know. Bodies are this project's
own compact binary layouts (``struct``, numpy ``tobytes``, length-prefixed blobs), never
pickles. A reader that meets an unknown version raises :class:`StateVersionError`; the
label engine then starts clean, loudly, rather than misreading state of another build.

>>> sealed = seal(b"body")
>>> sealed[0] == VERSION, unseal(sealed, "window")
(True, b'body')
>>> try:
...     unseal(b"\\x7fbody", "window")
... except StateVersionError as exc:
...     print(exc)
window: state record of version 127, this build reads version 1
"""

from __future__ import annotations

from collections.abc import Mapping

VERSION = 1
_V = bytes([VERSION])


class StateVersionError(ValueError):
    """A state record of a layout version this build cannot read."""


def seal(body: bytes) -> bytes:
    return _V + body


def seal_all(puts: Mapping[bytes, bytes]) -> dict[bytes, bytes]:
    """:func:`seal` of every value of ``puts`` (one C-level pass)."""
    return dict(zip(puts, map(_V.__add__, puts.values()), strict=True))


def unseal(data: bytes, what: str = "record") -> bytes:
    if not data:
        raise StateVersionError(f"{what}: empty state record (no version byte)")
    if data[0] != VERSION:
        raise StateVersionError(
            f"{what}: state record of version {data[0]}, this build reads version {VERSION}"
        )
    return data[1:]
