"""The HTML drift report from hand-built records (no Kafka): content, order, escaping."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from datasketches import kll_doubles_sketch

from modelwatch.report.data import ReportData, drift_score, parse_time, select
from modelwatch.report.render import collect_columns, render_report
from schemas.codec import default_codec

MODEL = "churn"
T0 = 1_795_000_000_000  # 2026-11-18
WINDOW_MS = 300_000
EVIL = "<script>alert(1)</script>"


def _sketch(values: np.ndarray) -> bytes:
    s = kll_doubles_sketch(200)
    s.update(values.astype(float))
    return s.serialize()


def numeric_column(name: str, values: np.ndarray, missing: int = 0) -> dict[str, Any]:
    """A ``ColumnWindow`` of numeric ``values`` with a real KLL sketch."""
    qs = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
    return {
        "name": name, "kind": "numeric", "count": len(values) + missing, "missing": missing,
        "mean": float(values.mean()), "std": float(values.std()),
        "min": float(values.min()), "max": float(values.max()),
        "quantiles": {k: float(np.quantile(values, q)) for k, q in qs.items()},
        "kll_sketch": _sketch(values), "categories": {}, "out_of_range": 0,
        "unseen_categories": 0,
    }  # fmt: skip


def categorical_column(name: str, counts: dict[str, int]) -> dict[str, Any]:
    """A categorical ``ColumnWindow``."""
    return {
        "name": name, "kind": "categorical", "count": sum(counts.values()), "missing": 0,
        "mean": None, "std": None, "min": None, "max": None, "quantiles": {},
        "kll_sketch": None, "categories": counts, "out_of_range": 0, "unseen_categories": 0,
    }  # fmt: skip


def profile_column(name: str, kind: str, values: np.ndarray | None = None,
                   counts: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """A ``ColumnProfile`` of the reference."""
    if kind == "numeric":
        assert values is not None
        return {
            "name": name, "kind": "numeric", "count": len(values), "missing": 0,
            "mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max()), "unique": len(values),
            "kll_sketch": _sketch(values), "categories": {},
        }  # fmt: skip
    assert counts is not None
    return {
        "name": name, "kind": "categorical", "count": sum(counts.values()), "missing": 0,
        "mean": None, "std": None, "min": None, "max": None, "unique": len(counts),
        "kll_sketch": None, "categories": counts,
    }  # fmt: skip


def make_reference(model: str = MODEL, created_at_ms: int = T0 - 86_400_000) -> dict[str, Any]:
    """A ``ReferenceProfile`` with numeric ``age``/``income``/EVIL and categorical ``plan``."""
    rng = np.random.default_rng(1)
    return {
        "model": model, "model_version": "", "created_at_ms": created_at_ms,
        "source": "train.parquet",
        "features": [
            profile_column("age", "numeric", rng.normal(40, 10, 5000)),
            profile_column("income", "numeric", rng.lognormal(10, 0.5, 5000)),
            profile_column("plan", "categorical",
                           counts={"basic": 3000, "pro": 1500, "enterprise": 500}),
            profile_column(EVIL, "numeric", rng.uniform(0, 1, 5000)),
        ],
        "prediction": profile_column("prediction", "numeric", rng.beta(2, 5, 5000)),
        "label": None,
        "performance": {"accuracy": 0.9},
    }  # fmt: skip


def make_windows(n: int = 6, model: str = MODEL, drift_from: int = 3) -> list[dict[str, Any]]:
    """``n`` consecutive 5-minute ``WindowStats``; ``age`` and ``plan`` drift from window
    ``drift_from`` on, ``income`` and EVIL never do."""
    rng = np.random.default_rng(2)
    out = []
    for i in range(n):
        drifting = i >= drift_from
        age = rng.normal(55 if drifting else 40, 10, 800)
        plan = {"basic": 200, "pro": 200, "enterprise": 400} if drifting else \
            {"basic": 480, "pro": 240, "enterprise": 80}  # fmt: skip
        verdicts = [
            {"column": "age", "test": "ks", "statistic": 0.5 if drifting else 0.03,
             "p_value": 1e-12 if drifting else 0.6, "threshold": 0.05, "drifted": drifting},
            {"column": "income", "test": "wasserstein", "statistic": 0.02, "p_value": None,
             "threshold": 0.1, "drifted": False},
            {"column": "plan", "test": "jensenshannon", "statistic": 0.3 if drifting else 0.01,
             "p_value": None, "threshold": 0.1, "drifted": drifting},
            {"column": EVIL, "test": "ks", "statistic": 0.02, "p_value": 0.9,
             "threshold": 0.05, "drifted": False},
        ]  # fmt: skip
        out.append({
            "model": model, "model_version": "v1",
            "window_start_ms": T0 + i * WINDOW_MS, "window_end_ms": T0 + (i + 1) * WINDOW_MS,
            "count": 800, "errors": 3 * i, "fallbacks": i, "late_events": 0,
            "features": [
                numeric_column("age", age),
                numeric_column("income", rng.lognormal(10, 0.5, 800), missing=8),
                categorical_column("plan", plan),
                numeric_column(EVIL, rng.uniform(0, 1, 800)),
            ],
            "prediction": numeric_column("prediction", rng.beta(2, 5, 800)),
            "label": None,
            "performance": {"accuracy": 0.9 - 0.05 * drifting, "f1": 0.8 - 0.1 * drifting},
            "drift": verdicts, "drift_share": 0.5 if drifting else 0.0,
            "dataset_drift": drifting,
        })  # fmt: skip
    return out


def make_alerts(model: str = MODEL) -> list[dict[str, Any]]:
    """A firing ``age`` drift alert, a fired-then-resolved ``plan`` one, one of another model."""
    base = {
        "model_version": "v1", "severity": "minor", "detector": "ks", "value": 1e-12,
        "threshold": 0.05, "window_start_ms": None, "window_end_ms": None,
        "resolved_at_ms": None, "runbook_url": None, "labels": {},
    }  # fmt: skip
    t = T0 + 4 * WINDOW_MS
    return [
        {**base, "alert_id": "a-age", "fingerprint": "f-age", "model": model,
         "status": "firing", "kind": "feature_drift", "subject": "age",
         "detected_at_ms": t, "fired_at_ms": t + 1000,
         "summary": "age drifted <b>badly</b>"},
        {**base, "alert_id": "a-plan", "fingerprint": "f-plan", "model": model,
         "status": "firing", "kind": "feature_drift", "subject": "plan",
         "detected_at_ms": t, "fired_at_ms": t + 1000, "summary": "plan drifted",
         "severity": "major"},
        {**base, "alert_id": "a-plan", "fingerprint": "f-plan", "model": model,
         "status": "resolved", "kind": "feature_drift", "subject": "plan",
         "detected_at_ms": t + WINDOW_MS, "fired_at_ms": t + 1000,
         "resolved_at_ms": t + WINDOW_MS + 1000, "summary": "plan drifted",
         "severity": "major"},
        {**base, "alert_id": "a-other", "fingerprint": "f-o", "model": "other-model",
         "status": "firing", "kind": "no_traffic", "subject": "traffic",
         "detected_at_ms": t, "fired_at_ms": t, "summary": "OTHER MODEL ALERT"},
    ]  # fmt: skip


def make_data(**kw: Any) -> ReportData:
    """The synthetic scenario, selected for :data:`MODEL`."""
    return select(MODEL, make_windows(), [make_reference()], make_alerts(),
                  now_ms=T0 + 10 * WINDOW_MS, **kw)  # fmt: skip


def test_records_are_valid_against_the_schemas() -> None:
    """The synthetic records are the real contract: they round-trip through the codec."""
    codec = default_codec()
    for name, recs in (("WindowStats", make_windows()), ("ReferenceProfile", [make_reference()]),
                       ("AlertEvent", make_alerts())):  # fmt: skip
        for r in recs:
            assert codec.decode(codec.encode(name, r)).name == name


def test_page_has_every_feature_and_flags_the_drifted_ones() -> None:
    page = render_report(make_data())
    cards = re.findall(r'data-feature="([^"]*)" data-drifted="(true|false)"', page)
    flags = dict(cards)
    assert set(flags) >= {
        "age",
        "income",
        "plan",
        "prediction",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
    }
    assert flags["age"] == "true" and flags["plan"] == "true"
    assert flags["income"] == "false" and flags["prediction"] == "false"
    assert page.count("DRIFTED</span>") == 2
    # most drifted first: the two drifted features lead the list
    assert [name for name, _ in cards[:2]] == ["age", "plan"]


def test_column_order_follows_the_latest_drift_score() -> None:
    cols = collect_columns(make_data())
    scores = [c.latest.score for c in cols if c.latest]
    assert scores == sorted(scores, reverse=True)
    assert [c.display for c in cols[:2]] == ["age", "plan"]
    assert cols[-1].latest is None  # the prediction has no verdict here: last


def test_charts_sections_and_alerts_are_present() -> None:
    page = render_report(make_data())
    for heading in ("Drift overview", "Drift share over time", "Performance over time",
                    "Golden signals per window", "Alerts in range (2)"):  # fmt: skip
        assert heading in page
    assert page.count("<svg") >= 4 * 2 + 4  # two charts per feature card + overview charts
    assert "accuracy" in page and "f1" in page
    rows = re.findall(r'<tr class="alert sev-(\w+)">', page)
    assert rows == ["minor", "major"]  # one row per episode; the other model's alert is out
    assert "OTHER MODEL ALERT" not in page
    assert 'class="status-resolved">resolved' in page
    # 18 errors of 4800 events in total
    assert "45 errors" in page  # 0+3+6+9+12+15


def test_numeric_cards_draw_histograms_from_the_sketches() -> None:
    page = render_report(make_data())
    age = page.split('data-feature="age"')[1].split("</section>")[0]
    assert "reference vs current distribution" in age
    assert age.count('fill="#94a3b8" fill-opacity="0.6"') == 30  # 30 reference bins
    plan = page.split('data-feature="plan"')[1].split("</section>")[0]
    for cat in ("basic", "pro", "enterprise"):
        assert f">{cat}</text>" in plan


def test_user_strings_are_escaped() -> None:
    page = render_report(make_data())
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>badly</b>" not in page and "&lt;b&gt;badly&lt;/b&gt;" in page
    evil_model = select(EVIL, [dict(w, model=EVIL) for w in make_windows()], [], [])
    assert "<script" not in render_report(evil_model).lower()


def test_page_is_self_contained() -> None:
    page = render_report(make_data())
    assert not re.search(r"\bsrc\s*=|<link\b|@import|url\(|https?://", page, re.I)
    assert "<script" not in page


def test_empty_range_says_so() -> None:
    data = make_data(start_ms=T0 + 100 * WINDOW_MS)
    assert data.windows == [] and data.windows_total == 6 and data.has_any_data
    page = render_report(data)
    assert 'id="empty-range"' in page and "No window statistics in this range" in page
    assert "6 window(s) exist" in page


def test_range_filter_keeps_overlapping_windows_and_alerts_in_range() -> None:
    data = make_data(start_ms=T0 + 2 * WINDOW_MS, end_ms=T0 + 3 * WINDOW_MS)
    assert [w["window_start_ms"] for w in data.windows] == [T0 + 2 * WINDOW_MS,
                                                            T0 + 3 * WINDOW_MS]  # fmt: skip
    assert data.alerts == []  # both alerts were detected after the range


def test_replayed_windows_are_deduplicated_last_one_wins() -> None:
    ws = make_windows()
    again = dict(ws[0], count=999)
    data = select(MODEL, [*ws, again], [], [])
    assert len(data.windows) == 6 and data.windows[0]["count"] == 999


def test_latest_reference_wins_and_version_specific_is_preferred() -> None:
    old, new = make_reference(created_at_ms=1), make_reference(created_at_ms=2)
    v1 = dict(make_reference(created_at_ms=0), model_version="v1", source="v1-only")
    assert select(MODEL, make_windows(), [new, old], []).reference is not None
    assert select(MODEL, make_windows(), [old, new], []).reference["created_at_ms"] == 2
    assert select(MODEL, make_windows(), [new, v1], []).reference["source"] == "v1-only"
    assert select(MODEL, [], [dict(new, model="x")], []).reference is None


def test_no_data_at_all() -> None:
    data = select("nobody", make_windows(), [make_reference()], make_alerts())
    assert not data.has_any_data


def test_windows_without_sketches_fall_back_to_quantiles() -> None:
    ws = make_windows()
    for w in ws:
        for f in w["features"]:
            f["kll_sketch"] = None
    page = render_report(select(MODEL, ws, [make_reference()], []))
    age = page.split('data-feature="age"')[1].split("</section>")[0]
    assert "reference p50" in age and "current p50" in age


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1795000000000", 1_795_000_000_000), ("2026-11-18T00:00:00Z", 1_794_960_000_000),
     ("2026-11-18T01:00:00+01:00", 1_794_960_000_000), ("2026-11-18", 1_794_960_000_000)],
)  # fmt: skip
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text) == expected


def test_parse_time_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="epoch milliseconds or an ISO datetime"):
        parse_time("yesterday")


def test_drift_score_is_one_at_the_threshold() -> None:
    assert drift_score({"statistic": 0.1, "p_value": None, "threshold": 0.1}) == 1.0
    assert drift_score({"statistic": 0.3, "p_value": 0.05, "threshold": 0.05}) == 1.0
    assert drift_score({"statistic": 0.3, "p_value": 1.0, "threshold": 0.05}) == 0.0
    assert drift_score({"statistic": 0.3, "p_value": 0.0, "threshold": 0.05}) > 100


def test_wrong_kind_duplicates_do_not_spoil_the_distribution() -> None:
    ws = make_windows()
    for w in ws:  # "age" also arrived as strings: the worker adds a categorical twin
        w["features"].append(categorical_column("age", {"forty": 5}))
    page = render_report(select(MODEL, ws, [make_reference()], []))
    age = page.split('data-feature="age"')[1].split("</section>")[0]
    assert age.count('fill="#94a3b8" fill-opacity="0.6"') == 30  # still a histogram
    assert "30 values of the wrong kind" in age


def test_renders_what_the_real_drift_engine_emits() -> None:
    """Contract check against the producer of ``WindowStats``: the stream_jobs engine."""
    from stream_jobs.drift import DriftConfig, DriftEngine
    from stream_jobs.drift.synthetic import SyntheticStream

    stream = SyntheticStream(n_numeric=3, n_categorical=1, rate_per_s=100, seed=3, model=MODEL)
    engine = DriftEngine(DriftConfig())
    reference = stream.reference(n=5_000)
    engine.set_reference(reference)
    offset = -1
    for minute in range(4):
        if minute == 2:
            stream.shift["f1"] = 3.0
        for half in range(2):
            t0 = minute * 60_000 + half * 30_000
            offset += 1
            engine.observe(0, offset, stream.batch(t0, 3_000))
    closed = engine.flush()
    assert len(closed) >= 3
    codec = default_codec()
    windows = [codec.decode(codec.encode("WindowStats", w.stats)).record for w in closed]
    ref = codec.decode(codec.encode("ReferenceProfile", reference)).record
    page = render_report(select(MODEL, windows, [ref], []))
    flags = dict(re.findall(r'data-feature="([^"]*)" data-drifted="(true|false)"', page))
    assert flags["f1"] == "true", flags
    assert {k for k, v in flags.items() if v == "true"} == {"f1"}
    assert {"f0", "f2", "c0", "prediction"} <= set(flags)
    first = re.search(r'data-feature="([^"]*)"', page)
    assert first is not None and first.group(1) == "f1"


def test_two_versions_get_one_series_each_and_a_legend() -> None:
    v1 = make_windows()
    v2 = [dict(w, model_version="v2") for w in make_windows()]
    data = select(MODEL, [*v1, *v2], [make_reference()], [])
    assert len(data.windows) == 12
    page = render_report(data)
    assert "version v1" in page and "version v2" in page
    age = page.split('data-feature="age"')[1].split("</section>")[0]
    score_chart = age.split("Drift score over time")[1]
    assert score_chart.count("<polyline") == 2  # one line per version
    only_v2 = select(MODEL, [*v1, *v2], [make_reference()], [], version="v2")
    assert {w["model_version"] for w in only_v2.windows} == {"v2"}


def test_without_a_reference_the_page_still_renders() -> None:
    ws = make_windows()
    for w in ws:
        w["drift"], w["drift_share"], w["dataset_drift"] = [], None, False
    page = render_report(select(MODEL, ws, [], []))
    assert "Reference: none found" in page
    assert "No drift verdicts in this range" in page
    assert page.count('data-drifted="false"') == 5 and "DRIFTED</span>" not in page
    assert "not judged" in page
