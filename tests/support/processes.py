"""Start modelwatch processes (worker, notifier, …) as real subprocesses for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from modelwatch.broker import free_port
from modelwatch.live_view import scrape

REPO = Path(__file__).resolve().parents[2]


def sample(samples: dict, name: str, **labels: str) -> float:
    """Sum of samples named ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # not up yet
            last_exc = exc
        time.sleep(every_s)
    raise AssertionError(
        f"timed out after {timeout_s}s waiting for {what} (last error: {last_exc})"
    )


def healthz(port: int) -> tuple[int, dict]:
    """Status and JSON body of a modelwatch process's ``/healthz`` (200 or 503)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Stop a helper process (Alertmanager, Prometheus, stunnel…) by its pid: SIGTERM, then
    SIGKILL if it has not exited within ``timeout_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


class ModelwatchProcess:
    """``modelwatch <args>`` in its own process group, stopped by pid on exit."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ModelwatchProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelwatch.cli", *self.args],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final commit."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 15.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def __enter__(self) -> ModelwatchProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class WorkerProcess(ModelwatchProcess):
    def __init__(
        self, bootstrap: str, tmp: Path, group_id: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.group_id = group_id
        env = {
            "MODELWATCH_BOOTSTRAP": bootstrap,
            "MODELWATCH_METRICS_PORT": str(self.port),
            "MODELWATCH_METRICS_HOST": "127.0.0.1",
            "MODELWATCH_GROUP_ID": group_id,
            "MODELWATCH_DATA_DIR": str(tmp / f"data-{group_id}"),
            **(extra_env or {}),
        }
        super().__init__(["worker", "--log-level", "warn"], env, tmp / f"worker-{group_id}.log")

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def scrape(self) -> dict:
        return scrape(self.metrics_url)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        def up() -> bool:
            if not self.alive():
                raise AssertionError(f"worker exited:\n{self.log_tail()}")
            self.scrape()
            return True

        wait_for(up, timeout_s, "worker /metrics")
