"""Records → one self-contained HTML page (inline CSS and SVG; no script, no external URL).

The input is a :class:`~modelwatch.report.data.ReportData` (decoded ``WindowStats``,
the applicable ``ReferenceProfile`` and the ``AlertEvent`` rows); the output is a string.
Every user-controlled string is escaped on the way out.

Per feature the page compares the reference distribution with the *current* one: the
latest window in the range (the one the verdict line describes) and, dashed, the whole
range (KLL sketches merge; category counts add up). Drift scores are threshold-relative
(see :func:`~modelwatch.report.data.drift_score`): 1.0 is the threshold, so tests with
different scales share one axis.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from datasketches import kll_doubles_sketch

from modelwatch.report import svg
from modelwatch.report.data import Record, ReportData, alert_time, drift_score
from modelwatch.report.svg import esc, fmt_datetime, fmt_num, fmt_time

PREDICTION_KEY = "__prediction__"
LABEL_KEY = "__label__"
SPECIAL = {PREDICTION_KEY: "prediction", LABEL_KEY: "label"}
OTHER_CATEGORY = "__other__"
HIST_BINS = 30
MAX_CATEGORIES = 12
QUANTILE_RANKS = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75,
                  "p95": 0.95, "p99": 0.99}  # fmt: skip


@dataclass
class ScorePoint:
    """One drift verdict of one column in one window."""

    time_ms: int
    version: str
    score: float
    verdict: Record


@dataclass
class Column:
    """What the page knows about one column (feature, prediction or label)."""

    key: str
    kind: str = "numeric"
    reference: Record | None = None
    windows: list[Record] = field(default_factory=list)
    points: list[ScorePoint] = field(default_factory=list)
    wrong_kind: int = 0

    @property
    def display(self) -> str:
        return SPECIAL.get(self.key, self.key)

    @property
    def latest(self) -> ScorePoint | None:
        return self.points[-1] if self.points else None

    @property
    def drifted(self) -> bool:
        return bool(self.latest and self.latest.verdict.get("drifted"))

    @property
    def drifted_windows(self) -> int:
        return sum(bool(p.verdict.get("drifted")) for p in self.points)


def _window_time(w: Record) -> int:
    return int(w["window_end_ms"])


def collect_columns(data: ReportData) -> list[Column]:
    """Columns of the reference and the windows, with their verdicts, most drifted first.

    The order is the latest verdict's score (descending; drifted ones therefore first),
    then the number of drifted windows, then the name; columns never judged come last.
    """
    cols: dict[str, Column] = {}

    def col(key: str) -> Column:
        return cols.setdefault(key, Column(key))

    ref = data.reference or {}
    for rec in ref.get("features") or []:
        c = col(rec["name"])
        c.reference, c.kind = rec, str(rec.get("kind", "numeric"))
    for key, field_name in ((PREDICTION_KEY, "prediction"), (LABEL_KEY, "label")):
        if ref.get(field_name):
            c = col(key)
            c.reference, c.kind = ref[field_name], str(ref[field_name].get("kind", "numeric"))
    for w in data.windows:
        pairs = [(f["name"], f) for f in w.get("features") or []]
        pairs += [(k, w[n]) for k, n in ((PREDICTION_KEY, "prediction"), (LABEL_KEY, "label"))
                  if w.get(n)]  # fmt: skip
        for key, rec in pairs:
            c = col(key)
            c.windows.append(rec)
            if c.reference is None:
                c.kind = str(rec.get("kind", c.kind))
        for v in w.get("drift") or []:
            col(v["column"]).points.append(
                ScorePoint(_window_time(w), w.get("model_version", ""), drift_score(v), v)
            )

    for c in cols.values():  # a column that arrived with the wrong kind appears twice
        same = [r for r in c.windows if str(r.get("kind", c.kind)) == c.kind]
        c.wrong_kind = sum(int(r.get("count") or 0) - int(r.get("missing") or 0)
                           for r in c.windows if r not in same)  # fmt: skip
        c.windows = same

    def order(c: Column) -> tuple[int, float, int, str]:
        latest = c.latest
        return (0 if latest else 1, -(latest.score if latest else 0.0), -c.drifted_windows,
                c.display)  # fmt: skip

    return sorted(cols.values(), key=order)


# ---- distributions ---------------------------------------------------------------------


def _sketch(raw: bytes | None) -> kll_doubles_sketch | None:
    if not raw:
        return None
    try:
        s = kll_doubles_sketch.deserialize(bytes(raw))
    except (RuntimeError, ValueError):
        return None
    return None if s.is_empty() else s


def merged_sketch(records: Iterable[Record]) -> kll_doubles_sketch | None:
    """Merge of every record's KLL sketch, or ``None`` if any non-empty record lacks one."""
    merged: kll_doubles_sketch | None = None
    for rec in records:
        s = _sketch(rec.get("kll_sketch"))
        if s is None:
            if (rec.get("count") or 0) - (rec.get("missing") or 0) > 0:
                return None
            continue
        if merged is None:
            merged = s
        else:
            merged.merge(s)
    return merged


