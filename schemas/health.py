"""Health that means progress: a pure tracker, and a thin HTTP adapter next to ``/metrics``.

A process that answers ``/metrics`` is not necessarily working: an agent can hang, a feed
thread can die, a loop can stall. The tracker is told, by whoever does the work, how far
each stage got; health fails when a stage **has input but does not move**:

* :meth:`ProgressTracker.progress` ``(stage, key, position, backlog)``: ``position`` is what
  the stage processed (an input offset, a count of records sent); ``backlog`` what waits
  for it (consumer lag, queued outputs). A stage with a backlog whose position has not
  changed for ``stall_after_s`` is stalled. An idle stage (backlog 0) is healthy.
* :meth:`ProgressTracker.beat` ``(name)``: a loop says it is alive; a beat older than
  ``stall_after_s`` fails health (for loops that always have work, e.g. a poller).
* :meth:`ProgressTracker.check` ``(name, fn)``: any other condition, e.g. the reference
  feed's :meth:`~stream_jobs.reference_feed.ReferenceFeed.alive`.

Every long-running process uses it (it lives in ``schemas`` so that ``stream_jobs`` and
``alerting`` share it): the worker loop calls ``progress`` where it processes a record,
``highwater`` and ``beat`` from its timers; the alert evaluator and the notifier report
their consumers' positions and deliveries the same way. :func:`start_metrics_and_health`
serves ``/healthz`` (200 or 503, JSON naming every problem) and ``/metrics`` on one port.
A stage may carry its own ``stall_after_s`` (a delivery that may legitimately retry for a
budget of minutes stalls only after that budget).

>>> t = ProgressTracker(stall_after_s=10, clock=lambda: now)
>>> now = 0.0
>>> t.progress("predictions", 0, position=5, backlog=100)
>>> now = 11.0
>>> t.report().problems
['predictions[0] stalled at 5 with 100 waiting for 11 s']
>>> t.progress("predictions", 0, position=6, backlog=99)
>>> t.report().ok
True
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Stage:
    position: int
    backlog: int
    moved_at: float
    stall_after_s: float | None = None


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    beats: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(
            {"ok": self.ok, "problems": self.problems, "stages": self.stages,
             "beats": self.beats}, sort_keys=True,
        ).encode()


class ProgressTracker:
    """Thread-safe: the event loop reports, the HTTP thread reads."""

    def __init__(
        self, stall_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stall_after_s = stall_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._stages: dict[tuple[str, Hashable], _Stage] = {}
        self._beats: dict[str, float] = {}
        self._longest_gap: dict[str, float] = {}
        self._checks: dict[str, Callable[[], bool]] = {}

    def progress(
        self, stage: str, key: Hashable, position: int, backlog: int = 0,
        stall_after_s: float | None = None,
    ) -> None:
        """``stage`` (e.g. the topic) at ``key`` (e.g. the partition) processed up to
        ``position``; ``backlog`` items wait for it. ``stall_after_s``: this stage's own
        threshold (default: the tracker's)."""
        now = self.clock()
        with self._lock:
            st = self._stages.get((stage, key))
            if st is None or st.position != position or (st.backlog == 0 and backlog > 0):
                # moved, or work appeared for an idle stage: the stall clock starts now
                limit = stall_after_s if stall_after_s is not None else (
                    st.stall_after_s if st is not None else None)
                self._stages[(stage, key)] = _Stage(position, max(0, backlog), now, limit)
            else:
                st.backlog = max(0, backlog)
                if stall_after_s is not None:
                    st.stall_after_s = stall_after_s

    def highwater(self, stage: str, key: Hashable, highwater: int) -> None:
        """The input's end offset, sampled by a timer: a stage stuck on one record stops
        reporting, but new input still shows up here (backlog = highwater − position − 1)."""
        with self._lock:
            st = self._stages.get((stage, key))
        if st is not None:
            self.progress(stage, key, st.position, highwater - st.position - 1)

    def forget(self, stage: str, key: Hashable) -> None:
        """A partition revoked: no longer this process's to move."""
        with self._lock:
            self._stages.pop((stage, key), None)

    def beat(self, name: str) -> None:
        """``name`` ran now; the longest gap between two beats is kept (a loop-stall
        measure: for a 1 s timer, a gap of 50 s means the event loop was blocked ~49 s)."""
        now = self.clock()
        with self._lock:
            last = self._beats.get(name)
            if last is not None:
                self._longest_gap[name] = max(self._longest_gap.get(name, 0.0), now - last)
            self._beats[name] = now

    def check(self, name: str, fn: Callable[[], bool]) -> None:
        with self._lock:
            self._checks[name] = fn

    def report(self) -> HealthReport:
        now = self.clock()
        problems: list[str] = []
        stages: dict[str, dict[str, Any]] = {}
        with self._lock:
            items = sorted(self._stages.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
            beats = dict(self._beats)
            gaps = dict(self._longest_gap)
            checks = dict(self._checks)
        for (stage, key), st in items:
            idle_s = now - st.moved_at
            name = f"{stage}[{key}]"
            stages[name] = {"position": st.position, "backlog": st.backlog,
                            "since_move_s": round(idle_s, 1)}
            limit = st.stall_after_s if st.stall_after_s is not None else self.stall_after_s
            if st.backlog > 0 and idle_s > limit:
                problems.append(
                    f"{name} stalled at {st.position} with {st.backlog} waiting for "
                    f"{idle_s:.0f} s"
                )
        beat_info = {}
        for name, at in sorted(beats.items()):
            longest = max(gaps.get(name, 0.0), now - at)  # the current gap counts too
            beat_info[name] = {"age_s": round(now - at, 3), "longest_gap_s": round(longest, 3)}
            if now - at > self.stall_after_s:
                problems.append(f"{name} has not run for {now - at:.0f} s")
        for name, fn in sorted(checks.items()):
            try:
                good = bool(fn())
            except Exception as exc:  # a failing check is a failed check, never a crash
                good = False
                name = f"{name} ({type(exc).__name__}: {exc})"
            if not good:
                problems.append(f"{name} is down")
        return HealthReport(not problems, problems, stages, beat_info)


def sample_highwater(tracker: ProgressTracker, stage: str, consumer: Any) -> None:
    """For each partition a confluent-kafka ``consumer`` owns: the records waiting, from the
    high watermark of its last fetch (``stage`` is keyed by partition). Never a ListOffsets
    request: the embedded broker answers those wrongly."""
    for tp in consumer.assignment():
        try:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
        except Exception:  # noqa: BLE001 - no fetch yet: nothing known
            continue
        if high is not None and high >= 0:
            tracker.highwater(stage, tp.partition, high)


HEALTH_PATHS = ("/healthz", "/health")


def health_app(tracker: ProgressTracker, metrics_app: Callable[..., Any]) -> Callable[..., Any]:
    """A WSGI app: ``/healthz`` from the tracker, everything else from ``metrics_app``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") in HEALTH_PATHS:
            report = tracker.report()
            status = "200 OK" if report.ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [report.to_json()]
        return metrics_app(environ, start_response)

    return app


def start_metrics_and_health(
    port: int, addr: str, registry: Any, tracker: ProgressTracker
) -> Any:
    """Serve ``/metrics`` and ``/healthz`` on one port from a daemon thread; the server."""
    from wsgiref.simple_server import make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

    server = make_server(addr, port, health_app(tracker, make_wsgi_app(registry)),
                         ThreadingWSGIServer, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="metrics-http")
    thread.start()
    return server
