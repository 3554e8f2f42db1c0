"""The simulator: seeded determinism, and phases change exactly what they claim to."""

from __future__ import annotations

import numpy as np
import pytest

from producers.simulator.model import DEFAULT_START_MS, NUMERIC_NAMES, generate
from producers.simulator.scenario import Scenario, ScenarioError

RATE, SPEEDUP = 1000.0, 60.0  # 60 ms of event time per event on average: 1000 ev/min


def _run(phases: list[dict], n: int = 40_000, seed: int = 1, labels: bool = False):
    sc = Scenario.from_dict({"phases": phases, "label_delay": {"median": "30s"}})
    return list(generate(sc, n, seed, rate=RATE, speedup=SPEEDUP, labels=labels))


def _cat(batches, attr):
    return np.concatenate([getattr(p, attr) for p, _ in batches if p is not None])


def _split(batches, at_s: float):
    """Rows before / after an event-time offset (mask over concatenated rows)."""
    t = _cat(batches, "event_time_ms")
    return (t - DEFAULT_START_MS) / 1000.0 < at_s


def _num(batches, name):
    return np.concatenate([p.numeric[name] for p, _ in batches if p is not None])


def test_same_seed_same_batches_other_seed_differs() -> None:
    a, b, c = _run([], 5000, 3), _run([], 5000, 3), _run([], 5000, 4)
    assert a[0][0].prediction_ids == b[0][0].prediction_ids
    assert np.array_equal(_num(a, "income"), _num(b, "income"))
    assert not np.array_equal(_num(a, "income"), _num(c, "income"))


def test_shape_of_a_batch() -> None:
    p = _run([], 2000)[0][0]
    assert set(p.numeric) == set(NUMERIC_NAMES) and len(p.numeric) == 20
    assert set(p.categorical) == {"plan", "channel", "payment_method", "country", "browser"}
    assert set(p.segments) == {"region", "device"}
    assert p.class_names == ["no_churn", "churn"]
    ok = p.status == 0
    assert np.allclose(p.class_probabilities[ok].sum(axis=1), 1.0)
    assert ((p.score[ok] >= 0.5) == (p.predicted_class.codes[ok] == 1)).all()
    assert len(set(p.prediction_ids)) == p.n


def test_numeric_shift_only_on_named_feature_and_only_after_start() -> None:
    b = _run([{"kind": "feature_drift", "start": "20m", "feature": "age", "shift": 15}])
    before = _split(b, 1200)
    age, income = _num(b, "age"), _num(b, "income")
    assert age[~before].mean() - age[before].mean() == pytest.approx(15, abs=0.6)
    assert income[~before].mean() == pytest.approx(income[before].mean(), rel=0.03)


def test_scale_and_missing_values() -> None:
    b = _run(
        [
            {
                "kind": "feature_drift",
                "start": "20m",
                "feature": "risk_index",
                "scale": 3,
                "missing_rate": 0.25,
            }
        ]
    )
    before = _split(b, 1200)
    x = _num(b, "risk_index")
    assert np.isnan(x[before]).sum() == 0
    assert np.isnan(x[~before]).mean() == pytest.approx(0.25, abs=0.02)
    assert np.nanstd(x[~before]) / np.nanstd(x[before]) == pytest.approx(3, rel=0.06)


def test_new_category_appears_only_after_start() -> None:
    b = _run(
        [
            {
                "kind": "feature_drift",
                "start": "20m",
                "feature": "channel",
                "new_category": "voice",
                "new_category_rate": 0.3,
            }
        ]
    )
    before = _split(b, 1200)
    vals = np.array(sum((p.categorical["channel"].values() for p, _ in b), []))
    assert (vals[before] == "voice").sum() == 0
    assert (vals[~before] == "voice").mean() == pytest.approx(0.3, abs=0.02)


def test_where_restricts_a_phase_to_a_segment() -> None:
    b = _run(
        [{"kind": "fallback_storm", "start": 0, "fallback_rate": 0.6, "where": {"region": "apac"}}]
    )
    status = _cat(b, "status")
    region = np.array(sum((p.segments["region"].values() for p, _ in b), []))
    assert (status[region == "apac"] == 2).mean() > 0.5
    assert (status[region != "apac"] == 2).mean() < 0.03