def sketch_quantiles(s: kll_doubles_sketch) -> dict[str, float]:
    """Labelled quantiles (plus min and max) of a sketch."""
    out = dict(zip(QUANTILE_RANKS, s.get_quantiles(list(QUANTILE_RANKS.values())), strict=True))
    out["min"], out["max"] = s.get_min_value(), s.get_max_value()
    return {k: float(v) for k, v in out.items()}


def record_quantiles(rec: Record | None) -> dict[str, float]:
    """Labelled quantiles of a column record: its sketch, else its quantile map and range."""
    if rec is None:
        return {}
    s = _sketch(rec.get("kll_sketch"))
    if s is not None:
        return sketch_quantiles(s)
    out = {str(k): float(v) for k, v in (rec.get("quantiles") or {}).items()}
    for k in ("min", "max"):
        if rec.get(k) is not None:
            out[k] = float(rec[k])
    if not out and rec.get("mean") is not None:
        out["p50"] = float(rec["mean"])
    return out


def histogram(
    sketches: Sequence[kll_doubles_sketch], bins: int = HIST_BINS
) -> tuple[list[float], list[list[float]]]:
    """Common bin edges over the sketches' joint 0.5–99.5 % range and each sketch's mass
    per bin (tails folded into the outer bins)."""
    lo = min(s.get_quantile(0.005) for s in sketches)
    hi = max(s.get_quantile(0.995) for s in sketches)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]

    def mass(s: kll_doubles_sketch) -> list[float]:
        pmf = list(s.get_pmf(edges))  # below lo, bins..., above hi
        inner = pmf[1:-1]
        inner[0] += pmf[0]
        inner[-1] += pmf[-1]
        return [float(m) for m in inner]

    return edges, [mass(s) for s in sketches]


def _counts(records: Iterable[Record | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        for k, v in ((r or {}).get("categories") or {}).items():
            out[str(k)] = out.get(str(k), 0) + int(v)
    return out


def category_shares(
    groups: Sequence[Sequence[Record | None]], top: int = MAX_CATEGORIES
) -> tuple[list[str], list[list[float]]]:
    """Category shares of each group of records (counts added within a group): the top
    categories by their largest share, the rest folded into ``(other)``."""
    counts = [_counts(g) for g in groups]
    totals = [sum(c.values()) or 1 for c in counts]
    names = set().union(*counts)
    share = {n: [c.get(n, 0) / t for c, t in zip(counts, totals, strict=True)] for n in names}
    ranked = sorted((n for n in names if n != OTHER_CATEGORY), key=lambda n: (-max(share[n]), n))
    shown = ranked[:top]
    rest = [n for n in names if n not in shown]
    cats = list(shown)
    cols = [[share[n][g] for n in shown] for g in range(len(groups))]
    if rest:
        cats.append("(other)")
        for g in range(len(groups)):
            cols[g].append(sum(share[n][g] for n in rest))
    return cats, cols


def distribution_chart(c: Column) -> str:
    """The reference-vs-current chart of a column: the latest window in solid blue and,
    with more than one window, the whole range dashed."""
    label = f"{c.display}: reference vs current distribution"
    latest = c.windows[-1:]
    whole = c.windows if len(c.windows) > 1 else []
    if c.kind == "categorical":
        if not c.windows and not c.reference:
            return svg.empty_chart("no data")
        groups: list[Sequence[Record | None]] = [[c.reference], latest] + ([whole] if whole else [])
        cats, shares = category_shares(groups)
        return svg.category_bars(cats, shares[0], shares[1], shares[2] if whole else None,
                                 label=label)  # fmt: skip
    ref_s = _sketch((c.reference or {}).get("kll_sketch"))
    cur_s = merged_sketch(latest) if latest else None
    whole_s = merged_sketch(whole) if whole else None
    if ref_s is not None and cur_s is not None:
        edges, masses = histogram([ref_s, cur_s] + ([whole_s] if whole_s is not None else []))
        return svg.histogram_overlay(edges, masses[0], masses[1],
                                     masses[2] if whole_s is not None else None,
                                     label=label)  # fmt: skip
    cur_q = sketch_quantiles(cur_s) if cur_s is not None else (
        record_quantiles(latest[0]) if latest else {})  # fmt: skip
    ref_q = record_quantiles(c.reference)
    if not ref_q and not cur_q:
        return svg.empty_chart("no distribution data")
    return svg.quantile_compare(ref_q, cur_q, label=label)


# ---- page sections ---------------------------------------------------------------------


def _versions(data: ReportData) -> list[str]:
    return sorted({w.get("model_version", "") for w in data.windows})


def _color(versions: Sequence[str], version: str) -> str:
    return svg.PALETTE[versions.index(version) % len(svg.PALETTE)] if version in versions \
        else svg.PALETTE[0]  # fmt: skip


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{color}"></i>{esc(name)}</span>' for name, color in items
        )
        + "</div>"
    )


