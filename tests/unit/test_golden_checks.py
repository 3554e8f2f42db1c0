"""Golden-signal checks: error storms, fallback storms, latency SLO, heartbeat gaps."""

from __future__ import annotations

import numpy as np

from schemas.columnar import PredictionColumns
from stream_jobs.golden_checks import GoldenChecks, GoldenChecksConfig

T0 = 1_800_000_000_000


def batch(
    n: int,
    t_ms: int,
    error_share: float = 0.0,
    latency_ms: float = 20.0,
    fallback_share: float = 0.0,
):
    rng = np.random.default_rng(t_ms % 1000)
    status = np.zeros(n, dtype="i1")
    u = rng.random(n)
    status[u < error_share] = 1
    status[(u >= error_share) & (u < error_share + fallback_share)] = 2
    return PredictionColumns(
        model="m",
        model_version="1",
        prediction_ids=[str(i) for i in range(n)],
        event_time_ms=np.full(n, t_ms, dtype="<i8"),
        latency_ms=np.full(n, latency_ms),
        status=status,
    )


def verdicts(checks: GoldenChecks, now_s: float) -> dict[str, tuple[bool, float]]:
    return {str(d.kind): (d.active, d.value) for d in checks.evaluate(now_s)}


def test_error_storm_fires_and_recovers_over_the_span() -> None:
    checks = GoldenChecks(GoldenChecksConfig(span_ms=300_000))
    for minute in range(5):
        checks.observe(batch(1000, T0 + minute * 60_000, error_share=0.01), now_s=minute)
    assert verdicts(checks, 5)["error_rate"][0] is False
    for minute in range(5, 8):
        checks.observe(batch(1000, T0 + minute * 60_000, error_share=0.30), now_s=minute)
    active, value = verdicts(checks, 8)["error_rate"]
    assert active and 0.1 < value < 0.3
    for minute in range(8, 16):
        checks.observe(batch(1000, T0 + minute * 60_000, error_share=0.0), now_s=minute)
    assert verdicts(checks, 16)["error_rate"] == (False, 0.0)


def test_latency_slo_and_fallbacks() -> None:
    checks = GoldenChecks(GoldenChecksConfig(latency_p99_slo_ms=250))
    checks.observe(batch(500, T0, latency_ms=20), now_s=0)
    got = verdicts(checks, 1)
    assert got["latency_slo"][0] is False and got["fallback_rate"][0] is False
    checks.observe(batch(500, T0 + 1000, latency_ms=900, fallback_share=0.5), now_s=1)
    got = verdicts(checks, 2)
    assert got["latency_slo"][0] is True and got["latency_slo"][1] >= 900
    assert got["fallback_rate"][0] is True


def test_no_traffic_is_a_wall_clock_gap_and_small_spans_give_no_rate_verdict() -> None:
    checks = GoldenChecks(GoldenChecksConfig(no_traffic_after_s=30, min_events=100))
    checks.observe(batch(10, T0, error_share=1.0), now_s=100)
    got = verdicts(checks, 110)
    assert got == {"no_traffic": (False, 10)}  # 10 events: below min_events, no error verdict
    assert verdicts(checks, 131)["no_traffic"][0] is True
    checks.observe(batch(10, T0 + 1000), now_s=140)
    assert verdicts(checks, 141)["no_traffic"][0] is False


def named(n: int, t_ms: int, model: str, **kw) -> PredictionColumns:
    cols = batch(n, t_ms, **kw)
    cols.model = model
    return cols


def by_model(detections) -> dict[str, dict[str, tuple[bool, dict[str, str]]]]:
    out: dict[str, dict[str, tuple[bool, dict[str, str]]]] = {}
    for d in detections:
        out.setdefault(d.model, {})[str(d.kind)] = (d.active, d.details)
    return out


def test_a_typo_model_seen_once_never_pages_and_is_forgotten() -> None:
    forgotten: list[str] = []
    cfg = GoldenChecksConfig(no_traffic_after_s=30, no_traffic_min_events=10, forget_after_s=600)
    checks = GoldenChecks(cfg, on_forget=forgotten.append)
    checks.observe(named(1, T0, "churn-tpyo"), now_s=100)
    for now in (131, 400, 699):
        assert by_model(checks.evaluate(now))["churn-tpyo"]["no_traffic"][0] is False
    last = by_model(checks.evaluate(701))["churn-tpyo"]["no_traffic"]
    assert last == (False, {"events_in_span": "1", "events_seen": "1", "forgotten": "true"})
    assert forgotten == ["churn-tpyo"] and checks.models == {}
    assert checks.evaluate(800) == []  # gone: no verdict at all any more


def test_a_silent_model_pages_then_resolves_when_forgotten() -> None:
    forgotten: list[str] = []
    cfg = GoldenChecksConfig(no_traffic_after_s=30, min_events=100, forget_after_s=600)
    checks = GoldenChecks(cfg, on_forget=forgotten.append)
    checks.observe(named(500, T0, "fraud", error_share=0.5), now_s=100)
    checks.observe(named(500, T0, "churn"), now_s=100)
    got = by_model(checks.evaluate(200))
    assert got["fraud"]["no_traffic"][0] is True and got["fraud"]["error_rate"][0] is True
    checks.observe(named(500, T0 + 60_000, "churn"), now_s=650)  # churn keeps talking
    got = by_model(checks.evaluate(701))
    # fraud is forgotten: every verdict of its last evaluation is inactive (alerts resolve)
    assert {kind: v[0] for kind, v in got["fraud"].items()} == {
        "no_traffic": False, "error_rate": False, "fallback_rate": False, "latency_slo": False}
    assert forgotten == ["fraud"] and set(checks.models) == {"churn"}
    checks.observe(named(500, T0 + 120_000, "fraud"), now_s=702)  # back: a new life
    assert by_model(checks.evaluate(703))["fraud"]["no_traffic"][0] is False


def test_settings_are_strict() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        GoldenChecksConfig(forget_after=60)  # type: ignore[call-arg]


def test_forgetting_removes_the_models_series_from_the_worker_registry() -> None:
    from prometheus_client import CollectorRegistry

    from schemas.codec import default_codec
    from schemas.topics import TopicNames
    from stream_jobs.golden import GoldenSignals
    from stream_jobs.outputs import DetectionSink, GoldenChecksStage

    reg = CollectorRegistry()
    golden = GoldenSignals(reg)
    stage = GoldenChecksStage(
        GoldenChecks(GoldenChecksConfig(forget_after_s=600, min_events=10)),
        DetectionSink(default_codec(), TopicNames(), reg),
        every_s=0,
    )
    for model in ("gone", "kept"):
        cols = named(50, T0, model, error_share=1.0)
        golden.observe(cols, now_s=100)
        stage.checks.observe(cols, now_s=100)
    stage.poll(200)  # error_rate active for both: counted in modelwatch_detections_total
    stage.checks.observe(named(50, T0, "kept"), now_s=650)
    stage.poll(701)

    def models() -> set[str]:
        return {s.labels["model"] for fam in reg.collect() for s in fam.samples
                if "model" in s.labels}  # fmt: skip

    assert models() == {"kept"}
    assert reg.get_sample_value("modelwatch_models_forgotten_total") == 1
