"""Every modelwatch process against a broker reachable only over TLS (mTLS), configured by
one client properties file whose ``bootstrap.servers`` lists an unreachable host first.

The embedded broker (Tansu 0.6) has ``--cert``/``--key`` options but serves plaintext with
them, so Debian's stunnel terminates TLS in front of it and the broker advertises the TLS
port: every client learns only the TLS address. stunnel requires a client certificate
signed by the test CA (mTLS). The processes get ``MODELWATCH_BOOTSTRAP`` pointing at a dead
port on purpose: the properties file's ``bootstrap.servers`` must win.

SASL is not exercised against a broker: Tansu's ``--authentication`` needs SCRAM users,
which its ``user create`` cannot add once authentication is on, and its memory storage
forgets them on restart (the mapping of SASL properties is covered by unit tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from modelwatch.broker import EmbeddedBroker, free_port
from modelwatch.demo import DEMO_POLICY
from schemas.kafka import KafkaConfig, read_to_end
from tests.support.ports import closed_port
from tests.support.processes import REPO, ModelwatchProcess, WorkerProcess, sample, wait_for
from tests.support.tls import (
    TlsFiles,
    TlsTerminator,
    have_openssl,
    make_tls_files,
    stunnel_binary,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (have_openssl() and stunnel_binary()),
                       reason="needs openssl and stunnel4 (.ci/run installs them)"),
]

PARTITIONS = 2
SCENARIO = {
    "name": "tls-errors",
    "rate": 800,
    "speedup": 30,
    "label_fraction": 0.0,
    "phases": [
        {"name": "errors", "kind": "error_burst", "start": "0s", "error_rate": 0.4,
         "error_type": "Timeout"},
    ],
}  # fmt: skip


@dataclass
class TlsCluster:
    properties: Path
    tls_port: int
    tls: TlsFiles
    workdir: Path

    def env(self) -> dict[str, str]:
        return {
            "MODELWATCH_KAFKA_CONFIG": str(self.properties),
            "MODELWATCH_BOOTSTRAP": closed_port(),  # wrong on purpose: the file wins
            "MODELWATCH_PROFILE": "embedded",
        }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    workdir = tmp_path_factory.mktemp("tls")
    tls = make_tls_files(workdir / "pki")
    tls_port = free_port()
    with EmbeddedBroker(partitions=PARTITIONS, advertised=f"127.0.0.1:{tls_port}",
                        log_file=workdir / "broker.log") as broker:  # fmt: skip
        proxy = TlsTerminator(tls_port, broker.port, tls, workdir).start()
        try:
            props = workdir / "client.properties"
            props.write_text(
                "# mTLS, as a managed Kafka service hands it out\n"
                f"bootstrap.servers={closed_port()},127.0.0.1:{tls_port}\n"
                "security.protocol=SSL\n"
                f"ssl.ca.location={tls.ca}\n"
                f"ssl.certificate.location={tls.client_cert}\n"
                f"ssl.key.location={tls.client_key}\n"
            )
            yield TlsCluster(props, tls_port, tls, workdir)
        finally:
            proxy.stop()


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelwatch.cli", *args], cwd=REPO, capture_output=True,
        text=True, timeout=timeout, env={**os.environ, **env, "NO_COLOR": "1"},
    )  # fmt: skip


def test_only_tls_with_a_client_certificate_gets_in(cluster: TlsCluster) -> None:
    """The control: plaintext, or TLS without a client certificate, is refused."""
    addr = f"127.0.0.1:{cluster.tls_port}"
    for conf in ({}, {"security.protocol": "SSL", "ssl.ca.location": str(cluster.tls.ca)}):
        admin = AdminClient({"bootstrap.servers": addr, "log_level": 0, **conf})
        with pytest.raises(Exception):  # noqa: B017 - KafkaException, transport failure
            admin.list_topics(timeout=3)
    # and the CLI says so in one line, as a runtime failure
    proc = cli({"MODELWATCH_KAFKA_CONFIG": "", "MODELWATCH_BOOTSTRAP": addr},
               "topics", "create", "--wait-s", "3")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Kafka at"), proc.stderr


def test_every_process_over_tls(cluster: TlsCluster, tmp_path: Path) -> None:
    env = cluster.env()
    made = cli(env, "topics", "create", "--partitions", str(PARTITIONS), "--wait-s", "30")
    assert made.returncode == 0, made.stderr
    assert "created 10 topics" in made.stderr, made.stderr
    kafka = KafkaConfig.load(None, str(cluster.properties), "embedded")
    refs = kafka.admin().list_topics(timeout=10).topics["modelwatch.references"]
    assert len(refs.partitions) == 1

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    model = "tls-model"
    worker = WorkerProcess(closed_port(), tmp_path, "tls-worker", extra_env=env)
    evaluator = ModelwatchProcess(
        ["evaluate", "--policy", str(DEMO_POLICY), "--metrics-port", "0"], env,
        tmp_path / "evaluator.log")  # fmt: skip
    notifier = ModelwatchProcess(
        ["notify", "--metrics-port", "0", "--state-dir", str(tmp_path / "notify")],
        {**env, "COLUMNS": "300"}, tmp_path / "notifier.log")  # fmt: skip
    simulator = ModelwatchProcess(
        ["simulate", "--scenario", str(scenario), "--model", model, "--duration", "240"],
        env, tmp_path / "simulator.log")  # fmt: skip
    tail = subprocess.Popen(
        [sys.executable, "-m", "modelwatch.cli", "alerts", "tail", "--json", "--max", "1",
         "--severity", "critical", "--timeout", "240"],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    processes = [worker, evaluator, notifier, simulator]
    try:
        for p in processes[:3]:
            p.start()
        worker.wait_ready(60)
        simulator.start()
        wait_for(lambda: sample(worker.scrape(), "modelwatch_predictions_total", model=model) > 0,
                 90, "the worker to count predictions read over TLS")  # fmt: skip
        out, err = tail.communicate(timeout=260)
        assert tail.returncode == 0, err + "\n" + evaluator.log_tail()
        alert = json.loads(out.strip().splitlines()[0])
        assert (alert["model"], alert["severity"], alert["kind"]) == (
            model, "critical", "error_rate"), alert
        wait_for(lambda: alert["fingerprint"][:8] in notifier.log_path.read_text()
                 or model in notifier.log_path.read_text(),
                 60, "the notifier to deliver the alert (log sink)")  # fmt: skip
        for p in processes[:3]:
            assert p.alive(), p.log_tail()
        # what the worker wrote is readable over TLS with the same file
        assert read_to_end(kafka, "modelwatch.detections", timeout_s=30)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait(10)
        for p in reversed(processes):
            p.stop()
