"""What a window partial needs to know from the reference when it is created."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PREDICTION = "__prediction__"


@dataclass(frozen=True)
class PartialSpec:
    """Sketch sizes and the reference facts checked while updating (not after).

    ``ranges``: numeric column -> reference [min, max] for the out-of-range count.
    ``known``: categorical column -> reference categories for the unseen count (leave a
    column out when its reference was capped: then unseen cannot be told from rare).
    ``expected``: column -> "numeric" | "categorical", the reference's kind, used to count
    type violations (wrong kind, or absent from a batch). The prediction uses the key
    :data:`PREDICTION` in ``ranges`` / ``known``.
    """

    kll_k: int = 200
    category_cap: int = 100
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    known: Mapping[str, frozenset[str]] = field(default_factory=dict)
    expected: Mapping[str, str] = field(default_factory=dict)


DEFAULT_SPEC = PartialSpec()
