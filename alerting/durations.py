"""Human durations ("30s", "5m", "2h", "1d", "1h30m") to milliseconds.

>>> parse_duration_ms("5m")
300000
>>> parse_duration_ms("1h30m")
5400000
>>> parse_duration_ms(2.5)
2500
>>> format_duration_ms(5_400_000)
'1h30m'
"""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration_ms(value: str | int | float) -> int:
    """Parse a duration; a bare number is seconds. Raises ``ValueError`` on anything else."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return int(round(value * 1000))
    text = str(value).strip().lower()
    if not text:
        raise ValueError("empty duration")
    try:
        return parse_duration_ms(float(text))
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 2h, 1d, 1h30m)")
    return int(round(total))


def format_duration_ms(ms: int) -> str:
    """Inverse of :func:`parse_duration_ms` for whole seconds (``0`` → ``'0s'``)."""
    if ms <= 0:
        return "0s"
    out = []
    rest = ms
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    if rest:
        out.append(f"{rest}ms")
    return "".join(out)
