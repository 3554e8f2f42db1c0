"""Small, dependency-free SVG chart helpers for the HTML drift report.

Every helper returns an ``<svg>`` element as a string, ready to be inlined in HTML. All
text that reaches the markup (series names, category labels, titles) goes through
:func:`esc`, so user-controlled strings cannot inject markup. Hover tool-tips use SVG
``<title>`` elements: no script is needed.

>>> '<script>' in line_chart([Series("<script>", [(0.0, 1.0), (1.0, 2.0)])])
False
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

REFERENCE_COLOR = "#94a3b8"
CURRENT_COLOR = "#2563eb"
RANGE_COLOR = "#9333ea"
DRIFT_COLOR = "#dc2626"
OK_COLOR = "#16a34a"
WARN_COLOR = "#f59e0b"
GRID_COLOR = "#e5e7eb"
AXIS_COLOR = "#6b7280"
PALETTE = ("#2563eb", "#7c3aed", "#0891b2", "#ea580c", "#db2777", "#65a30d", "#475569")
FONT = 'font-family="system-ui, sans-serif"'


def esc(text: object) -> str:
    """HTML/XML-escape any value (quotes included), for text and attribute values."""
    return html.escape(str(text), quote=True)


def fmt_num(value: float | None) -> str:
    """Compact human formatting of a number (``None`` → ``–``).

    >>> fmt_num(1234567), fmt_num(0.000123), fmt_num(0.5), fmt_num(None), fmt_num(12.0)
    ('1.23M', '1.23e-04', '0.5', '–', '12')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    v = float(value)
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 1e3:
        return f"{v:.0f}"
    if a != 0 and a < 1e-3:
        return f"{v:.2e}"
    return f"{v:.3g}"


def fmt_time(ms: float, short: bool = False) -> str:
    """Epoch milliseconds as a UTC label: ``MM-DD HH:MM``, or ``HH:MM`` when ``short``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M" if short else "%m-%d %H:%M")


def fmt_datetime(ms: float) -> str:
    """Epoch milliseconds as a full UTC date and time (``YYYY-MM-DD HH:MM:SS``)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_share(value: float) -> str:
    """A fraction as a percentage without spurious digits.

    >>> fmt_share(0.025), fmt_share(0.5), fmt_share(0)
    ('2.5%', '50%', '0')
    """
    return f"{value * 100:.3g}%" if value else "0"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (about ``count`` of them).

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
    >>> nice_ticks(3, 3)
    [3.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [float(lo)]
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    i = first
    while i * step <= hi + step * 1e-9:
        ticks.append(i * step)
        i += 1
    return [float(t) for t in ticks]


@dataclass
class Series:
    """One line of a :func:`line_chart`: ``(x, y)`` points, ``None`` y breaks the line."""

    name: str
    points: Sequence[tuple[float, float | None]]
    color: str = CURRENT_COLOR
    flagged: Sequence[bool] = field(default_factory=tuple)
    dashed: bool = False


class _Frame:
    """Plot-area geometry and the data → pixel mapping."""

    def __init__(self, width: int, height: int, left: int = 52, right: int = 12,
                 top: int = 12, bottom: int = 28) -> None:  # fmt: skip
        self.width, self.height = width, height
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = height - bottom, top  # y grows downwards in SVG
        self.xlo = self.xhi = self.ylo = self.yhi = 0.0

    def set_x(self, lo: float, hi: float) -> None:
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        self.xlo, self.xhi = lo, hi

    def set_y(self, lo: float, hi: float) -> None:
        if hi <= lo:
            pad = abs(lo) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad
        self.ylo, self.yhi = lo, hi

    def px(self, x: float) -> float:
        return self.x0 + (x - self.xlo) / (self.xhi - self.xlo) * (self.x1 - self.x0)

    def py(self, y: float) -> float:
        return self.y0 - (y - self.ylo) / (self.yhi - self.ylo) * (self.y0 - self.y1)


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{esc(label)}" {FONT} font-size="11">'
    )


def _y_axis(f: _Frame, fmt: Callable[[float], str] = fmt_num) -> str:
    out = []
    for t in nice_ticks(f.ylo, f.yhi, 4):
        y = f.py(t)
        out.append(
            f'<line x1="{f.x0}" x2="{f.x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID_COLOR}"/>'
            f'<text x="{f.x0 - 4}" y="{y + 3.5:.1f}" text-anchor="end" '
            f'fill="{AXIS_COLOR}">{esc(fmt(t))}</text>'
        )
    out.append(f'<line x1="{f.x0}" x2="{f.x1}" y1="{f.y0}" y2="{f.y0}" stroke="{AXIS_COLOR}"/>')
    return "".join(out)


