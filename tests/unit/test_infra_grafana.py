"""Grafana dashboards as code (infra/grafana).

The committed JSON must be exactly what ``infra/grafana/generate.py`` writes; every panel
expression must parse as PromQL (checked by ``promtool check rules`` on a generated rule
file) and use only known metrics and recording rules; the provisioning files must point at
what docker-compose.yml mounts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schemas import metrics_catalogue as catalogue
from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra" / "grafana"
EXPECTED = {"overview", "drift", "performance", "alerts", "pipeline"}

gen = infra.dashboards()


def dashboards() -> dict[str, dict]:
    paths = sorted((GRAFANA / "dashboards").glob("*.json"))
    return {p.stem: json.loads(p.read_text()) for p in paths}


def recorded_names() -> set[str]:
    out = set()
    for path in (ROOT / "infra" / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out |= {r["record"] for r in group["rules"] if "record" in r}
    return out


def test_committed_json_is_what_the_generator_writes(tmp_path: Path) -> None:
    assert set(dashboards()) == EXPECTED
    assert gen.stale() == [], "run: .venv/bin/python infra/grafana/generate.py"
    gen.write(tmp_path)
    for name in EXPECTED:
        committed = (GRAFANA / "dashboards" / f"{name}.json").read_text()
        assert (tmp_path / f"{name}.json").read_text() == committed, name


def test_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    gen.write(tmp_path)
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0
    path = tmp_path / "drift.json"
    path.write_text(path.read_text().replace("Drift share", "Drift shar"))
    assert gen.stale(tmp_path) == ["drift"]
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1


def test_dashboards_have_model_and_version_variables() -> None:
    uids = set()
    for name, board in dashboards().items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert {"datasource", "model", "version"} <= set(variables), name
        assert variables["model"]["definition"].startswith("label_values("), name
        assert "$model" in variables["version"]["definition"], name
        assert board["uid"] not in uids
        uids.add(board["uid"])
        assert "modelwatch" in board["tags"]


def test_panels_are_laid_out_on_the_grid() -> None:
    for name, board in dashboards().items():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for p in board["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24, (name, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, (name, p["title"], "overlaps")
                    cells.add((x, y))
            if p["type"] != "row":
                assert p["targets"], (name, p["title"])
                assert p["datasource"]["uid"] == "${datasource}"


def test_the_dashboards_show_what_the_issue_asks_for() -> None:
    exprs: dict[str, str] = {}
    for board, _panel, expr in gen.all_expressions():
        exprs[board] = exprs.get(board, "") + "\n" + expr
    wanted = {
        "overview": [
            "modelwatch_predictions",
            "latency_seconds:p99",
            "errors",
            "processing_delay",
            "consumer_lag",
        ],
        "drift": [
            "modelwatch_feature_drift_score",
            "modelwatch_drift_share_ratio",
            "modelwatch_detections_total",
        ],
        "performance": ["accuracy", "f1", "mae", "label_delay", "label_join_ratio"],
        "alerts": ["modelwatch_alerts_firing", "ALERTS"],
        "pipeline": [
            "events_processed",
            "consumer_lag",
            "processing_delay",
            "dead_letters",
            "rebalances",
        ],
    }
    for board, needles in wanted.items():
        for needle in needles:
            assert needle in exprs[board], (board, needle)
    drift = dashboards()["drift"]
    annotations = [a for a in drift["annotations"]["list"] if a.get("expr")]
    assert any("modelwatch_detections_total" in a["expr"] for a in annotations)
    assert any(p.get("repeat") == "feature" for p in drift["panels"])


def test_all_expressions_covers_every_target() -> None:
    listed = {(b, p, e) for b, p, e in gen.all_expressions()}
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert (name, panel["title"], target["expr"]) in listed


def test_substitute_replaces_every_variable() -> None:
    for _b, _p, expr in gen.all_expressions():
        assert "$" not in gen.substitute(expr), expr
    assert gen.substitute('x{model=~"${model}"}[$__rate_interval]', {"model": "a"}) == (
        'x{model=~"a"}[1m]'
    )
    with pytest.raises(KeyError):
        gen.substitute("$nope")


def test_expressions_use_known_metrics_and_recording_rules() -> None:
    known = catalogue.known_series_names() | recorded_names() | {"ALERTS"}
    token = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
    for board, panel, expr in gen.all_expressions():
        text = re.sub(r'"[^"]*"', '""', gen.substitute(expr))
        text = re.sub(r"\{[^}]*\}", "{}", text)
        for t in token.findall(text):
            if t.startswith(("modelwatch_", "process_")) or ":" in t:
                assert t in known, (board, panel, t)


def test_every_expression_parses_as_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; CI installs it)")
    rules = [
        {"record": f"dashboard:expr_{i}:check", "expr": gen.substitute(expr)}
        for i, (_b, _p, expr) in enumerate(gen.all_expressions())
    ]
    path = tmp_path / "dashboard_exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    res = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(rules)} rules found" in res.stdout


def test_provisioning_matches_compose_mounts() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        src, dst = volume.split(":")[:2]
        mounts[dst] = src
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/modelwatch.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert (ROOT / mounts[path]).resolve() == (GRAFANA / "dashboards").resolve()
    assert (ROOT / mounts["/etc/grafana/provisioning"]).resolve() == (GRAFANA / "provisioning")
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
    assert "127.0.0.1:9090:9090" in compose["services"]["prometheus"]["ports"]


def test_job_names_are_set_at_generation_time(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "grafana" / "generate.py"), "--out", str(tmp_path),
         "--worker-job", "mw-w", "--notifier-job", "mw-n"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = "".join(p.read_text() for p in sorted(tmp_path.glob("*.json")))
    assert 'up{job=\\"mw-w\\"}' in text and 'job=~\\"mw-w|mw-n\\"' in text
    assert "modelwatch-worker" not in text and "modelwatch-notifier" not in text
    for _board, _panel, expr in gen.all_expressions():
        assert "job=" not in expr or "modelwatch-worker" in expr, expr