def _version_legend(versions: Sequence[str]) -> str:
    if len(versions) < 2:
        return ""
    return _legend([(f"version {v or '(none)'}", _color(versions, v)) for v in versions])


def score_chart(c: Column, versions: Sequence[str]) -> str:
    """Drift score over time of one column, threshold at 1."""
    series = []
    for v in versions or [""]:
        pts = [p for p in c.points if p.version == v]
        if pts:
            series.append(svg.Series(
                f"{c.display} {v}".strip(), [(p.time_ms, p.score) for p in pts],
                _color(versions, v), [bool(p.verdict.get("drifted")) for p in pts],
            ))  # fmt: skip
    if not series:
        return svg.empty_chart("not judged in this range", height=60)
    return svg.line_chart(series, threshold=1.0, threshold_label="drift threshold", y_min=0,
                          height=130, label=f"{c.display}: drift score over time")  # fmt: skip


def _verdict_line(c: Column) -> str:
    p = c.latest
    if p is None:
        return '<p class="muted">No drift verdict in this range.</p>'
    v = p.verdict
    pv = f", p = {fmt_num(v['p_value'])}" if v.get("p_value") is not None else ""
    return (
        f'<p class="verdict">Latest window ({esc(fmt_time(p.time_ms))}): '
        f"<b>{esc(v['test'])}</b> statistic {esc(fmt_num(v['statistic']))}{esc(pv)}, "
        f"threshold {esc(fmt_num(v['threshold']))} · score <b>{esc(fmt_num(p.score))}</b> · "
        f"drifted in {c.drifted_windows} of {len(c.points)} windows</p>"
    )


def _stats_line(c: Column) -> str:
    ref = c.reference or {}
    count = sum(int(w.get("count") or 0) for w in c.windows)
    missing = sum(int(w.get("missing") or 0) for w in c.windows)
    parts = [f"range: {fmt_num(count)} values, {missing / count:.1%} missing" if count
             else "range: no values"]  # fmt: skip
    if ref:
        rc = int(ref.get("count") or 0)
        rm = int(ref.get("missing") or 0)
        parts.append(f"reference: {fmt_num(rc)} values, {rm / rc:.1%} missing" if rc
                     else "reference: empty")  # fmt: skip
    else:
        parts.append("no reference")
    oor = sum(int(w.get("out_of_range") or 0) for w in c.windows)
    unseen = sum(int(w.get("unseen_categories") or 0) for w in c.windows)
    if oor:
        parts.append(f"{fmt_num(oor)} out of reference range")
    if unseen:
        parts.append(f"{fmt_num(unseen)} unseen categories")
    if c.wrong_kind:
        parts.append(f"{fmt_num(c.wrong_kind)} values of the wrong kind")
    return f'<p class="muted">{esc(" · ".join(parts))}</p>'


