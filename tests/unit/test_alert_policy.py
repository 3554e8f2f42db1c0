"""Alert policy loading, merging and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.durations import format_duration_ms, parse_duration_ms
from alerting.policy import PolicyError, load_policy
from schemas.detection import DetectionKind


def test_defaults_cover_every_detection_kind_with_the_documented_severity() -> None:
    policy = load_policy()
    expected = {
        "critical": {"no_traffic", "error_rate", "performance_collapse"},
        "major": {"prediction_drift", "label_drift", "dataset_drift", "concept_drift",
                  "latency_slo", "fallback_rate"},
        "minor": {"feature_drift", "missing_rate", "out_of_range", "unseen_category",
                  "type_violation", "schema_invalid"},
    }
    for severity, kinds in expected.items():
        for kind in kinds:
            assert policy.rule(kind).severity == severity, kind
    assert {k.value for k in DetectionKind} == set(policy.rules)
    assert policy.rule("error_rate").min_value == 0.05
    assert policy.rule("error_rate").for_ms == 5 * 60_000
    assert policy.rule("dataset_drift").min_value == 0.5
    assert policy.rule("dataset_drift").action == "retrain"
    assert policy.rule("feature_drift").runbook_url.startswith("https://")


def test_min_value_turns_low_values_inactive() -> None:
    rule = load_policy().rule("error_rate")
    assert rule.is_active(True, 0.06)
    assert not rule.is_active(True, 0.04)
    assert not rule.is_active(False, 0.5)


def test_user_file_merges_over_defaults(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(
        "defaults: {keep_firing_for: 30s}\n"
        "rules:\n"
        "  feature_drift: {severity: major, labels: {team: growth}}\n"
        "  schema_invalid: {enabled: false}\n"
    )
    policy = load_policy(f)
    rule = policy.rule("feature_drift")
    assert rule.severity == "major"
    assert rule.labels == {"team": "growth"}
    assert rule.for_ms == 10 * 60_000  # untouched key kept from the defaults
    assert rule.keep_firing_for_ms == 30_000  # defaults.keep_firing_for applies
    assert policy.rule("schema_invalid") is None
    assert policy.rule("no_traffic").severity == "critical"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rules: {no_such_kind: {severity: minor}}", "unknown detection kind"),
        ("rules: {feature_drift: {severity: urgent}}", "severity must be one of"),
        ("rules: {feature_drift: {fro: 5m}}", "unknown keys"),
        ("rules: {feature_drift: {for: soon}}", "not a duration"),
        ("rules: {feature_drift: {action: page_ceo}}", "action must be one of"),
        ("rulez: {}", "unknown top-level keys"),
    ],
)
def test_bad_user_file_is_a_clear_error_at_load(tmp_path: Path, body: str, message: str) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(body)
    with pytest.raises(PolicyError, match=message):
        load_policy(f)


def test_missing_policy_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")


def test_durations() -> None:
    assert parse_duration_ms("90s") == 90_000
    assert parse_duration_ms("2h") == 7_200_000
    assert parse_duration_ms(0) == 0
    assert format_duration_ms(7_200_000) == "2h"
    for bad in ("", "5 minutes", "m5", "-1", True):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
