"""The shipped queries are real: a real Prometheus runs every recording rule, alerting rule and
dashboard expression against scraped modelwatch metrics.

A real Prometheus (Debian package ``prometheus``) starts on a free loopback port with the
shipped configuration (``infra/prometheus/prometheus.local.yml``: same jobs and rule files,
targets rewritten to the test's ports, 1 s scrape and evaluation intervals) and a temporary
data directory. Each expression goes through ``/api/v1/query``: it must parse and evaluate
without error, and it must return data unless it is listed in ``NO_DATA_EXPECTED``.

STAND-IN: the scrape targets come from the ``metrics_targets`` fixture, which for now starts
:class:`StandInExporter` -- a small in-process prometheus_client exporter that serves every
metric of the catalogue (``schemas/metrics_catalogue.py``) under its exact name and labels,
with moving values.
It stands in for the real worker (``modelwatch worker --metrics-port ...``) fed by the
simulator and the real notifier while those are being written. To switch, replace the body of
``metrics_targets`` with a fixture that starts the embedded broker, the worker, the notifier
and ``modelwatch simulate --scenario ...`` and yields their metrics addresses per job; then
adjust ``NO_DATA_EXPECTED`` to what the scenario exercises (e.g. a scenario without labels
gives no performance data). Nothing else in this file depends on the stand-in.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.process_collector import ProcessCollector

from modelwatch.broker import free_port
from schemas import metrics_catalogue as catalogue
from tests.support import infra
from tests.support.processes import stop_process

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "infra" / "prometheus"
WAIT_S = 60.0  # upper bound of every wait in this file




metrics_reference = infra.metrics_reference()
dashboards = infra.dashboards()

# Expressions allowed to return no data for the current targets, by recording-rule name or
# "dashboard / panel" (each with the reason). Everything else must return data.
NO_DATA_EXPECTED: dict[str, str] = {}


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# --------------------------------------------------------------------------- stand-in exporter
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "model": ("churn", "fraud"),
    "version": ("v1", "v2"),
    "status": ("ok", "error", "fallback"),
    "error_type": ("timeout", "invalid_input"),
    "topic": ("modelwatch.predictions", "modelwatch.labels"),
    "partition": ("0", "1"),
    "error_kind": ("decode", "invalid"),
    "feature": ("age", "plan"),
    "test": ("psi", "wasserstein", "jensenshannon", "ks", "chisquare"),
    "detector": ("adwin", "page_hinkley"),
    "metric": ("accuracy", "f1", "precision", "recall", "log_loss", "roc_auc", "mae", "rmse"),
    "kind": ("feature_drift", "concept_drift", "no_traffic"),
    "severity": ("critical", "major", "minor"),
    "sink": ("webhook", "alertmanager"),
    "outcome": ("ok", "error"),
    "label": ("error_type", "version"),
    "python_version": ("3.11.2",),
    "reason": ("overflow",),
    "stage": ("drift", "merge", "labels"),
    "complete": ("true", "false"),
}
BUILDERS = {"counter": catalogue.counter, "gauge": catalogue.gauge,
            "histogram": catalogue.histogram}  # fmt: skip


class StandInExporter:
    """STAND-IN for the real worker / notifier: serves the listed metrics with moving values.

    One instance per Prometheus job (the worker; the evaluator and notifier together), each
    on its own loopback port,
    with the standard process metrics of prometheus_client.
    """

    def __init__(self, *components: str) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.metrics: list[tuple[Any, Any, tuple[str, ...]]] = []
        for m in catalogue.exported_by(*components):
            metric = BUILDERS[m.type](m.name, self.registry)
            self.metrics.append((m, metric, m.labels))
        self.rng = random.Random(6)
        self.stop = threading.Event()
        self.server, self._server_thread = start_http_server(
            0, addr="127.0.0.1", registry=self.registry
        )
        self.port = int(self.server.server_port)
        self.tick()
        self.thread = threading.Thread(
            target=self._run, name=f"stand-in-{'-'.join(components)}", daemon=True
        )
        self.thread.start()

    def tick(self) -> None:
        t = time.time()
        for m, metric, labels in self.metrics:
            combos = itertools.product(*(LABEL_VALUES[label] for label in labels))
            for values in combos:
                child = metric.labels(*values) if labels else metric
                if m.type == "counter":
                    child.inc(self.rng.randint(1, 20))
                elif m.type == "histogram":
                    for _ in range(10):
                        child.observe(self.rng.lognormvariate(math.log(0.05), 1.0))
                elif m.name == "modelwatch_last_event_timestamp_seconds":
                    child.set(t - self.rng.uniform(0, 5))
                elif m.name.endswith("_detected"):
                    child.set(self.rng.choice((0, 1)))
                elif m.name == "modelwatch_consumer_lag":
                    child.set(self.rng.randint(0, 5000))
                else:
                    child.set(self.rng.random())

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.tick()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def metrics_targets() -> Iterator[dict[str, list[str]]]:
    """job name -> scrape addresses. STAND-IN: replace with the real worker and notifier."""
    worker = StandInExporter(catalogue.WORKER)
    notifier = StandInExporter(*catalogue.ALERTING)
    try:
        yield {
            metrics_reference.JOBS[catalogue.WORKER]: [f"127.0.0.1:{worker.port}"],
            metrics_reference.JOBS[catalogue.NOTIFIER]: [f"127.0.0.1:{notifier.port}"],
        }
    finally:
        worker.close()
        notifier.close()


# --------------------------------------------------------------------------- real Prometheus
def prometheus_config(
    targets: dict[str, list[str]], alertmanager: str | None = None
) -> dict[str, Any]:
    """The shipped local configuration, pointed at ``targets`` and sped up for the test.

    ``alertmanager`` (``host:port``) replaces the shipped Alertmanager target; without it
    Prometheus sends alerts nowhere.
    """
    conf = yaml.safe_load((PROM_DIR / "prometheus.local.yml").read_text())
    conf["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    conf["rule_files"] = [str((PROM_DIR / f).resolve()) for f in conf["rule_files"]]
    if alertmanager is None:
        conf.pop("alerting", None)
    else:
        conf["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    jobs = {c["job_name"]: c for c in conf["scrape_configs"]}
    assert set(targets) <= set(jobs), "targets name shipped jobs"
    conf["scrape_configs"] = [c for c in conf["scrape_configs"] if c["job_name"] in targets]
    for job, addresses in targets.items():
        jobs[job]["static_configs"] = [{"targets": addresses}]
    return conf


@contextlib.contextmanager
def running_prometheus(
    targets: dict[str, list[str]], tmp: Path, alertmanager: str | None = None
) -> Iterator[httpx.Client]:
    """A real Prometheus on a free loopback port with the shipped rules, scraping ``targets``.

    Yields an HTTP client for its API once every target is up; stops it (by pid) on exit.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package `prometheus`; CI installs it)")
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(targets, alertmanager)))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with running_server(argv, tmp / "prometheus.log", f"127.0.0.1:{port}", "Prometheus") as client:
        wait_for("every target to be up", lambda: all_targets_up(client, targets))
        yield client