def feature_card(c: Column, versions: Sequence[str]) -> str:
    """One column's card: badge, verdict, distribution and score-over-time charts."""
    if c.latest is None:
        badge, cls = "not judged", "badge idle"
    elif c.drifted:
        badge, cls = "DRIFTED", "badge drift"
    else:
        badge, cls = "no drift", "badge ok"
    legend = [("reference", svg.REFERENCE_COLOR), ("latest window", svg.CURRENT_COLOR)]
    if len(c.windows) > 1:
        legend.append((f"whole range ({len(c.windows)} windows)", svg.RANGE_COLOR))
    return (
        f'<section class="card feature{" drifted" if c.drifted else ""}" '
        f'data-feature="{esc(c.display)}" data-drifted="{str(c.drifted).lower()}">'
        f'<h3><span class="fname">{esc(c.display)}</span> <span class="kind">{esc(c.kind)}</span>'
        f' <span class="{cls}">{badge}</span></h3>'
        f"{_verdict_line(c)}{_stats_line(c)}"
        f'<div class="pair"><figure><figcaption>Reference vs current</figcaption>'
        f"{distribution_chart(c)}"
        f"{_legend(legend)}"
        f"</figure><figure><figcaption>Drift score over time (1 = threshold)</figcaption>"
        f"{score_chart(c, versions)}</figure></div></section>"
    )


def drift_overview(cols: Sequence[Column], data: ReportData) -> str:
    """Heat map of scores, features × windows."""
    judged = [c for c in cols if c.points]
    if not judged or not data.windows:
        return '<p class="muted">No drift verdicts in this range (no reference, or too few ' \
               "events per window).</p>"  # fmt: skip
    keys = [(_window_time(w), w.get("model_version", "")) for w in data.windows]
    values: list[list[float | None]] = []
    tips: list[list[str]] = []
    for c in judged:
        by = {(p.time_ms, p.version): p for p in c.points}
        row: list[float | None] = []
        tip: list[str] = []
        for k in keys:
            p = by.get(k)
            row.append(p.score if p else None)
            if p:
                v = p.verdict
                tip.append(f"{c.display} @ {fmt_time(k[0])} {k[1]}: {v['test']} "
                           f"{fmt_num(v['statistic'])}, score {fmt_num(p.score)}"
                           f"{' DRIFTED' if v.get('drifted') else ''}")  # fmt: skip
            else:
                tip.append(f"{c.display} @ {fmt_time(k[0])}: not judged")
        values.append(row)
        tips.append(tip)
    return svg.heatmap([c.display for c in judged], [k[0] for k in keys], values, tips=tips,
                       label="drift score heat map")  # fmt: skip


def drift_share_chart(data: ReportData, versions: Sequence[str]) -> str:
    """Dataset drift share over time; windows flagged as dataset drift are red."""
    series = []
    for v in versions:
        ws = [w for w in data.windows if w.get("model_version", "") == v]
        series.append(svg.Series(
            f"drift share {v}".strip(),
            [(_window_time(w), w.get("drift_share")) for w in ws], _color(versions, v),
            [bool(w.get("dataset_drift")) for w in ws],
        ))  # fmt: skip
    return svg.line_chart(series, width=860, height=170, y_min=0, y_max=1,
                          y_format=lambda x: f"{x:.0%}", label="drift share over time")  # fmt: skip


def performance_section(data: ReportData, versions: Sequence[str]) -> str:
    """One small chart per performance metric found in the windows."""
    metrics = sorted({k for w in data.windows for k in (w.get("performance") or {})})
    if not metrics:
        return '<p class="muted">No performance metrics in this range (no labels joined).</p>'
    ref_perf = (data.reference or {}).get("performance") or {}
    figs = []
    for m in metrics:
        series = []
        for v in versions:
            ws = [w for w in data.windows if w.get("model_version", "") == v]
            series.append(svg.Series(
                f"{m} {v}".strip(),
                [(_window_time(w), (w.get("performance") or {}).get(m)) for w in ws],
                _color(versions, v),
            ))  # fmt: skip
        ref_v = ref_perf.get(m)
        chart = svg.line_chart(series, threshold=ref_v, threshold_label="reference",
            threshold_color=svg.AXIS_COLOR,
                               height=140, label=f"{m} over time")  # fmt: skip
        note = f" (reference {fmt_num(ref_v)}, dashed)" if ref_v is not None else ""
        figs.append(f"<figure><figcaption>{esc(m)}{esc(note)}</figcaption>{chart}</figure>")
    return f'<div class="grid">{"".join(figs)}</div>'


