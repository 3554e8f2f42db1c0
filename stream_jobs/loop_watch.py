"""Diagnostic: log every event-loop step that runs longer than a threshold, naming it.

Enabled by ``MODELWATCH_SLOW_STEP_MS`` (unset: off, no cost). Each asyncio callback or task
step that holds the loop longer than the threshold is logged at warning level with the
task (its coroutine and where it now waits) or callback, the time it took, and where it
was (the loop thread's innermost frames, sampled once the step passed the threshold) — the
cause of a stalled output timer or missed heartbeats. ``MODELWATCH_TRACEMALLOC_S`` logs what grows;
``MODELWATCH_MEMORY_REPORT_S`` where the memory is (:mod:`stream_jobs.memory_report`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable

from stream_jobs import memory_report

log = logging.getLogger("modelwatch.loop_watch")


def install_from_env() -> None:
    install_memory_watch_from_env()
    memory_report.install_from_env()
    raw = os.environ.get("MODELWATCH_SLOW_STEP_MS")
    if raw:
        install(float(raw) / 1000.0)


def install(threshold_s: float) -> Callable[[], None]:
    """Watch every step of the loops run by this thread from now on (steps of loops in
    other threads, e.g. Faust's consumer thread, hold no heartbeat of ours); returns the
    function that stops watching."""
    handle_cls = asyncio.events.Handle
    original = handle_cls._run
    watched = threading.get_ident()  # the worker's loop; Faust's consumer thread has its own
    step: list = [0.0, (0.0, "")]  # current step's start (0: none); (its start, where stuck)
    stop = threading.Event()

    def _run(self: asyncio.events.Handle) -> None:
        if threading.get_ident() != watched:
            return original(self)
        started = step[0] = time.perf_counter()
        try:
            original(self)
        finally:
            step[0] = 0.0
        took = time.perf_counter() - started
        if took > threshold_s:
            cb = getattr(self, "_callback", None)
            owner = getattr(cb, "__self__", None)
            what = repr(owner) if isinstance(owner, asyncio.Future) else repr(cb)
            at, where = step[1]
            log.warning("event loop held %.3f s by %s%s", took, what[:400],
                        where if at == started else "")  # fmt: skip

    def sampler() -> None:
        """Where a step over the threshold is: the loop thread's stack, taken once."""
        seen = 0.0
        while not stop.wait(threshold_s / 4):
            started = step[0]
            if started and started != seen and time.perf_counter() - started > threshold_s:
                seen = started
                frame = sys._current_frames().get(watched)
                if frame is not None:
                    frames = traceback.extract_stack(frame)[-8:]
                    step[1] = (started, "; at " + " < ".join(
                        f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno} {f.name}"
                        for f in reversed(frames)))  # fmt: skip

    handle_cls._run = _run  # type: ignore[method-assign]
    threading.Thread(target=sampler, daemon=True, name="loop-watch").start()

    def uninstall() -> None:
        stop.set()
        handle_cls._run = original  # type: ignore[method-assign]

    return uninstall


def install_memory_watch_from_env() -> None:
    """``MODELWATCH_TRACEMALLOC_S=N``: trace allocations and, every N seconds, log the 15
    places whose live memory grew most since the first report (off by default: tracing
    slows the worker down several times)."""
    raw = os.environ.get("MODELWATCH_TRACEMALLOC_S")
    if raw:
        watch_memory(float(raw))


def watch_memory(every_s: float, frames: int = 3, top: int = 15) -> threading.Thread:
    import tracemalloc

    tracemalloc.start(frames)

    def run() -> None:
        time.sleep(every_s)
        base = tracemalloc.take_snapshot()
        while True:
            time.sleep(every_s)
            snap = tracemalloc.take_snapshot()
            stats = snap.compare_to(base, "traceback")[:top]
            lines = [f"{s.size_diff / 2**20:+.1f} MiB ({s.count_diff:+d} blocks) "
                     + " < ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}"
                                  for f in s.traceback)  # fmt: skip
                     for s in stats]
            log.warning("memory growth since the first snapshot:\n  %s", "\n  ".join(lines))

    thread = threading.Thread(target=run, daemon=True, name="memory-watch")
    thread.start()
    return thread