def _x_axis(f: _Frame, is_time: bool) -> str:
    out = []
    span = f.xhi - f.xlo
    short = is_time and span < 20 * 3600 * 1000
    count = max(2, min(5, int((f.x1 - f.x0) // (70 if short else 110)) + 1))
    if is_time:
        ticks = [f.xlo + span * i / (count - 1) for i in range(count)]
    else:
        ticks = nice_ticks(f.xlo, f.xhi, count)
    fmt: Callable[[float], str] = (lambda t: fmt_time(t, short)) if is_time else fmt_num
    for i, t in enumerate(ticks):
        x = f.px(t)
        anchor = (
            "start" if is_time and i == 0 else "end" if is_time and i == count - 1 else "middle"
        )
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.y0}" y2="{f.y0 + 4}" stroke="{AXIS_COLOR}"/>'
            f'<text x="{x:.1f}" y="{f.y0 + 16}" text-anchor="{anchor}" '
            f'fill="{AXIS_COLOR}">{esc(fmt(t))}</text>'
        )
    return "".join(out)


def empty_chart(message: str, width: int = 420, height: int = 60) -> str:
    """A placeholder box saying why there is no chart."""
    return (
        f"{_open(width, height, message)}"
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#f9fafb" '
        f'stroke="{GRID_COLOR}"/><text x="{width / 2}" y="{height / 2 + 4}" '
        f'text-anchor="middle" fill="{AXIS_COLOR}">{esc(message)}</text></svg>'
    )


def line_chart(
    series: Sequence[Series],
    *,
    width: int = 420,
    height: int = 150,
    x_is_time: bool = True,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    threshold_color: str = DRIFT_COLOR,
    y_min: float | None = None,
    y_max: float | None = None,
    label: str = "line chart",
    y_format: Callable[[float], str] = fmt_num,
) -> str:
    """Lines with point markers; flagged points are drawn red and larger.

    A horizontal dashed line marks ``threshold`` when given.
    """
    xs = [x for s in series for x, y in s.points if y is not None]
    ys = [y for s in series for _, y in s.points if y is not None and math.isfinite(y)]
    if not xs or not ys:
        return empty_chart("no data", width, min(height, 60))
    f = _Frame(width, height)
    f.set_x(min(xs), max(xs))
    lo = min(ys) if y_min is None else min(y_min, *ys)
    hi = max(ys) if y_max is None else max(y_max, *ys)
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold * 1.1 if threshold > 0 else threshold)
    f.set_y(lo, hi)
    out = [_open(width, height, label), _y_axis(f, y_format), _x_axis(f, x_is_time)]
    if threshold is not None:
        y = f.py(threshold)
        out.append(
            f'<line x1="{f.x0}" x2="{f.x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="{threshold_color}" '
            f'stroke-dasharray="4 3" stroke-width="1"><title>{esc(threshold_label)} '
            f"{esc(fmt_num(threshold))}</title></line>"
        )
    for s in series:
        segments: list[list[str]] = [[]]
        for x, y in s.points:
            if y is None or not math.isfinite(y):
                segments.append([])
                continue
            segments[-1].append(f"{f.px(x):.1f},{f.py(y):.1f}")
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        for seg in segments:
            if len(seg) > 1:
                out.append(
                    f'<polyline fill="none" stroke="{s.color}" stroke-width="1.8"{dash} '
                    f'points="{" ".join(seg)}"/>'
                )
        for i, (x, y) in enumerate(s.points):
            if y is None or not math.isfinite(y):
                continue
            hot = i < len(s.flagged) and s.flagged[i]
            tip = f"{s.name}: {fmt_num(y)}" + (f" at {fmt_time(x)}" if x_is_time else "")
            out.append(
                f'<circle cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="{3.5 if hot else 2.2}" '
                f'fill="{DRIFT_COLOR if hot else s.color}"><title>{esc(tip)}</title></circle>'
            )
    out.append("</svg>")
    return "".join(out)


def stacked_bars(
    times: Sequence[float],
    stacks: Sequence[tuple[str, str, Sequence[float]]],
    *,
    width: int = 860,
    height: int = 170,
    label: str = "stacked bars",
) -> str:
    """One bar per time point, stacked from ``stacks`` = ``(name, color, values)``."""
    if not times:
        return empty_chart("no windows", width, 60)
    totals = [sum(s[2][i] for s in stacks) for i in range(len(times))]
    f = _Frame(width, height)
    lo, hi = min(times), max(times)
    gap = (hi - lo) / max(1, len(times) - 1) if len(times) > 1 else 1.0
    f.set_x(lo - gap / 2, hi + gap / 2)
    f.set_y(0, max(totals) or 1)
    bar_w = max(1.0, min(40.0, (f.x1 - f.x0) / len(times) * 0.8))
    out = [_open(width, height, label), _y_axis(f), _x_axis(f, True)]
    for i, t in enumerate(times):
        base = 0.0
        for name, color, values in stacks:
            v = values[i]
            if v <= 0:
                continue
            y_top, y_bottom = f.py(base + v), f.py(base)
            out.append(
                f'<rect x="{f.px(t) - bar_w / 2:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
                f'height="{max(0.5, y_bottom - y_top):.1f}" fill="{color}">'
                f"<title>{esc(f'{fmt_time(t)} {name}: {fmt_num(v)}')}</title></rect>"
            )
            base += v
    out.append("</svg>")
    return "".join(out)


