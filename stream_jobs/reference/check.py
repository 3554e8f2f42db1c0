"""Reject a ``ReferenceProfile`` that would break the worker, before anything uses it.

A profile arrives from a topic; a corrupt one once crashed every worker in a loop (its KLL
bytes made ``deserialize`` raise inside the worker's timer, and each restart re-read it).
:func:`check_profile` names the first problem it finds, or returns the parsed
:class:`~stream_jobs.reference.view.ReferenceView`; the reference feed keeps the previous
reference of the model in force when a new one is rejected.

>>> from stream_jobs.reference.profile import build_profile
>>> import numpy as np
>>> prof = build_profile("m", "1", numeric={"x": np.arange(100.0)})
>>> check_profile(prof).model
'm'
>>> prof["features"][0]["kll_sketch"] = prof["features"][0]["kll_sketch"][:-3]
>>> try:
...     check_profile(prof)
... except InvalidReference as exc:
...     print(str(exc)[:60])
column 'x': KLL sketch of 837 bytes, expected 840 for 1 leve
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from stream_jobs.reference.kll_check import CorruptSketch, check_kll
from stream_jobs.reference.view import ReferenceView


class InvalidReference(ValueError):
    """A reference profile that must not be installed; the message names the problem."""


def _check_column(col: Mapping[str, Any], where: str) -> None:
    count, missing = col.get("count", 0), col.get("missing", 0)
    if count < 0 or missing < 0 or missing > count:
        raise InvalidReference(f"{where}: count={count}, missing={missing}")
    for stat in ("mean", "std", "min", "max"):
        v = col.get(stat)
        if v is not None and not math.isfinite(v):
            raise InvalidReference(f"{where}: {stat}={v} is not finite")
    if col.get("min") is not None and col.get("max") is not None and col["min"] > col["max"]:
        raise InvalidReference(f"{where}: min {col['min']} > max {col['max']}")
    if any(c < 0 for c in (col.get("categories") or {}).values()):
        raise InvalidReference(f"{where}: negative category count")
    raw = col.get("kll_sketch")
    if raw:
        try:
            check_kll(raw)
        except CorruptSketch as exc:
            raise InvalidReference(f"{where}: {exc}") from None


def check_profile(rec: Mapping[str, Any]) -> ReferenceView:
    """The profile's view, or :class:`InvalidReference` naming what is wrong with it."""
    if not rec.get("model"):
        raise InvalidReference("empty model name")
    names: set[str] = set()
    for col in rec.get("features") or []:
        if not col.get("name") or col["name"] in names:
            raise InvalidReference(f"feature name {col.get('name')!r} empty or repeated")
        names.add(col["name"])
        _check_column(col, f"column {col['name']!r}")
    for part in ("prediction", "label"):
        if rec.get(part):
            _check_column(rec[part], part)
    if any(not math.isfinite(v) for v in (rec.get("performance") or {}).values()):
        raise InvalidReference("performance holds a value that is not finite")
    try:
        return ReferenceView(rec)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise InvalidReference(f"unreadable profile: {type(exc).__name__}: {exc}") from None
