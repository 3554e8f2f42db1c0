"""Alertmanager configuration (infra/alertmanager/alertmanager.yml).

``amtool check-config`` and ``amtool config routes test`` (Debian package
``prometheus-alertmanager``), plus a check that the per-severity timings mirror the
notifier's default routes (alerting/default_routes.yaml).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "infra" / "alertmanager" / "alertmanager.yml"
NOTIFIER_ROUTES = ROOT / "alerting" / "default_routes.yaml"
TIMINGS = ("group_wait", "group_interval", "repeat_interval")


def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.skip(
            "amtool not installed (Debian package `prometheus-alertmanager`; CI installs it)"
        )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, check=False)


def severity_routes() -> dict[str, dict[str, Any]]:
    conf = yaml.safe_load(CONFIG.read_text())
    out = {}
    for route in conf["route"]["routes"]:
        (matcher,) = route["matchers"]
        assert matcher.startswith('severity="'), matcher
        out[matcher.split('"')[1]] = route
    return out


def test_amtool_check_config() -> None:
    res = run(amtool(), "check-config", str(CONFIG))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "model=churn"], "modelwatch-critical"),
        (["severity=major", "model=churn"], "modelwatch-major"),
        (["severity=minor", "model=churn"], "modelwatch-minor"),
        (["alertname=Watchdog"], "modelwatch-default"),
    ],
)
def test_routes_by_severity(labels: list[str], receiver: str) -> None:
    res = run(amtool(), "config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == receiver


def test_timings_mirror_the_notifier_defaults() -> None:
    notifier = yaml.safe_load(NOTIFIER_ROUTES.read_text())
    ours = severity_routes()
    assert set(ours) == {"critical", "major", "minor"}
    for route in notifier["routes"]:
        (severity,) = route["match"]["severity"]
        for key in TIMINGS:
            assert ours[severity][key] == route[key], (severity, key)


def test_critical_inhibits_major_and_minor_of_the_same_model() -> None:
    conf = yaml.safe_load(CONFIG.read_text())
    (rule,) = conf["inhibit_rules"]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity=~"major|minor"']
    assert rule["equal"] == ["model"]


def test_every_receiver_is_a_webhook_and_used() -> None:
    conf = yaml.safe_load(CONFIG.read_text())
    receivers = {r["name"]: r for r in conf["receivers"]}
    used = {conf["route"]["receiver"]} | {r["receiver"] for r in conf["route"]["routes"]}
    assert used == set(receivers)
    for r in receivers.values():
        assert r["webhook_configs"][0]["url"].startswith("http"), r["name"]
