"""The Alertmanager sink against the real Alertmanager binary, behind TLS and basic auth.

Alertmanager runs with ``--web.config.file`` (a self-signed certificate made with openssl
for 127.0.0.1, one bcrypt-hashed basic-auth user). The sink must be refused without the
password or without the CA, accepted with both; its ``endsAt`` is ``now + 4 ×
resend_interval``, a refresh moves it forward, an alert no longer refreshed expires on its
own (as Prometheus's alerts do when Prometheus stops), and a resolved one closes at once.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from alerting.grouping import Notification
from alerting.retry import DeliveryError
from alerting.routes import Route
from alerting.sinks import build_sink
from alerting.sinks.alertmanager import firing_ends_at
from modelwatch.broker import free_port
from tests.integration.test_alert_support import wait_until
from tests.support.processes import stop_process

pytestmark = pytest.mark.integration
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
USER, PASSWORD = "modelwatch", "s3cret-pass"


def bcrypt_hash(password: str) -> str:
    """bcrypt through libxcrypt (Python 3.11's crypt module), for the web config."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt as _crypt

        return _crypt.crypt(password, _crypt.mksalt(_crypt.METHOD_BLOWFISH, rounds=1 << 4))


def trust(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def secured_alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if ALERTMANAGER is None or shutil.which("openssl") is None:
        pytest.skip("needs the alertmanager binary and openssl")
    tmp = tmp_path_factory.mktemp("am-secured")
    cert, key = self_signed(tmp)
    (tmp / "web.yml").write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(cert), "key_file": str(key)},
        "basic_auth_users": {USER: bcrypt_hash(PASSWORD)},
    }))  # fmt: skip
    (tmp / "am.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "null", "group_wait": "1s"}, "receivers": [{"name": "null"}],
    }))  # fmt: skip
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    with (tmp / "alertmanager.log").open("w") as log:
        proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={tmp / 'web.yml'}",
             "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        client = httpx.Client(base_url=base, verify=trust(cert), auth=(USER, PASSWORD), timeout=5)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError((tmp / "alertmanager.log").read_text())
            try:
                return client.get("/-/ready").status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, 30, "Alertmanager ready behind TLS", every_s=0.1)
            yield base, cert
        finally:
            client.close()
            stop_process(proc)


def alert(fp: str, status: str = "firing") -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"alert_id": f"{fp}-1", "fingerprint": fp, "model": "churn", "model_version": "3",
            "severity": "major", "status": status, "kind": "prediction_drift",
            "subject": f"prediction-{fp}", "detector": "psi", "value": 0.4, "threshold": 0.2,
            "fired_at_ms": now - 1000, "resolved_at_ms": now if status == "resolved" else None,
            "summary": "churn predictions drift", "labels": {"team": "ds"}}  # fmt: skip


def notification(firing: list, resolved: list | None = None) -> Notification:
    return Notification(Route(name="major", sinks=("am",)), "g", {"model": "churn"}, firing,
                        resolved or [], {}, 0)  # fmt: skip


def active(base: str, cert: Path) -> dict[str, dict[str, Any]]:
    got = httpx.get(f"{base}/api/v2/alerts", verify=trust(cert), auth=(USER, PASSWORD), timeout=5)
    got.raise_for_status()
    return {a["annotations"]["fingerprint"]: a for a in got.json()
            if a["status"]["state"] == "active"}  # fmt: skip


def ends_at_s(a: dict[str, Any]) -> float:
    return datetime.fromisoformat(a["endsAt"].replace("Z", "+00:00")).timestamp()


def test_auth_and_ca_are_required_and_used(secured_alertmanager: tuple[str, Path]) -> None:
    base, cert = secured_alertmanager
    env = {"AM_PASS": PASSWORD, "AM_WRONG": "nope"}
    no_ca = build_sink("am", {"type": "alertmanager", "url": base, "username": USER,
                              "password_env": "AM_PASS"}, env)  # fmt: skip
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        no_ca.send(notification([alert("no-ca")]))
    wrong = build_sink("am", {"type": "alertmanager", "url": base, "ca_file": str(cert),
                              "username": USER, "password_env": "AM_WRONG"}, env)  # fmt: skip
    with pytest.raises(DeliveryError, match="HTTP 401") as err:
        wrong.send(notification([alert("wrong")]))
    assert not err.value.retryable and "nope" not in str(err.value)
    good = build_sink("am", {"type": "alertmanager", "url": base, "ca_file": str(cert),
                             "username": USER, "password_env": "AM_PASS",
                             "generator_url": "https://grafana.example/d/x?var-model={model}"},
                      env)  # fmt: skip
    good.send(notification([alert("good")]))
    got = wait_until(lambda: active(base, cert).get("good"), 20, "the alert in Alertmanager")
    assert got["generatorURL"] == "https://grafana.example/d/x?var-model=churn"
    assert got["labels"]["source"] == "modelwatch" and got["labels"]["alertname"] == (
        "prediction_drift")
    assert set(active(base, cert)) == {"good"}  # the refused ones never arrived


def test_ends_at_is_refreshed_and_an_unrefreshed_alert_expires(
    secured_alertmanager: tuple[str, Path],
) -> None:
    base, cert = secured_alertmanager
    sink = build_sink("am", {"type": "alertmanager", "url": base, "ca_file": str(cert),
                             "username": USER, "password_env": "AM_PASS",
                             "resend_interval": "2s"}, {"AM_PASS": PASSWORD})  # fmt: skip
    t0 = time.time()
    sink.send(notification([alert("fresh"), alert("closed")]))
    first = wait_until(lambda: active(base, cert).get("fresh"), 20, "the alert in Alertmanager")
    assert t0 + 8 - 1 <= ends_at_s(first) <= time.time() + 8 + 1  # now + 4 × 2 s
    sink.send(notification([], [alert("closed", "resolved")]))  # resolved: closes at once
    wait_until(lambda: "closed" not in active(base, cert), 20, "the resolved alert closed")
    # a refresh from now on gives an endsAt at least 1.5 s later than the first one's
    wait_until(lambda: firing_ends_at(int(time.time() * 1000), 2000) / 1000
               > ends_at_s(first) + 1.5, 20, "time for endsAt to move forward")
    assert sink.refresh([alert("fresh")]) is True  # type: ignore[attr-defined]
    later = wait_until(
        lambda: (a := active(base, cert).get("fresh")) and ends_at_s(a) > ends_at_s(first) + 1
        and a, 20, "endsAt to move forward")  # fmt: skip
    assert ends_at_s(later) <= time.time() + 8 + 1
    # no more refreshes (a notifier that died): the alert expires within 4 intervals
    wait_until(lambda: "fresh" not in active(base, cert), 30, "the unrefreshed alert to expire")
