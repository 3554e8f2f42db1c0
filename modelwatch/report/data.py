"""Pure selection of what a report shows: records of one model in one time range.

Records are the plain dicts :func:`schemas.codec.Codec.decode` returns (``WindowStats``,
``ReferenceProfile``, ``AlertEvent``). Nothing here touches Kafka.

>>> parse_time("1700000000000"), parse_time("2023-11-14T22:13:20Z")
(1700000000000, 1700000000000)
>>> drift_score({"statistic": 0.2, "p_value": None, "threshold": 0.1})
2.0
>>> round(drift_score({"statistic": 0.5, "p_value": 0.0025, "threshold": 0.05}), 3)
2.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Record = dict[str, Any]


def parse_time(text: str) -> int:
    """Epoch milliseconds from digits (epoch ms) or an ISO-8601 date/datetime.

    A datetime without a timezone is taken as UTC.
    """
    raw = text.strip()
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: give epoch milliseconds or an ISO datetime "
            "such as 2026-11-23T14:00:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(round(dt.timestamp() * 1000))


def drift_score(verdict: Mapping[str, Any]) -> float:
    """A verdict's strength relative to its threshold: ``>= 1`` exactly when it drifted.

    Distances (no p-value): ``statistic / threshold``. P-value tests:
    ``log(p) / log(threshold)`` (p at the threshold scores 1, smaller p scores more).
    """
    threshold = float(verdict["threshold"])
    p = verdict.get("p_value")
    if p is not None:
        if not 0 < threshold < 1:
            return 1.0 if verdict.get("drifted") else 0.0
        return math.log(max(float(p), 1e-300)) / math.log(threshold)
    if threshold <= 0:
        return 1.0 if verdict.get("drifted") else 0.0
    return float(verdict["statistic"]) / threshold


def window_key(w: Mapping[str, Any]) -> tuple[str, str, int, int]:
    """Identity of a window: a window re-published after a replay replaces the earlier one."""
    return (w["model"], w.get("model_version", ""), w["window_start_ms"], w["window_end_ms"])


def merge_window_parts(prev: Record | None, new: Record) -> Record:
    """A window arrives in parts: the distribution part when it closes (``features`` set)
    and, later, the performance part once its labels have joined (no ``features``,
    ``performance`` set). A newer part of the same kind replaces the older one.

    >>> dist = {"features": [{"name": "x"}], "performance": {}, "label": None, "count": 10}
    >>> perf = {"features": [], "performance": {"accuracy": 0.9}, "label": None, "count": 10}
    >>> merged = merge_window_parts(dist, perf)
    >>> merged["features"], merged["performance"]
    ([{'name': 'x'}], {'accuracy': 0.9})
    """
    if prev is None:
        return new
    if new.get("features"):  # a (re)published distribution part
        base = dict(new)
        base["performance"] = {**prev.get("performance", {}), **new.get("performance", {})}
        base["label"] = new.get("label") or prev.get("label")
        return base
    base = dict(prev)
    base["performance"] = {**prev.get("performance", {}), **new.get("performance", {})}
    base["label"] = new.get("label") or prev.get("label")
    return base


def in_range(start: int, end: int, lo: int | None, hi: int | None) -> bool:
    """Whether ``[start, end)`` overlaps ``[lo, hi]`` (open bounds when ``None``)."""
    return (lo is None or end > lo) and (hi is None or start <= hi)


@dataclass
class ReportData:
    """Everything one report page shows, already filtered to one model and range."""

    model: str
    windows: list[Record]
    reference: Record | None
    alerts: list[Record]
    start_ms: int | None = None
    end_ms: int | None = None
    version: str | None = None
    windows_total: int = 0
    alerts_total: int = 0
    generated_at_ms: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def has_any_data(self) -> bool:
        """Anything at all about the model, in or out of the range."""
        return bool(self.windows_total or self.reference or self.alerts_total)


def latest_reference(
    references: Iterable[Record], model: str, version: str | None = None
) -> Record | None:
    """The reference profile that applies: the newest (``created_at_ms``) for ``model``.

    With ``version``, a profile of exactly that version wins over an all-versions one
    (``model_version == ""``); profiles of other versions are ignored.
    """
    mine = [r for r in references if r.get("model") == model]
    if version is not None:
        exact = [r for r in mine if r.get("model_version") == version]
        mine = exact or [r for r in mine if not r.get("model_version")]
    if not mine:
        return None
    return max(mine, key=lambda r: int(r.get("created_at_ms") or 0))


def alert_time(a: Mapping[str, Any]) -> int:
    """The event time an alert belongs to (its detection time)."""
    return int(a.get("detected_at_ms") or a.get("fired_at_ms") or 0)


def collapse_alerts(events: Iterable[Record]) -> list[Record]:
    """One row per firing episode (``alert_id``): the latest state wins, the first
    firing's ``fired_at_ms`` is kept; sorted by detection time."""
    by_id: dict[str, Record] = {}
    for e in events:
        aid = e.get("alert_id") or e.get("fingerprint", "")
        prev = by_id.get(aid)
        if prev is None:
            by_id[aid] = dict(e)
            continue
        merged = dict(e)
        merged["fired_at_ms"] = min(int(prev["fired_at_ms"]), int(e["fired_at_ms"]))
        merged["detected_at_ms"] = min(alert_time(prev), alert_time(e))
        if str(prev.get("status")) == "resolved" and str(e.get("status")) == "firing":
            merged["status"], merged["resolved_at_ms"] = "resolved", prev.get("resolved_at_ms")
        by_id[aid] = merged
    return sorted(by_id.values(), key=lambda a: (alert_time(a), a.get("alert_id", "")))