def histogram_overlay(
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
    whole: Sequence[float] | None = None,
    *,
    width: int = 420,
    height: int = 160,
    label: str = "histogram",
) -> str:
    """Reference mass as grey bars, current mass as a blue step line, over ``edges``;
    ``whole`` (e.g. the whole range) as a dashed purple step line when given.

    The sequences are the probability mass in each of the ``len(edges) - 1`` bins.
    """
    if len(edges) < 2:
        return empty_chart("no distribution", width, 60)
    f = _Frame(width, height)
    f.set_x(edges[0], edges[-1])
    f.set_y(0, max([*reference, *current, *(whole or ()), 1e-9]) * 1.05)
    out = [_open(width, height, label), _y_axis(f, fmt_share),
           _x_axis(f, False)]  # fmt: skip
    for i, mass in enumerate(reference):
        x0, x1 = f.px(edges[i]), f.px(edges[i + 1])
        y = f.py(mass)
        out.append(
            f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(0.5, x1 - x0 - 0.5):.1f}" '
            f'height="{max(0.0, f.y0 - y):.1f}" fill="{REFERENCE_COLOR}" fill-opacity="0.6">'
            f"<title>{esc(f'reference [{fmt_num(edges[i])}, {fmt_num(edges[i + 1])}): {mass:.1%}')}"
            "</title></rect>"
        )

    def steps(masses: Sequence[float]) -> str:
        pts = [f"{f.px(edges[0]):.1f},{f.y0:.1f}"]
        for i, mass in enumerate(masses):
            y = f.py(mass)
            pts += [f"{f.px(edges[i]):.1f},{y:.1f}", f"{f.px(edges[i + 1]):.1f},{y:.1f}"]
        pts.append(f"{f.px(edges[-1]):.1f},{f.y0:.1f}")
        return " ".join(pts)

    if whole is not None:
        out.append(
            f'<polyline fill="none" stroke="{RANGE_COLOR}" stroke-width="1.4" '
            f'stroke-dasharray="4 3" points="{steps(whole)}"><title>whole range</title>'
            "</polyline>"
        )
    out.append(
        f'<polyline fill="{CURRENT_COLOR}" fill-opacity="0.08" stroke="{CURRENT_COLOR}" '
        f'stroke-width="1.8" points="{steps(current)}"><title>current</title></polyline>'
    )
    out.append("</svg>")
    return "".join(out)


def quantile_compare(
    reference: dict[str, float],
    current: dict[str, float],
    *,
    width: int = 420,
    height: int = 110,
    label: str = "quantiles",
) -> str:
    """Two horizontal quantile strips (reference above, current below) on one value axis.

    Keys are labels such as ``p05``/``p50``/``min``; the outer pair spans a thin line, the
    inner pair (p25–p75 when present) a box, and p50 a tick.
    """
    values = [v for d in (reference, current) for v in d.values() if math.isfinite(v)]
    if not values:
        return empty_chart("no quantiles", width, 60)
    f = _Frame(width, height, left=70, bottom=26)
    f.set_x(min(values), max(values))
    f.set_y(0, 2)
    out = [_open(width, height, label), _x_axis(f, False)]
    for row, (name, d, color) in enumerate(
        (("reference", reference, REFERENCE_COLOR), ("current", current, CURRENT_COLOR))
    ):
        yc = f.py(1.5 - row)
        out.append(
            f'<text x="{f.x0 - 6}" y="{yc + 4:.1f}" text-anchor="end" fill="{AXIS_COLOR}">'
            f"{name}</text>"
        )
        finite = sorted((v, k) for k, v in d.items() if math.isfinite(v))
        if not finite:
            continue
        lo, hi = finite[0][0], finite[-1][0]
        out.append(
            f'<line x1="{f.px(lo):.1f}" x2="{f.px(hi):.1f}" y1="{yc:.1f}" y2="{yc:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        if "p25" in d and "p75" in d:
            x0, x1 = f.px(d["p25"]), f.px(d["p75"])
            out.append(
                f'<rect x="{x0:.1f}" y="{yc - 9:.1f}" width="{max(1.0, x1 - x0):.1f}" '
                f'height="18" fill="{color}" fill-opacity="0.35" stroke="{color}"/>'
            )
        for v, k in finite:
            x = f.px(v)
            big = k == "p50"
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{yc - (11 if big else 6):.1f}" '
                f'y2="{yc + (11 if big else 6):.1f}" stroke="{color}" '
                f'stroke-width="{3 if big else 1.5}"><title>{esc(f"{name} {k}: {fmt_num(v)}")}'
                "</title></line>"
            )
    out.append("</svg>")
    return "".join(out)


