"""Prometheus alerts reach Alertmanager and are routed by severity, with the shipped configs.

A real Prometheus (shipped local configuration and rules) scrapes the stand-in exporters of
``test_prometheus_queries.py``, whose notification dead-letter counter keeps growing, so
``ModelwatchNotificationDeadLetters`` (severity major, no ``for``) fires at once. A real
Alertmanager (Debian package ``prometheus-alertmanager``) runs the shipped
``infra/alertmanager/alertmanager.yml`` on loopback, clustering off; its API must show the
alert in a group of the ``modelwatch-major`` receiver. The webhook receivers are not
reachable here: routing is what is checked, not delivery.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schemas import metrics_catalogue as catalogue
from tests.integration.test_prometheus_queries import (
    StandInExporter,
    free_port,
    metrics_reference,
    running_prometheus,
    running_server,
    wait_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "infra" / "alertmanager" / "alertmanager.yml"


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("alertmanager not installed (Debian package `prometheus-alertmanager`)")
    tmp = tmp_path_factory.mktemp("alertmanager")
    address = f"127.0.0.1:{free_port()}"
    argv = [
        binary,
        f"--config.file={CONFIG}",
        f"--storage.path={tmp / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with running_server(argv, tmp / "alertmanager.log", address, "Alertmanager") as client:
        yield address, client


def test_a_prometheus_alert_is_routed_by_severity(
    alertmanager: tuple[str, httpx.Client], tmp_path: Path
) -> None:
    address, am = alertmanager
    worker = StandInExporter(catalogue.WORKER)
    notifier = StandInExporter(*catalogue.ALERTING)
    targets = {
        metrics_reference.JOBS[catalogue.WORKER]: [f"127.0.0.1:{worker.port}"],
        metrics_reference.JOBS[catalogue.NOTIFIER]: [f"127.0.0.1:{notifier.port}"],
    }
    routed: dict[str, set[str]] = {}

    def receivers_of_alert() -> bool:
        routed.clear()
        for group in am.get("/api/v2/alerts/groups").json():
            for alert in group["alerts"]:
                name = alert["labels"]["alertname"]
                routed.setdefault(name, set()).add(group["receiver"]["name"])
        return "ModelwatchNotificationDeadLetters" in routed

    try:
        with running_prometheus(targets, tmp_path, alertmanager=address) as prom:
            wait_for(
                "Prometheus to use the Alertmanager",
                lambda: bool(
                    prom.get("/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"]
                ),
            )
            wait_for("the alert to reach Alertmanager", receivers_of_alert)
    finally:
        worker.close()
        notifier.close()
    assert routed["ModelwatchNotificationDeadLetters"] == {"modelwatch-major"}
    alerts = am.get(
        "/api/v2/alerts", params={"filter": 'alertname="ModelwatchNotificationDeadLetters"'}
    ).json()
    assert alerts and {a["labels"]["severity"] for a in alerts} == {"major"}
    assert {a["labels"]["sink"] for a in alerts} == {"webhook", "alertmanager"}
    assert all(a["annotations"]["summary"].startswith("notifications to sink") for a in alerts)
