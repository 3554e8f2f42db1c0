"""Stable alert fingerprints: the identity of "the same alert" across repeats.

>>> a = fingerprint("churn", "feature_drift", "age", {"b": "2", "a": "1"})
>>> a == fingerprint("churn", "feature_drift", "age", {"a": "1", "b": "2"})
True
>>> len(a)
16
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping


def fingerprint(model: str, kind: str, subject: str, labels: Mapping[str, str]) -> str:
    """A 16-hex-digit hash of model, kind, subject and the sorted labels."""
    canonical = json.dumps([model, str(kind), subject, sorted(labels.items())],
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
