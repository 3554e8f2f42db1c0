"""``modelwatch broker`` never leaves an orphan Tansu: not on SIGHUP (a closed terminal),
not on SIGTERM, not when the command itself is killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from modelwatch.broker import free_port
from tests.support.processes import ModelwatchProcess, wait_for

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has let go of its port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux /proc needed")
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGKILL])
def test_broker_dies_with_its_command(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    cmd = ModelwatchProcess(["broker", "--port", str(port), "--partitions", "1"], {},
                            tmp_path / "broker.log").start()
    try:
        assert cmd.proc is not None
        wait_for(lambda: _listening(port), 60, "the broker's port")
        (tansu,) = _children(cmd.proc.pid)
        os.kill(cmd.proc.pid, sig)  # the command only, not its process group
        cmd.proc.wait(30)
        wait_for(lambda: _gone(tansu), 30, f"tansu (pid {tansu}) to exit after {sig.name}")
        wait_for(lambda: not _listening(port), 30, "the port to be released")
    finally:
        cmd.kill()
