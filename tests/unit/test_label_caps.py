"""Caps on producer-controlled label values (schemas/label_caps.py) under a hostile mix."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from schemas.codec import default_codec
from schemas.columnar import PredictionColumns
from schemas.detection import Detection, DetectionKind
from schemas.label_caps import OTHER, LabelCaps, LabelCapsConfig, caps_for
from schemas.topics import TopicNames
from stream_jobs.golden import GoldenSignals
from stream_jobs.outputs import DetectionSink


def batch(model: str, version: str, error_types: list[str]) -> PredictionColumns:
    return PredictionColumns.from_events([
        {"prediction_id": f"{model}-{version}-{i}", "model": model, "model_version": version,
         "event_time_ms": 60_000, "latency_ms": 10.0, "status": "error",
         "error_type": e, "request_bytes": 10, "response_bytes": 5}
        for i, e in enumerate(error_types)
    ])  # fmt: skip


def modelwatch_series(reg: CollectorRegistry) -> int:
    return sum(
        1
        for fam in reg.collect()
        if fam.name.startswith("modelwatch_")
        for s in fam.samples
        if not s.name.endswith("_created")
    )


def hostile(reg: CollectorRegistry, models: int, versions: int, errors: int) -> int:
    """Every (model, version) gets a batch of distinct error strings; returns predictions."""
    golden = GoldenSignals(reg)
    sink = DetectionSink(default_codec(), TopicNames(), reg)
    n = 0
    for m in range(models):
        for v in range(versions):
            kinds = [f"Err{m}-{v}-{k}: connection reset by peer #{k}" for k in range(errors)]
            golden.observe(batch(f"model-{m}", f"v{v}", kinds), now_s=61.0)
            sink.encode([Detection(f"model-{m}", DetectionKind.ERROR_RATE, "error_rate",
                                   "rate_over_span", 1.0, 0.05, 60_000)])  # fmt: skip
            n += errors
    return n


def test_a_hostile_mix_is_bounded_and_nothing_is_lost() -> None:
    cfg = LabelCapsConfig(models=4, versions=3, error_types=5)
    reg = CollectorRegistry()
    caps_for(reg, cfg)
    n = hostile(reg, models=10, versions=20, errors=25)  # 5,000 error strings, 200 versions
    series = modelwatch_series(reg)
    models = cfg.models + 1  # + other
    pairs = models * (cfg.versions + 1)
    # per (model, version): 1 status, error types (+ other), 11+2 latency buckets, 3 more
    # counters/gauges; per model: 12+2+1 delay histogram series, 1 detections series;
    # plus the capped counter's labels (model, version, error_type)
    bound = pairs * (1 + (cfg.error_types + 1) + 13 + 3) + models * (15 + 1) + 3 + 1 + 1
    assert series <= bound, (series, bound)
    assert series < 1_000  # uncapped, the same mix gives over 8,000 (next test)
    total = sum(s.value for fam in reg.collect() if fam.name == "modelwatch_predictions"
                for s in fam.samples if s.name.endswith("_total"))  # fmt: skip
    assert total == n  # the other bucket adds up, nothing dropped
    other = reg.get_sample_value("modelwatch_predictions_total",
                                 {"model": OTHER, "version": OTHER, "status": "error"})
    assert other == 6 * 20 * 25  # the six models past the cap, all versions
    capped = reg.get_sample_value("modelwatch_label_values_capped_total",
                                  {"label": "error_type"})  # fmt: skip
    assert capped and capped > 0


def test_the_same_mix_uncapped_explodes() -> None:
    """What the bound above is for: 5,000 error strings over 200 versions."""
    reg = CollectorRegistry()
    caps_for(reg, LabelCapsConfig(models=1_000, versions=1_000, error_types=10_000))
    hostile(reg, models=10, versions=20, errors=25)
    assert modelwatch_series(reg) > 8_000


def test_values_once_admitted_keep_their_series() -> None:
    caps = LabelCaps(LabelCapsConfig(error_types=2))
    assert [caps.error_type("m", "1", e) for e in ("a", "b", "c", "a", "b")] == [
        "a", "b", OTHER, "a", "b"]  # fmt: skip
    assert caps.error_type("m", "2", "c") == "c"  # per parent: another version, another budget


def test_forget_frees_slots_and_removes_the_models_series() -> None:
    reg = CollectorRegistry()
    caps = caps_for(reg, LabelCapsConfig(models=2))
    golden = GoldenSignals(reg)
    golden.observe(batch("a", "1", ["x"]), now_s=61.0)
    golden.observe(batch("b", "1", ["x"]), now_s=61.0)
    golden.observe(batch("c", "1", ["x"]), now_s=61.0)  # past the cap: other
    assert reg.get_sample_value("modelwatch_predictions_total",
                                {"model": "other", "version": "other", "status": "error"}) == 1
    caps.forget("a")
    models = {s.labels.get("model") for fam in reg.collect() for s in fam.samples}
    assert "a" not in models and "b" in models
    assert reg.get_sample_value("modelwatch_models_forgotten_total") == 1
    golden.observe(batch("c", "1", ["x"]), now_s=62.0)  # the freed slot goes to the next one
    assert reg.get_sample_value("modelwatch_predictions_total",
                                {"model": "c", "version": "1", "status": "error"}) == 1
    assert golden.latency.count(("c", "1")) == 1


def test_settings_are_strict() -> None:
    with pytest.raises(ValidationError):
        LabelCapsConfig(modles=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        LabelCapsConfig(models=0)
    reg = CollectorRegistry()
    caps_for(reg, LabelCapsConfig(models=3))
    assert caps_for(reg).config.models == 3
    with pytest.raises(ValueError, match="already configured"):
        caps_for(reg, LabelCapsConfig(models=4))


def test_latency_histogram_children_are_capped() -> None:
    reg = CollectorRegistry()
    caps_for(reg, LabelCapsConfig(models=1, versions=1))
    golden = GoldenSignals(reg)
    for m in range(5):
        golden.observe(batch(f"m{m}", f"v{m}", ["x"]), now_s=61.0)
    keys = set(golden.latency._counts)  # noqa: SLF001
    assert keys == {("m0", "v0"), ("other", "other")}
    assert int(np.sum([golden.latency.count(k) for k in keys])) == 5


def test_a_forgotten_models_label_series_go_until_it_joins_labels_again() -> None:
    from stream_jobs.join.config import LabelConfig
    from stream_jobs.join.engine import JoinResult, LabelEngine
    from stream_jobs.join.store import MemoryStore
    from stream_jobs.performance.metrics import LabelMetrics

    reg = CollectorRegistry()
    engine = LabelEngine(LabelConfig(), MemoryStore())
    engine._bump("m", "joined", 5, set())  # noqa: SLF001 - persisted totals to scrape
    engine.latest_closed[("m", "1")] = {"window_end_ms": 1, "performance": {"accuracy": 0.9}}
    labels = LabelMetrics(reg, engine)
    labels.observe_join(JoinResult(joined=1, delays_s={"m": np.array([3.0])}))
    assert reg.get_sample_value("modelwatch_labels_joined_total", {"model": "m"}) == 5
    caps_for(reg).forget("m")
    assert {s.labels.get("model") for f in reg.collect() for s in f.samples} <= {None}
    labels.observe_join(JoinResult(joined=1, delays_s={"m": np.array([4.0])}))
    assert reg.get_sample_value("modelwatch_labels_joined_total", {"model": "m"}) == 5
    assert reg.get_sample_value("modelwatch_label_delay_seconds_count", {"model": "m"}) == 1


def test_caps_come_from_the_settings_and_unknown_keys_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelwatch.settings import load_settings

    monkeypatch.setenv("MODELWATCH_LABEL_CAPS__ERROR_TYPES", "3")
    assert load_settings().label_caps == LabelCapsConfig(error_types=3)
    monkeypatch.setenv("MODELWATCH_LABEL_CAPS__ERRORTYPES", "3")
    with pytest.raises(ValidationError, match="errortypes"):
        load_settings()
