"""Check serialized KLL sketches (Apache DataSketches, doubles) before deserializing them.

``kll_doubles_sketch.deserialize`` trusts its input: corrupt bytes can raise, give nonsense
or crash the process (a segmentation fault, measured: a few thousand random corruptions of
one sketch). A reference profile comes from a topic anyone with write access can publish
to, so every sketch goes through :func:`check_kll` first: the layout of the serialization
(``kll_sketch_impl.hpp``, serial versions 1 and 2) is parsed in Python and every invariant
a real sketch satisfies is checked (sizes, level boundaries, total weight = n, sorted
levels, min ≤ items ≤ max, no NaN). Bytes that pass are safe to deserialize.

>>> import numpy as np
>>> from datasketches import kll_doubles_sketch
>>> sk = kll_doubles_sketch(200)
>>> sk.update(np.arange(5000.0))
>>> raw = sk.serialize()
>>> check_kll(raw)
>>> try:
...     check_kll(raw[:-8])
... except CorruptSketch as exc:
...     print(exc)
KLL sketch of 3840 bytes, expected 3848 for 5 levels and 474 items
"""

from __future__ import annotations

import struct

import numpy as np

FAMILY_KLL = 15
FLAG_EMPTY = 1
FLAG_LEVEL_ZERO_SORTED = 2
FLAG_SINGLE_ITEM = 4
MAX_LEVELS = 61
_POWERS_OF_THREE = [3**i for i in range(31)]


class CorruptSketch(ValueError):
    """Bytes that are not a valid serialized KLL doubles sketch."""


def _cap_aux_aux(k: int, depth: int) -> int:
    twok = k << 1
    tmp = (twok << depth) // _POWERS_OF_THREE[depth]
    return (tmp + 1) >> 1


def _cap_aux(k: int, depth: int) -> int:
    if depth <= 30:
        return _cap_aux_aux(k, depth)
    half = depth // 2
    return _cap_aux_aux(_cap_aux_aux(k, half), depth - half)


def total_capacity(k: int, m: int, num_levels: int) -> int:
    """Items a sketch of ``num_levels`` levels holds (``kll_helper::compute_total_capacity``)."""
    return sum(max(m, _cap_aux(k, num_levels - h - 1)) for h in range(num_levels))


def check_kll(raw: bytes) -> None:
    """Raise :class:`CorruptSketch` unless ``raw`` is a well-formed KLL doubles sketch."""
    if len(raw) < 8:
        raise CorruptSketch(f"KLL sketch of {len(raw)} bytes: shorter than its preamble")
    pre_ints, serial, family, flags, k, m = struct.unpack_from("<BBBBHB", raw)
    if family != FAMILY_KLL:
        raise CorruptSketch(f"family {family} is not KLL ({FAMILY_KLL})")
    if not 8 <= k <= 65535 or m != 8:
        raise CorruptSketch(f"k={k}, m={m}: not a KLL sketch's parameters")
    if flags & ~(FLAG_EMPTY | FLAG_LEVEL_ZERO_SORTED | FLAG_SINGLE_ITEM):
        raise CorruptSketch(f"unknown flags {flags:#x}")
    if flags & FLAG_EMPTY:
        if (pre_ints, serial, len(raw)) != (2, 1, 8) or flags & FLAG_SINGLE_ITEM:
            raise CorruptSketch("malformed empty KLL sketch")
        return
    if flags & FLAG_SINGLE_ITEM:
        if (pre_ints, serial, len(raw)) != (2, 2, 16):
            raise CorruptSketch("malformed single-item KLL sketch")
        if np.isnan(struct.unpack_from("<d", raw, 8)[0]):
            raise CorruptSketch("single-item KLL sketch holds NaN")
        return
    if (pre_ints, serial) != (5, 1) or len(raw) < 20:
        raise CorruptSketch(f"preamble ints {pre_ints} / serial version {serial} unknown")
    n, min_k, num_levels = struct.unpack_from("<QHB", raw, 8)
    if n == 0 or min_k > k or min_k < 8 or not 1 <= num_levels <= MAX_LEVELS:
        raise CorruptSketch(f"n={n}, min_k={min_k}, levels={num_levels}: inconsistent")
    if len(raw) < 20 + 4 * num_levels:
        raise CorruptSketch(f"KLL sketch of {len(raw)} bytes cannot hold {num_levels} levels")
    capacity = total_capacity(k, m, num_levels)
    levels = [*struct.unpack_from(f"<{num_levels}I", raw, 20), capacity]
    if any(a > b for a, b in zip(levels, levels[1:], strict=False)):
        raise CorruptSketch(f"level boundaries {levels} are not increasing")
    items = capacity - levels[0]
    expected = 20 + 4 * num_levels + 16 + 8 * items
    if len(raw) != expected:
        raise CorruptSketch(
            f"KLL sketch of {len(raw)} bytes, expected {expected} for {num_levels} levels "
            f"and {items} items"
        )
    weight = sum((levels[h + 1] - levels[h]) << h for h in range(num_levels))
    if weight != n:
        raise CorruptSketch(f"items weigh {weight} in all, the sketch says n={n}")
    at = 20 + 4 * num_levels
    lo, hi = struct.unpack_from("<dd", raw, at)
    values = np.frombuffer(raw, dtype="<f8", count=items, offset=at + 16)
    if np.isnan(lo) or np.isnan(hi) or lo > hi or np.isnan(values).any():
        raise CorruptSketch("min/max/items hold NaN or min > max")
    if items and (values.min() < lo or values.max() > hi):
        raise CorruptSketch("items outside the sketch's [min, max]")
    for h in range(num_levels):
        if h == 0 and not flags & FLAG_LEVEL_ZERO_SORTED:
            continue
        level = values[levels[h] - levels[0] : levels[h + 1] - levels[0]]
        if level.size > 1 and (np.diff(level) < 0).any():
            raise CorruptSketch(f"level {h} is not sorted")