@contextlib.contextmanager
def running_server(
    argv: list[str], log_path: Path, address: str, what: str
) -> Iterator[httpx.Client]:
    """Run ``argv`` (a server with a ``/-/ready`` endpoint at ``address``); yield an HTTP
    client once it is ready; stop it by pid on exit (SIGTERM, then SIGKILL)."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = httpx.Client(base_url=f"http://{address}", timeout=10)
        try:
            wait_for(f"{what} to be ready", lambda: client.get("/-/ready").status_code == 200)
            yield client
        finally:
            client.close()
            stop_process(proc)


@pytest.fixture(scope="module")
def prometheus(
    metrics_targets: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    with running_prometheus(metrics_targets, tmp_path_factory.mktemp("prometheus")) as client:
        yield client


def all_targets_up(client: httpx.Client, targets: dict[str, list[str]]) -> bool:
    active = client.get("/api/v1/targets").json()["data"]["activeTargets"]
    up = {(t["labels"]["job"], t["labels"]["instance"]) for t in active if t["health"] == "up"}
    return all((job, a) in up for job, addresses in targets.items() for a in addresses)


def query(client: httpx.Client, expr: str) -> list[dict[str, Any]]:
    """Run an instant query; fail with Prometheus's error message if it does not evaluate."""
    res = client.get("/api/v1/query", params={"query": expr})
    body = res.json()
    assert res.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def has_data(client: httpx.Client, expr: str) -> bool:
    result = query(client, expr)
    return any(not math.isnan(float(r["value"][1])) for r in result) if result else False


def shipped_rules(kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((PROM_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend(r for r in group["rules"] if kind in r)
    return out


RECORDING = shipped_rules("record")
PANELS = dashboards.all_expressions()


# --------------------------------------------------------------------------- the tests
def test_the_stand_in_serves_every_listed_metric(metrics_targets: dict[str, list[str]]) -> None:
    served = ""
    for addresses in metrics_targets.values():
        for address in addresses:
            served += httpx.get(f"http://{address}/metrics", timeout=5).text
    scraped = {catalogue.WORKER, *catalogue.ALERTING, catalogue.PROCESS}
    for m in catalogue.CATALOGUE:
        if not scraped & set(m.exported_by):
            continue
        for series in m.series_names:
            assert f"\n{series}" in served or served.startswith(series), series


def test_every_rule_evaluates_without_error(prometheus: httpx.Client) -> None:
    def evaluated() -> bool:
        groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
        return all(r["health"] != "unknown" for g in groups for r in g["rules"])

    wait_for("every rule to be evaluated", evaluated)
    groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(RECORDING) + len(shipped_rules("alert"))
    bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert bad == []


@pytest.mark.parametrize("rule", RECORDING, ids=[r["record"] for r in RECORDING])
def test_recording_rule(prometheus: httpx.Client, rule: dict[str, Any]) -> None:
    name = rule["record"]
    query(prometheus, rule["expr"])  # parses and evaluates
    if name in NO_DATA_EXPECTED:
        return
    wait_for(f"{name} to return data", lambda: has_data(prometheus, rule["expr"]))
    wait_for(f"Prometheus to record {name}", lambda: has_data(prometheus, name))


@pytest.mark.parametrize(
    ("board", "panel", "expr"), PANELS, ids=[f"{b}/{p}/{i}" for i, (b, p, _e) in enumerate(PANELS)]
)
def test_dashboard_expression(prometheus: httpx.Client, board: str, panel: str, expr: str) -> None:
    concrete = dashboards.substitute(expr)
    query(prometheus, concrete)  # parses and evaluates
    if f"{board} / {panel}" in NO_DATA_EXPECTED:
        return
    wait_for(f"{board} / {panel} to return data", lambda: has_data(prometheus, concrete))
