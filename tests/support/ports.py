"""A loopback address where nothing listens, safe from TCP self-connects."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def closed_port() -> str:
    """``127.0.0.1:PORT`` with nothing listening, chosen *below* the ephemeral range.

    A port handed out by ``bind(0)`` and released lies in the ephemeral range, so a client
    retrying it can now and then get that very port as its own local port and connect to
    itself (TCP simultaneous open): it then talks to itself instead of failing. Outgoing
    connections never use a port below the range, so this cannot happen here.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12_000), low))
    random.shuffle(candidates)
    for port in candidates[:200]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return f"127.0.0.1:{port}"
    raise RuntimeError("no free loopback port below the ephemeral range")
