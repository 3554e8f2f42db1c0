"""Static validation of docker-compose.yml and infra/Dockerfile (no Docker engine here).

Parses the compose file and checks that every referenced file exists, that the ports agree
with the Prometheus scrape targets, the Alertmanager target and the Grafana data source, that
workers can be scaled, and that every environment variable given to a modelwatch process is
one the code reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROM = ROOT / "infra" / "prometheus"
REQUIRED = {
    "kafka",
    "topics",
    "worker",
    "evaluator",
    "notifier",
    "simulator",
    "prometheus",
    "alertmanager",
    "grafana",
}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def modelwatch_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if s.get("image", "").startswith("modelwatch")}


def env(service: dict[str, Any]) -> dict[str, str]:
    e = service.get("environment") or {}
    if isinstance(e, list):
        e = dict(item.split("=", 1) for item in e)
    return {k: str(v) for k, v in e.items()}


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for volume in service.get("volumes", []):
        src, dst = volume.split(":")[:2]
        if src.startswith((".", "/")):
            out.append((src, dst))
    return out


def test_the_stack_has_every_service() -> None:
    assert set(services()) >= REQUIRED
    assert set(modelwatch_services()) == {
        "topics", "reference", "worker", "evaluator", "notifier", "simulator"
    }


def test_kafka_is_the_official_image_in_kraft_mode() -> None:
    kafka = services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    e = env(kafka)
    assert set(e["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "PLAINTEXT://kafka:9092" in e["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert not any("zookeeper" in k.lower() for k in e)
    assert "healthcheck" in kafka


def test_modelwatch_services_point_at_kafka() -> None:
    for name, service in modelwatch_services().items():
        assert env(service)["MODELWATCH_BOOTSTRAP"] == "kafka:9092", name
        assert service["build"]["dockerfile"] == "infra/Dockerfile"
        assert (ROOT / service["build"]["context"]).is_dir()
        assert service["command"][0] == "modelwatch", name


def test_topic_creator_runs_once_before_the_workers() -> None:
    s = services()
    assert s["topics"]["command"] == ["modelwatch", "topics", "create"]
    assert s["topics"]["restart"] == "no"
    assert s["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("worker", "evaluator", "notifier", "simulator"):
        assert s[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_worker_is_scalable() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker, "a host port would stop --scale worker=3"
    assert "hostname" not in worker


@pytest.mark.parametrize(
    ("service", "job", "subcommand", "local_port"),
    [
        ("worker", "modelwatch-worker", "worker", "9108"),
        ("evaluator", "modelwatch-notifier", "evaluate", "9109"),
        ("notifier", "modelwatch-notifier", "notify", "9110"),
    ],
)
def test_metrics_ports_match_the_scrape_targets(
    service: str, job: str, subcommand: str, local_port: str
) -> None:
    s = services()[service]
    assert s["command"][1] == subcommand
    port = flag(s["command"], "--metrics-port")
    assert env(s)["MODELWATCH_METRICS_PORT"] == port
    assert port in [str(p) for p in s["expose"]]
    assert "ports" not in s and "container_name" not in s
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (scrape,) = [c for c in prom["scrape_configs"] if c["job_name"] == job]
    (sd,) = scrape["dns_sd_configs"]  # one target per replica of each service
    assert service in sd["names"] and sd["type"] == "A"
    assert str(sd["port"]) == port
    local = yaml.safe_load((PROM / "prometheus.local.yml").read_text())
    (scrape,) = [c for c in local["scrape_configs"] if c["job_name"] == job]
    assert f"127.0.0.1:{local_port}" in scrape["static_configs"][0]["targets"]


def test_every_scrape_target_is_a_service() -> None:
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    s = services()
    for scrape in prom["scrape_configs"]:
        for sd in scrape.get("dns_sd_configs", []):
            for name in sd["names"]:
                assert name in s, name
                assert str(sd["port"]) in [str(p) for p in s[name]["expose"]], name


def test_alertmanager_target_and_grafana_datasource_match_services() -> None:
    s = services()
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    (target,) = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in s and f"127.0.0.1:{port}:{port}" in s[host]["ports"]
    assert env(s["notifier"])["ALERTMANAGER_URL"] == f"http://{host}:{port}"
    assert "127.0.0.1:9090:9090" in s["prometheus"]["ports"]
    assert "127.0.0.1:3000:3000" in s["grafana"]["ports"]


def test_safe_defaults_loopback_ports_no_lifecycle_api_no_anonymous_admin() -> None:
    s = services()
    published = [(name, p) for name, svc in s.items() for p in svc.get("ports", [])]
    assert published and all(str(p).startswith("127.0.0.1:") for _, p in published), published
    assert not any("lifecycle" in str(arg) for arg in s["prometheus"]["command"])
    grafana = env(s["grafana"])
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_every_bind_mounted_path_exists() -> None:
    seen = 0
    for name, service in services().items():
        for src, _dst in bind_mounts(service):
            assert (ROOT / src).exists(), (name, src)
            seen += 1
    assert seen >= 6


def test_files_named_in_commands_are_mounted() -> None:
    s = services()
    mounts = {dst: src for svc in s.values() for src, dst in bind_mounts(svc)}

    def host_path(container_path: str) -> Path:
        for dst, src in mounts.items():
            if container_path == dst or container_path.startswith(dst.rstrip("/") + "/"):
                return ROOT / src / container_path[len(dst) :].lstrip("/")
        raise AssertionError(f"{container_path} is not mounted")

    scenario = host_path(flag(s["simulator"]["command"], "--scenario"))
    assert scenario.is_file()
    from producers.simulator.scenario import Scenario

    loaded = Scenario.load(scenario)
    kinds = {p.kind for p in loaded.phases}
    assert {"normal", "feature_drift", "latency_spike", "error_burst"} <= kinds
    assert host_path(env(s["notifier"])["MODELWATCH_ROUTES_FILE"]).is_file()
    for arg in s["prometheus"]["command"] + s["alertmanager"]["command"]:
        if arg.startswith("--config.file="):
            assert host_path(arg.split("=", 1)[1]).is_file()


def test_environment_variables_are_read_by_the_code() -> None:
    read = {"MODELWATCH_CONFIG"} | {f"MODELWATCH_{f.upper()}" for f in Settings.model_fields}
    routes = (ROOT / "infra" / "notifier" / "routes.yml").read_text()
    routes_env = set(re.findall(r"\w+_env:\s*(\w+)", routes))
    for name, service in modelwatch_services().items():
        for var in env(service):
            if var.startswith("MODELWATCH_"):
                assert var in read, (name, var)
            else:
                assert name == "notifier" and var in routes_env, (name, var)
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    for var in re.findall(r"\b(MODELWATCH_\w+)=", dockerfile):
        assert var in read, var


def test_notifier_state_is_kept_in_a_volume() -> None:
    dockerfile = (ROOT / "infra" / "Dockerfile").read_text()
    (data_dir,) = re.findall(r"MODELWATCH_DATA_DIR=(\S+)", dockerfile)
    volumes = services()["notifier"]["volumes"]
    assert any(v.split(":")[1] == data_dir and not v.startswith(".") for v in volumes)
    assert data_dir in dockerfile.split("install -d", 1)[1]  # created, owned by the user


def test_notifier_routes_file_is_valid() -> None:
    from alerting.routes import load_routes

    routes = load_routes(ROOT / "infra" / "notifier" / "routes.yml")
    assert routes.sinks["alertmanager"]["type"] == "alertmanager"
    assert {r.name for r in routes.routes} == {"critical", "major", "minor-digest"}


def test_dockerfile() -> None:
    text = (ROOT / "infra" / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    assert "pip install" in text
    for src in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / src).exists(), src
    ignored = (ROOT / "infra" / "Dockerfile.dockerignore").read_text().split()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "pyproject.toml" not in ignored
    for package in ("modelwatch", "schemas", "producers", "stream_jobs", "alerting"):
        assert package in pyproject and package not in ignored