def golden_section(data: ReportData) -> str:
    """Events per window split into ok / errors / fallbacks, and the totals."""
    ws = data.windows
    times = [_window_time(w) for w in ws]
    errors = [int(w.get("errors") or 0) for w in ws]
    fallbacks = [int(w.get("fallbacks") or 0) for w in ws]
    ok = [max(0, int(w.get("count") or 0) - e - f) for w, e, f in zip(ws, errors, fallbacks,
                                                                        strict=True)]  # fmt: skip
    chart = svg.stacked_bars(times, [("ok", svg.OK_COLOR, ok), ("errors", svg.DRIFT_COLOR, errors),
                                     ("fallbacks", svg.WARN_COLOR, fallbacks)],
                             label="events per window")  # fmt: skip
    total = sum(int(w.get("count") or 0) for w in ws)
    late = sum(int(w.get("late_events") or 0) for w in ws)
    rate = (lambda n: f"{n / total:.2%}") if total else (lambda n: "–")
    return (
        chart
        + _legend(
            [("ok", svg.OK_COLOR), ("errors", svg.DRIFT_COLOR), ("fallbacks", svg.WARN_COLOR)]
        )  # fmt: skip
        + f'<p class="muted">{esc(fmt_num(total))} events · {sum(errors)} errors '
        f"({rate(sum(errors))}) · {sum(fallbacks)} fallbacks ({rate(sum(fallbacks))}) · "
        f"{late} late events</p>"
    )


def alerts_table(alerts: Sequence[Record]) -> str:
    """The alerts detected in the range, one row per firing episode."""
    if not alerts:
        return '<p class="muted" id="no-alerts">No alerts in this range.</p>'
    rows = []
    for a in alerts:
        sev, status = str(a.get("severity")), str(a.get("status"))
        resolved = a.get("resolved_at_ms")
        runbook = a.get("runbook_url") or ""
        link = (f'<a href="{esc(runbook)}" rel="noopener noreferrer">runbook</a>'
                if runbook.startswith(("https://", "http://")) else esc(runbook))  # fmt: skip
        rows.append(
            f'<tr class="alert sev-{esc(sev)}"><td>{esc(fmt_time(alert_time(a)))}</td>'
            f'<td><span class="sev {esc(sev)}">{esc(sev)}</span></td>'
            f'<td class="status-{esc(status)}">{esc(status)}'
            f"{esc(' ' + fmt_time(resolved)) if resolved else ''}</td>"
            f"<td>{esc(a.get('kind'))}</td><td>{esc(a.get('subject'))}</td>"
            f"<td>{esc(a.get('detector'))}</td><td class=num>{esc(fmt_num(a.get('value')))}</td>"
            f"<td class=num>{esc(fmt_num(a.get('threshold')))}</td>"
            f"<td>{esc(a.get('model_version', ''))}</td>"
            f"<td>{esc(a.get('summary'))} {link}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("detected (UTC)", "severity", "status", "kind",
                                             "subject", "detector", "value", "threshold",
                                             "version", "summary"))  # fmt: skip
    return f'<table class="alerts"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}' \
           "</tbody></table>"  # fmt: skip


def _range_text(data: ReportData) -> str:
    lo = fmt_datetime(data.start_ms) if data.start_ms is not None else "the beginning"
    hi = fmt_datetime(data.end_ms) if data.end_ms is not None else "now"
    if data.windows:
        first, last = data.windows[0]["window_start_ms"], data.windows[-1]["window_end_ms"]
        return f"{lo} → {hi} (windows {fmt_datetime(first)} → {fmt_datetime(last)} UTC)"
    return f"{lo} → {hi} UTC"


def _reference_text(data: ReportData) -> str:
    ref = data.reference
    if not ref:
        return "none found — distributions show the current range only"
    version = ref.get("model_version") or "all versions"
    created = fmt_datetime(int(ref.get("created_at_ms") or 0))
    return f"{version}, from {ref.get('source', '?')}, created {created} UTC"


def _summary(data: ReportData, cols: Sequence[Column]) -> str:
    judged = [c for c in cols if c.points]
    drifted = [c for c in judged if c.drifted]
    dataset = sum(bool(w.get("dataset_drift")) for w in data.windows)
    firing = sum(str(a.get("status")) == "firing" for a in data.alerts)
    tiles = [
        ("windows", str(len(data.windows)), ""),
        ("events", fmt_num(sum(int(w.get("count") or 0) for w in data.windows)), ""),
        ("drifted now", f"{len(drifted)} / {len(judged)}", "bad" if drifted else "good"),
        ("dataset-drift windows", str(dataset), "bad" if dataset else "good"),
        ("alerts (firing)", f"{len(data.alerts)} ({firing})", "bad" if firing else ""),
    ]
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile {cls}"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div>'
            "</div>"
            for k, v, cls in tiles
        )
        + "</div>"
    )


CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",
sans-serif;color:#111827;background:#f3f4f6}main{max-width:940px;margin:0 auto;padding:20px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:2px 0;color:#4b5563}
h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #d1d5db;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 14px;
margin:10px 0}.feature.drifted{border-left:5px solid #dc2626;background:#fff7f7}
.kind{font-size:11px;color:#6b7280;font-weight:400;border:1px solid #d1d5db;border-radius:4px;
padding:0 5px}.badge{font-size:11px;border-radius:10px;padding:1px 8px;font-weight:600}
.badge.drift{background:#dc2626;color:#fff}.badge.ok{background:#dcfce7;color:#166534}
.badge.idle{background:#e5e7eb;color:#374151}.muted{color:#6b7280;margin:2px 0}
.verdict{margin:2px 0}.pair{display:flex;flex-wrap:wrap;gap:12px}figure{margin:6px 0}
figcaption{font-size:12px;color:#4b5563;margin-bottom:2px}.grid{display:flex;flex-wrap:wrap;
gap:12px}.legend{font-size:12px;color:#4b5563;display:flex;gap:12px}.legend i{display:
inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}.tiles{display:flex;
gap:10px;flex-wrap:wrap;margin-top:12px}.tile{background:#fff;border:1px solid #e5e7eb;
border-radius:8px;padding:8px 14px;min-width:150px}.tile .v{font-size:20px;font-weight:600}
.tile .k{font-size:12px;color:#6b7280}.tile.bad .v{color:#dc2626}.tile.good .v{color:#16a34a}
.empty{background:#fffbeb;border:1px solid #f59e0b;border-radius:8px;padding:14px;
margin:16px 0;font-size:15px}table.alerts{border-collapse:collapse;width:100%;background:#fff;
font-size:12px}table.alerts th,table.alerts td{border:1px solid #e5e7eb;padding:4px 6px;
text-align:left;vertical-align:top}table.alerts th{background:#f9fafb}td.num{text-align:right;
font-variant-numeric:tabular-nums}.sev{border-radius:4px;padding:0 6px;color:#fff;
font-weight:600}.sev.critical{background:#7f1d1d}.sev.major{background:#dc2626}
.sev.minor{background:#f59e0b}.status-firing{color:#dc2626;font-weight:600}
footer{color:#9ca3af;font-size:12px;margin:24px 0}svg.chart{background:#fff;max-width:100%}
"""


def render_report(data: ReportData) -> str:
    """The whole page for ``data``, as one HTML string."""
    cols = collect_columns(data)
    versions = _versions(data)
    generated = data.generated_at_ms or int(time.time() * 1000)
    title = f"Drift report — {data.model}"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>",
        f"<header><h1>{esc(title)}</h1>"
        f"<p>Range: {esc(_range_text(data))}"
        f"{esc(' · version ' + data.version) if data.version is not None else ''}</p>"
        f"<p>Reference: {esc(_reference_text(data))}</p>",
        _summary(data, cols) if data.windows else "",
        "</header>",
    ]
    for note in data.notes:
        parts.append(f'<p class="muted">{esc(note)}</p>')
    if not data.windows:
        parts.append(
            '<div class="empty" id="empty-range"><b>No window statistics in this range.</b> '
            f"{data.windows_total} window(s) exist for model {esc(data.model)} outside it; "
            "widen --from/--to, or check that the worker is running.</div>"
        )
    else:
        parts += [
            f"<h2>Drift overview</h2>{_version_legend(versions)}",
            '<div class="card">' + drift_overview(cols, data) + "</div>",
            "<h2>Drift share over time</h2>",
            '<div class="card">' + drift_share_chart(data, versions)
            + '<p class="muted">Fraction of judged features that drifted per window; red '
              "points are windows flagged as dataset-level drift.</p></div>",
            f"<h2>Features ({len(cols)}), most drifted first</h2>",
            *(feature_card(c, versions) for c in cols),
            "<h2>Performance over time</h2>",
            '<div class="card">' + performance_section(data, versions) + "</div>",
            "<h2>Golden signals per window</h2>",
            '<div class="card">' + golden_section(data) + "</div>",
        ]  # fmt: skip
    parts += [
        f"<h2>Alerts in range ({len(data.alerts)})</h2>",
        alerts_table(data.alerts),
        f"<footer>Generated by modelwatch at {esc(fmt_datetime(generated))} UTC. Times are UTC; "
        "drift score = statistic ÷ threshold for distances, log p ÷ log α for tests; "
        "≥ 1 means drifted.</footer></main></body></html>",
    ]
    return "".join(parts)
