"""Prometheus configuration, recording rules and alerting rules (infra/prometheus).

Runs the real ``promtool`` (Debian package ``prometheus``): ``check config``, ``check rules``
and ``test rules``; and checks statically that every alerting rule has a severity and a unit
test that shows it both firing and not firing.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.policy import load_policy
from alerting.sinks import alertmanager as alertmanager_sink
from schemas import metrics_catalogue as catalogue
from schemas.detection import DetectionKind
from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "infra" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
SEVERITIES = {"critical", "major", "minor"}
# level:metric:operations (https://prometheus.io/docs/practices/rules/)
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z_]+:[a-z0-9_]+$")
TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")

metrics_reference = infra.metrics_reference()
rules_generator = infra.rules()


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; CI installs it)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def rules(kind: str) -> list[dict[str, Any]]:
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend(r for r in group["rules"] if kind in r)
    return out


def metric_tokens(expr: str) -> set[str]:
    """Metric-like names in a PromQL expression (label values and functions left out)."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_by = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_labels
    )
    return {
        t
        for t in TOKEN.findall(without_by)
        if t.startswith(("modelwatch_", "process_")) or ":" in t or t in {"up", "ALERTS"}
    }


def test_rule_and_test_files_exist() -> None:
    assert {p.name for p in RULE_FILES} == {"recording.yml", "alerts.yml"}
    assert TEST_FILES, "no promtool unit tests in infra/prometheus/tests"


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_promtool_check_config(config: str) -> None:
    res = run(promtool(), "check", "config", str(PROM / config))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_promtool_check_rules() -> None:
    res = run(promtool(), "check", "rules", *map(str, RULE_FILES))
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_test_rules() -> None:
    res = run(promtool(), "test", "rules", *map(str, TEST_FILES))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_configs_load_the_rule_files() -> None:
    for config in ("prometheus.yml", "prometheus.local.yml"):
        conf = yaml.safe_load((PROM / config).read_text())
        loaded = {(PROM / f).resolve() for f in conf["rule_files"]}
        assert loaded == {p.resolve() for p in RULE_FILES}, config
        jobs = {s["job_name"] for s in conf["scrape_configs"]}
        assert set(metrics_reference.JOBS.values()) <= jobs, config


def test_every_alert_has_a_severity_and_annotations() -> None:
    alerts = rules("alert")
    assert len({a["alert"] for a in alerts}) == len(alerts), "duplicate alert names"
    for a in alerts:
        assert a.get("labels", {}).get("severity") in SEVERITIES, a["alert"]
        assert {"summary", "description"} <= set(a.get("annotations", {})), a["alert"]


def test_the_required_alerts_exist() -> None:
    exprs = {a["alert"]: a["expr"] for a in rules("alert")}
    # InstanceDown / HighCPU and the pipeline conditions only Prometheus can see
    wanted = {
        "ModelwatchWorkerDown": "up{",
        "ModelwatchWorkersAbsent": "absent(up{",
        "ModelwatchNotifierDown": "up{",
        "ModelwatchConsumerLagGrowing": "modelwatch_consumer_lag",
        "ModelwatchDeadLetters": "modelwatch_dead_letters",
        "ModelwatchNotificationDeadLetters": "modelwatch_notification_dead_letters",
        "ModelwatchHighCPU": "process_cpu_seconds",
    }
    for name, needle in wanted.items():
        assert name in exprs, name
        assert needle in exprs[name], (name, exprs[name])


# metric groups of the catalogue whose conditions the worker turns into detections
DETECTED_GROUPS = {"golden signals", "drift", "performance"}


def _metrics_read(expr: str, recorded: dict[str, str]) -> set[str]:
    """Catalogue metric names an expression reads, through recording rules."""
    series_of = {s: m.name for m in catalogue.CATALOGUE for s in m.series_names}
    out: set[str] = set()
    for token in metric_tokens(expr):
        if token in recorded:
            out |= _metrics_read(recorded[token], recorded)
        elif token in series_of:
            out.add(series_of[token])
    return out


def test_one_paging_path() -> None:
    """Every alert condition pages through exactly one path: Prometheus rules for the
    processes and the pipeline, the modelwatch notifier for every detection kind."""
    recorded = {r["record"]: r["expr"] for r in rules("record")}
    paths: dict[str, list[str]] = {}
    for alert in rules("alert"):
        assert alert["labels"].get("source") == "prometheus", alert["alert"]
        read = _metrics_read(alert["expr"], recorded)
        detected = {m for m in read if catalogue.spec(m).group in DETECTED_GROUPS}
        assert detected == set(), (
            f"{alert['alert']} reads {sorted(detected)}: the worker already detects that "
            "condition and the notifier pages on it"
        )
        paths.setdefault(alert["alert"], []).append("prometheus")
    policy = load_policy()
    for kind in DetectionKind:
        rule = policy.rule(str(kind))
        assert rule is not None and rule.severity in SEVERITIES, kind
        paths.setdefault(str(kind), []).append("notifier")
    assert {c: p for c, p in paths.items() if len(p) != 1} == {}
    # the notifier's Alertmanager alerts are told apart from Prometheus's
    assert "source" in inspect.getsource(alertmanager_sink.am_alert)


def test_shipped_rule_files_are_the_generated_ones() -> None:
    assert rules_generator.stale() == []


def test_job_names_are_set_at_generation_time(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(PROM / "generate.py"), "--out", str(tmp_path),
         "--worker-job", "mw-w", "--notifier-job", "mw-n"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = "".join(p.read_text() for p in sorted(tmp_path.glob("*.yml")))
    assert 'up{job="mw-w"}' in text and 'up{job="mw-n"}' in text
    assert "modelwatch-worker" not in text and "modelwatch-notifier" not in text
    check = run(promtool(), "check", "rules", *map(str, sorted(tmp_path.glob("*.yml"))))
    assert check.returncode == 0, check.stdout + check.stderr
    stale = subprocess.run(
        [sys.executable, str(PROM / "generate.py"), "--check", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert stale.returncode == 1  # files for other jobs are not the defaults


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {a["alert"] for a in rules("alert")}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested not firing"


def test_recording_rule_names_follow_the_convention() -> None:
    records = [r["record"] for r in rules("record")]
    assert len(set(records)) == len(records), "duplicate recording rules"
    for name in records:
        assert RECORD_NAME.match(name), name


def test_rules_use_only_known_metrics() -> None:
    known = catalogue.known_series_names()
    recorded = {r["record"] for r in rules("record")}
    for rule in rules("record") + rules("alert"):
        for token in metric_tokens(rule["expr"]):
            assert token in known or token in recorded, (token, rule.get("record") or rule["alert"])


def test_metric_tokens_sees_through_selectors() -> None:
    expr = 'sum by (model, le) (rate(modelwatch_x_bucket{model=~"a:b"}[5m])) / lvl:m:op'
    assert metric_tokens(expr) == {"modelwatch_x_bucket", "lvl:m:op"}
