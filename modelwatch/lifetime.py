"""Process hygiene: children that die with their parent, and stop signals handled alike.

``modelwatch broker`` and ``modelwatch demo`` start the embedded broker (and the demo its
workers) as child processes in their own sessions, so that Ctrl-C reaches the parent
first. Without care such a child outlives its parent: a closed terminal (SIGHUP) or a
killed parent (SIGKILL) left Tansu holding port 9092. Two measures:

* :func:`die_with_parent` (a ``preexec_fn``) asks Linux to send the child SIGTERM when its
  parent dies, whatever the cause (``prctl(PR_SET_PDEATHSIG)``); it also covers the race
  where the parent died before the child got that far. On other systems it does nothing.
* :func:`stop_on_signals` turns SIGTERM and SIGHUP into a graceful stop of the parent,
  which then stops its children by pid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for :class:`subprocess.Popen` (``None`` where Linux is not).

    The death signal is tied to the thread that forks: start such children from a thread
    that lives as long as they should (the main thread, in the commands).
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc_name = ctypes.util.find_library("c") or "libc.so.6"

    def preexec() -> None:  # runs in the child, between fork and exec
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def stop_on_signals(stop: threading.Event, signals: tuple[int, ...] | None = None) -> None:
    """Set ``stop`` on SIGTERM and SIGHUP (a closed terminal): the caller then cleans up."""
    for sig in signals or (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