def test_prediction_drift_moves_scores_not_inputs() -> None:
    b = _run([{"kind": "prediction_drift", "start": "20m", "logit_shift": 2.0}])
    before, ok = _split(b, 1200), _cat(b, "status") == 0
    score = _cat(b, "score")
    assert score[~before & ok].mean() > score[before & ok].mean() + 0.2
    cs = _num(b, "credit_score")
    assert cs[~before].mean() == pytest.approx(cs[before].mean(), rel=0.01)


def test_concept_drift_changes_labels_and_lowers_accuracy_not_predictions() -> None:
    b = _run(
        [
            {
                "kind": "concept_drift",
                "start": "20m",
                "coefficients": {
                    "utilization": -0.9,
                    "days_since_login": -0.8,
                    "credit_score": 0.6,
                },
            }
        ],
        labels=True,
    )
    pred = {}
    for p, _ in b:
        if p is not None:
            for i, c, t in zip(
                p.prediction_ids,
                p.predicted_class.codes.tolist(),
                p.event_time_ms.tolist(),
                strict=True,
            ):
                pred[i] = (c, t)
    t0 = DEFAULT_START_MS
    hits = {True: [], False: []}
    n_labels = 0
    for _, lab in b:
        if lab is None:
            continue
        n_labels += lab.n
        for i, y, lt in zip(
            lab.prediction_ids,
            lab.label_class.codes.tolist(),
            lab.event_time_ms.tolist(),
            strict=True,
        ):
            c, t = pred[i]
            assert lt > t  # a label becomes known after its prediction
            if c >= 0:
                hits[(t - t0) / 1000 < 1200].append(c == y)
    assert n_labels == pytest.approx(0.9 * len(pred), rel=0.02)
    acc_before, acc_after = np.mean(hits[True]), np.mean(hits[False])
    assert acc_before > 0.85 and acc_after < acc_before - 0.2


def test_serving_incidents_latency_errors_outage() -> None:
    b = _run(
        [
            {"kind": "latency_spike", "start": "10m", "end": "20m", "factor": 6},
            {
                "kind": "error_burst",
                "start": "20m",
                "end": "30m",
                "error_rate": 0.3,
                "error_type": "Boom",
            },
            {"kind": "outage", "start": "30m", "end": "35m"},
        ]
    )
    t = _cat(b, "event_time_ms")
    off = (t - DEFAULT_START_MS) / 1000.0
    lat, status = _cat(b, "latency_ms"), _cat(b, "status")
    base, spike = (off < 600) & (status == 0), (off >= 600) & (off < 1200) & (status == 0)
    assert np.median(lat[spike]) / np.median(lat[base]) == pytest.approx(6, rel=0.1)
    burst = (off >= 1200) & (off < 1800)
    assert (status[burst] == 1).mean() == pytest.approx(0.3, abs=0.03)
    assert (status[off < 600] == 1).mean() < 0.02
    assert not ((off >= 1800) & (off < 2100)).any()  # outage: no traffic
    assert (off >= 2100).any()
    errs = sum((p.error_type.values() for p, _ in b if p is not None and p.error_type), [])
    assert "Boom" in errs


def test_shipped_scenarios_load_and_default_drifts_early() -> None:
    for name in ("default", "drift", "incident"):
        assert Scenario.load(name).phases
    default = Scenario.load("default")
    first_drift = min(p.start_s for p in default.phases if p.kind != "normal")
    assert first_drift / 30.0 <= 20.0  # at the demo's 30x, drift starts within 20 s wall
    drift = [p for p in default.phases if p.kind == "feature_drift"]
    assert len(drift) == 1 and drift[0].params["feature"] == "age"
    assert any(p.kind == "concept_drift" for p in default.phases)


def test_bad_scenarios_say_what_is_wrong() -> None:
    with pytest.raises(ScenarioError, match="kind"):
        Scenario.from_dict({"phases": [{"kind": "meteor"}]})
    with pytest.raises(ScenarioError, match="feature"):
        Scenario.from_dict({"phases": [{"kind": "feature_drift"}]})
    with pytest.raises(ScenarioError, match="duration"):
        Scenario.from_dict({"phases": [{"kind": "outage", "start": "soon"}]})


def test_generation_yields_exactly_the_events_asked_for() -> None:
    # its rate (~800k events/s) is measured in make bench (bench_sdk), not asserted here
    sc = Scenario.load("default")
    n = sum(p.n for p, _ in generate(sc, 200_000, 0, labels=True) if p is not None)
    assert n == 200_000