def select(
    model: str,
    windows: Iterable[Record],
    references: Iterable[Record],
    alerts: Iterable[Record],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    version: str | None = None,
    now_ms: int = 0,
) -> ReportData:
    """Filter decoded records to ``model`` (and ``version``), and to the time range.

    Windows count when they overlap ``[start_ms, end_ms]``; duplicates of one window (a
    replay republished it) keep the last one read; the performance part of a window is
    merged into its distribution part (:func:`merge_window_parts`). Alerts count when their
    detection time falls in the range.
    """
    latest: dict[tuple[str, str, int, int], Record] = {}
    for w in windows:
        if w.get("model") != model:
            continue
        if version is not None and w.get("model_version") != version:
            continue
        key = window_key(w)
        latest[key] = merge_window_parts(latest.get(key), w)
    all_windows = sorted(latest.values(), key=lambda w: (w["window_start_ms"], w["window_end_ms"],
                                                          w.get("model_version", "")))  # fmt: skip
    chosen = [w for w in all_windows
              if in_range(w["window_start_ms"], w["window_end_ms"], start_ms, end_ms)]  # fmt: skip
    mine = [a for a in alerts if a.get("model") == model
            and (version is None or a.get("model_version", "") in ("", version))]  # fmt: skip
    in_window = [a for a in mine if (start_ms is None or alert_time(a) >= start_ms)
                 and (end_ms is None or alert_time(a) <= end_ms)]  # fmt: skip
    if version is None:
        versions = {w.get("model_version", "") for w in chosen}
        ref_version = versions.pop() if len(versions) == 1 else None
    else:
        ref_version = version
    refs = list(references)
    reference = latest_reference(refs, model, ref_version)
    if reference is None and version is None:
        reference = latest_reference(refs, model)
    return ReportData(
        model=model,
        windows=chosen,
        reference=reference,
        alerts=collapse_alerts(in_window),
        start_ms=start_ms,
        end_ms=end_ms,
        version=version,
        windows_total=len(all_windows),
        alerts_total=len(mine),
        generated_at_ms=now_ms,
    )