def category_bars(
    categories: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    whole: Sequence[float] | None = None,
    *,
    width: int = 420,
    label: str = "category frequencies",
) -> str:
    """Horizontal bars per category: reference share (grey), current share (blue) and,
    when given, the ``whole``-range share (purple)."""
    if not categories:
        return empty_chart("no categories", width, 60)
    bars = [("reference", REFERENCE_COLOR, reference), ("current", CURRENT_COLOR, current)]
    if whole is not None:
        bars.append(("whole range", RANGE_COLOR, whole))
    bar_h = 7 if whole is None else 5
    row_h, top, left = 6 + bar_h * len(bars) + len(bars), 6, 120
    height = top + row_h * len(categories) + 22
    f = _Frame(width, height, left=left, right=46, top=top, bottom=22)
    f.set_x(0, max([v for _, _, vs in bars for v in vs] + [1e-9]))
    out = [_open(width, height, label)]
    for i, cat in enumerate(categories):
        y = top + i * row_h
        shown = cat if len(cat) <= 18 else cat[:17] + "…"
        mid = y + 3 + (row_h - 6) / 2
        out.append(
            f'<text x="{left - 6}" y="{mid + 4:.1f}" text-anchor="end" fill="#111827">'
            f"<title>{esc(cat)}</title>{esc(shown)}</text>"
        )
        for j, (who, color, shares) in enumerate(bars):
            share = shares[i]
            w = f.px(share) - f.x0
            yy = y + 3 + j * (bar_h + 1)
            out.append(
                f'<rect x="{f.x0}" y="{yy}" width="{max(0.0, w):.1f}" height="{bar_h}" '
                f'fill="{color}"><title>{esc(f"{cat} {who}: {share:.1%}")}</title></rect>'
            )
        out.append(
            f'<text x="{f.px(max(vs[i] for _, _, vs in bars)) + 4:.1f}" y="{mid + 4:.1f}" '
            f'fill="{AXIS_COLOR}">{current[i]:.0%}</text>'
        )
    out.append(
        f'<line x1="{f.x0}" x2="{f.x0}" y1="{top}" y2="{height - 22}" stroke="{AXIS_COLOR}"/>'
    )
    out.append("</svg>")
    return "".join(out)


def score_color(score: float | None) -> str:
    """Heat-map fill for a threshold-relative drift score (1.0 = at the threshold)."""
    if score is None or not math.isfinite(score):
        return "#f3f4f6"
    if score >= 1:
        strength = min(1.0, 0.45 + (score - 1) * 0.3)
        return f"rgba(220,38,38,{strength:.2f})"
    return f"rgba(22,163,74,{0.12 + 0.5 * (1 - score):.2f})"


def heatmap(
    rows: Sequence[str],
    columns: Sequence[float],
    values: Sequence[Sequence[float | None]],
    *,
    tips: Sequence[Sequence[str]] | None = None,
    width: int = 860,
    label: str = "drift heat map",
) -> str:
    """Rows × time columns of threshold-relative scores (red ≥ 1 = drifted, green below)."""
    if not rows or not columns:
        return empty_chart("no drift verdicts", width, 60)
    left, row_h, top = 150, 18, 6
    height = top + row_h * len(rows) + 24
    cell_w = (width - left - 10) / len(columns)
    out = [_open(width, height, label)]
    for r, name in enumerate(rows):
        y = top + r * row_h
        shown = name if len(name) <= 22 else name[:21] + "…"
        out.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" fill="#111827">'
            f"<title>{esc(name)}</title>{esc(shown)}</text>"
        )
        for c, value in enumerate(values[r]):
            tip = tips[r][c] if tips else f"{name}: {fmt_num(value)}"
            out.append(
                f'<rect x="{left + c * cell_w:.1f}" y="{y}" width="{max(1.0, cell_w - 1):.1f}" '
                f'height="{row_h - 2}" fill="{score_color(value)}"><title>{esc(tip)}</title></rect>'
            )
    y = top + row_h * len(rows) + 15
    idx = sorted({0, len(columns) // 2, len(columns) - 1})
    for c in idx:
        x = left + (c + 0.5) * cell_w
        out.append(
            f'<text x="{x:.1f}" y="{y}" text-anchor="middle" fill="{AXIS_COLOR}">'
            f"{esc(fmt_time(columns[c]))}</text>"
        )
    out.append("</svg>")
    return "".join(out)
