"""``DriftEngine``: the pure facade the Faust worker calls (no Kafka, no I/O).

>>> import numpy as np
>>> from schemas.columnar import PredictionColumns
>>> from stream_jobs.reference.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> def batch(t0, shift=0.0, n=1_000):
...     t = t0 + np.arange(n, dtype=np.int64) * 10
...     return PredictionColumns("m", "1", [""] * n, t, np.full(n, 5.0), np.zeros(n, np.int8),
...                              numeric={"x": rng.normal(shift, 1, n)}, score=rng.random(n))
>>> engine = DriftEngine(DriftConfig(window_ms=10_000, allowed_lateness_ms=1_000))
>>> engine.set_reference(build_profile("m", "", numeric={"x": rng.normal(size=20_000)},
...                                    prediction=rng.random(20_000)))
>>> engine.observe(0, 0, batch(0)), engine.observe(0, 0, batch(0))   # replay: skipped
(0, 0)
>>> engine.observe(1, 0, batch(10_000, shift=1.0))
0
>>> engine.observe(0, 1, batch(20_000)), engine.observe(1, 1, batch(20_000))
(0, 0)
>>> [(w.window_start_ms, w.stats["count"]) for w in engine.poll_closed()]
[(0, 1000), (10000, 1000)]
>>> engine.observe(1, 2, batch(0))  # its window is closed and published: late
1000

Watermark and merging
---------------------
Per model, the watermark is the event clock — the minimum over the partitions this process
owns that are active for the model of their maximum event time — minus
``allowed_lateness_ms`` (a backlog read partition by partition must not close a window
that the slower partitions still feed). Each partition builds its own
:class:`WindowPartial`; a window closes when ``end + allowed_lateness <= max event
time``, at which point the partials of every partition **in this process** are merged,
judged against the reference and returned by :meth:`poll_closed`. Events for a window
that is already closed are counted as late (returned by :meth:`observe`, reported in the
next closed window's ``late_events``) and never applied.

**SINGLE-PROCESS ONLY.** With several worker processes each one sees only its own
partitions and would publish its own, partial view of a window. Merging across workers
(publishing ``WindowPartial.to_bytes()`` to a partials topic keyed by model and merging
there) is a later step; until then run one worker process per model's partitions.

Idempotence: :meth:`observe` keeps the last applied offset per partition and skips any
``(partition, offset)`` at or below it, so an at-least-once replay after a crash does not
double-count (restore the state with :meth:`from_state_bytes` first).
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.columnar import PredictionColumns
from schemas.detection import Detection
from stream_jobs.detectors.column import ColumnDetectors
from stream_jobs.detectors.vote import PREDICTION_SUBJECT, VoteCombiner
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.evaluate import ClosedWindow, evaluate_window
from stream_jobs.reference.view import ReferenceView
from stream_jobs.windows.assign import WindowAssigner
from stream_jobs.windows.spec import PREDICTION, PartialSpec
from stream_jobs.windows.window import NUMERIC, WindowPartial

WindowKey = tuple[str, str, int]  # model, model_version, window_start_ms
DetKey = tuple[str, str, str]  # model, model_version, subject


@dataclass
class _Partition:
    last_offset: int = -1
    windows: dict[WindowKey, WindowPartial] = field(default_factory=dict)
    detectors: dict[DetKey, ColumnDetectors | None] = field(default_factory=dict)
    last_seen: dict[str, int] = field(default_factory=dict)  # model -> max event time
    last_clock: float = -math.inf  # clock() of the partition's last record, of any model


class DriftEngine:
    """Windows, drift verdicts and online detectors for every partition it is fed."""

    def __init__(
        self, config: DriftConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or DriftConfig()
        self.clock = clock
        c = self.config
        self.assigner = WindowAssigner(c.window_ms, c.hop_ms)
        self.votes = VoteCombiner(c.quorum, c.vote_window_ms)
        self._refs: dict[tuple[str, str], ReferenceView] = {}
        self._specs: dict[tuple[str, str], tuple[ReferenceView | None, PartialSpec]] = {}
        self._parts: dict[int, _Partition] = {}
        self._max_t: dict[str, int] = {}
        self._closed_until: dict[str, int] = {}  # model -> end of the newest closed window
        self.late_pending: dict[str, int] = {}
        self.late_total: dict[str, int] = {}
        self._firings: list[Detection] = []

    # ---- references ------------------------------------------------------------------
    def set_reference(self, profile_record: dict[str, Any]) -> None:
        """Install (or replace) a ``ReferenceProfile``; ``model_version ""`` = any version.

        Windows already open keep the range/category facts they were created with; the
        next closed window is judged against the new reference; the model's online
        detectors restart with the new standardisation.
        """
        ref = ReferenceView(profile_record)
        self._refs[(ref.model, ref.model_version)] = ref
        self._specs = {k: v for k, v in self._specs.items() if k[0] != ref.model}
        for st in self._parts.values():
            for key in [k for k in st.detectors if k[0] == ref.model]:
                del st.detectors[key]

    def reference(self, model: str, model_version: str) -> ReferenceView | None:
        return self._refs.get((model, model_version)) or self._refs.get((model, ""))

    def _spec(self, model: str, version: str) -> tuple[ReferenceView | None, PartialSpec]:
        got = self._specs.get((model, version))
        if got is None:
            c = self.config
            ref = self.reference(model, version)
            spec = (
                ref.partial_spec(c.kll_k, c.category_cap)
                if ref is not None
                else PartialSpec(kll_k=c.kll_k, category_cap=c.category_cap)
            )
            got = self._specs[(model, version)] = (ref, spec)
        return got

    # ---- ingest ----------------------------------------------------------------------
    def event_clock(self, model: str) -> float:
        """How far event time has got for ``model`` on *every* active partition: the minimum
        over partitions that delivered any record within ``idle_partition_s`` (clock time)
        of their max event time for the model. A partition far ahead of the others (a
        backlog read partition by partition) then cannot close windows the others still
        feed; a partition busy with other models' records still counts as active; an idle
        partition stops holding the clock back after ``idle_partition_s``."""
        now = self.clock()
        idle = self.config.idle_partition_s
        active = [
            st.last_seen[model]
            for st in self._parts.values()
            if model in st.last_seen and now - st.last_clock <= idle
        ]
        if active:
            return float(min(active))
        t = self._max_t.get(model)
        return -math.inf if t is None else float(t)

    def watermark(self, model: str) -> float:
        """Event clock of the model (see :meth:`event_clock`) minus the allowed lateness."""
        return self.event_clock(model) - self.config.allowed_lateness_ms

    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> int:
        """Apply one batch (one Kafka record) of ``partition`` at ``offset``.

        Returns the number of late events (counted, not applied). A ``(partition, offset)``
        at or below the last applied offset of the partition is skipped (returns 0).
        """
        st = self._parts.get(partition)
        if st is None:
            st = self._parts[partition] = _Partition()
        if offset <= st.last_offset:
            return 0
        st.last_offset = offset
        st.last_clock = self.clock()
        if cols.n == 0:
            return 0
        model, version = cols.model, cols.model_version
        t = np.asarray(cols.event_time_ms)
        # late = every window the event belongs to has already been closed and published
        on_time, late = self.assigner.split_late(t, self._closed_until.get(model, -math.inf))
        if late:
            self.late_pending[model] = self.late_pending.get(model, 0) + late
            self.late_total[model] = self.late_total.get(model, 0) + late
            if on_time is None or on_time.size == 0:
                return late
        ref, spec = self._spec(model, version)
        t_on = t if on_time is None else t[on_time]
        for start, sub in self.assigner.assign(t_on):
            rows = on_time if sub is None else (sub if on_time is None else on_time[sub])
            key = (model, version, start)
            w = st.windows.get(key)
            if w is None:
                w = st.windows[key] = WindowPartial(
                    model, version, start, start + self.assigner.size_ms, spec
                )
            w.update(cols, rows)
        tmax = int(t_on.max())
        if tmax > self._max_t.get(model, -(2**62)):
            self._max_t[model] = tmax
        if tmax > st.last_seen.get(model, -(2**62)):
            st.last_seen[model] = tmax
        if self.config.detectors and ref is not None:
            self._detect(st, partition, offset, cols, ref, on_time, t_on)
        return late

    # ---- online detectors ------------------------------------------------------------
    def _column_detectors(
        self, st: _Partition, partition: int, key: DetKey, mean: float | None, std: float | None
    ) -> ColumnDetectors | None:
        if key in st.detectors:
            return st.detectors[key]
        c = self.config
        det = None
        if mean is not None and std is not None and std > 0:
            kswin_name = PREDICTION if key[2] == PREDICTION_SUBJECT else key[2]
            det = ColumnDetectors(
                key[0], key[1], key[2], partition, mean, std, chunk=c.detector_chunk,
                adwin=c.adwin, page_hinkley=c.page_hinkley,
                kswin=c.kswin and (c.kswin_columns is None or kswin_name in c.kswin_columns),
                adwin_delta=c.adwin_delta, adwin_clock=c.adwin_clock,
                ph_delta=c.ph_delta, ph_threshold=c.ph_threshold,
                kswin_every=c.kswin_sample_every, kswin_alpha=c.kswin_alpha,
            )  # fmt: skip
        st.detectors[key] = det
        return det

    def _detect(
        self,
        st: _Partition,
        partition: int,
        offset: int,
        cols: PredictionColumns,
        ref: ReferenceView,
        rows: np.ndarray | None,
        t: np.ndarray,
    ) -> None:
        model, version = cols.model, cols.model_version
        streams: list[tuple[str, Any, np.ndarray]] = []
        for name, col in ref.columns.items():
            x = cols.numeric.get(name)
            if col.kind == NUMERIC and x is not None:
                streams.append((name, col, x))
        if ref.prediction is not None and ref.prediction.kind == NUMERIC and cols.score is not None:
            streams.append((PREDICTION_SUBJECT, ref.prediction, cols.score))
        firings = []
        for name, col, x in streams:
            det = self._column_detectors(st, partition, (model, version, name), col.mean, col.std)
            if det is not None:
                firings += det.update(x if rows is None else x[rows], t, offset)
        if firings:
            n = self._partitions_with_data(model)
            for f in firings:
                d = self.votes.update(f, n)
                if d is not None:
                    self._firings.append(d)

    def _partitions_with_data(self, model: str) -> int:
        horizon = self._max_t.get(model, 0) - self.config.vote_window_ms
        return sum(1 for st in self._parts.values() if st.last_seen.get(model, -(2**62)) >= horizon)

    def poll_detector_firings(self) -> list[Detection]:
        """Online detections that reached quorum since the last call."""
        out, self._firings = self._firings, []
        return out

    # ---- closing ---------------------------------------------------------------------
    def poll_closed(self, now_ms: int | None = None) -> list[ClosedWindow]:
        """Merge, judge and return every window whose ``end + allowed_lateness`` is at or
        below the model's event clock (:meth:`event_clock`; or ``now_ms`` when given:
        pass processing time only when event time tracks wall-clock time, to close
        windows of a model whose traffic stopped)."""
        lateness = self.config.allowed_lateness_ms
        ready: dict[WindowKey, list[WindowPartial]] = {}
        for st in self._parts.values():
            for key in list(st.windows):
                limit = self.event_clock(key[0])
                if now_ms is not None:
                    limit = max(limit, now_ms)
                if st.windows[key].end_ms + lateness <= limit:
                    ready.setdefault(key, []).append(st.windows.pop(key))
        return self._close(ready)

    def flush(self) -> list[ClosedWindow]:
        """Close every open window now (shutdown, tests)."""
        ready: dict[WindowKey, list[WindowPartial]] = {}
        for st in self._parts.values():
            for key in list(st.windows):
                ready.setdefault(key, []).append(st.windows.pop(key))
        return self._close(ready)

    def _close(self, ready: dict[WindowKey, list[WindowPartial]]) -> list[ClosedWindow]:
        out: list[ClosedWindow] = []
        for key in sorted(ready):
            parts = ready[key]
            merged = parts[0]
            for p in parts[1:]:
                merged.merge(p)
            model = key[0]
            self._closed_until[model] = max(
                self._closed_until.get(model, -(2**62)), key[2] + self.assigner.size_ms
            )
            late = self.late_pending.pop(model, 0)
            out.append(evaluate_window(merged, self.reference(model, key[1]), self.config, late))
        for model, t in self._max_t.items():
            self.votes.expire_model(model, t)
        return out

    # ---- introspection ---------------------------------------------------------------
    @property
    def partitions(self) -> list[int]:
        return sorted(self._parts)

    def last_offset(self, partition: int) -> int:
        st = self._parts.get(partition)
        return -1 if st is None else st.last_offset

    def open_windows(self) -> list[WindowKey]:
        return sorted({k for st in self._parts.values() for k in st.windows})

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        """Forget revoked partitions (their open partials are discarded)."""
        for p in partitions:
            self._parts.pop(p, None)

    # ---- state -----------------------------------------------------------------------
    def state_bytes(self) -> bytes:
        """Everything needed to resume after a restart (a pickle: trusted, local use)."""
        return pickle.dumps(
            {
                "v": 1,
                "config": self.config.model_dump(),
                "refs": [r.record for r in self._refs.values()],
                "parts": {
                    p: {
                        "last_offset": st.last_offset,
                        "windows": [w.to_bytes() for w in st.windows.values()],
                        "detectors": st.detectors,
                        "last_seen": st.last_seen,
                    }
                    for p, st in self._parts.items()
                },
                "max_t": self._max_t,
                "closed_until": self._closed_until,
                "late_pending": self.late_pending,
                "late_total": self.late_total,
                "votes": self.votes.votes,
                "emitted": self.votes.emitted,
                "firings": [d.to_record() for d in self._firings],
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def from_state_bytes(cls, data: bytes, config: DriftConfig | None = None) -> DriftEngine:
        s = pickle.loads(data)
        engine = cls(config or DriftConfig(**s["config"]))
        for rec in s["refs"]:
            engine.set_reference(rec)
        for p, ps in s["parts"].items():
            st = engine._parts[p] = _Partition(ps["last_offset"])
            for raw in ps["windows"]:
                w = WindowPartial.from_bytes(raw)
                w.spec = engine._spec(w.model, w.model_version)[1]
                st.windows[(w.model, w.model_version, w.start_ms)] = w
            st.detectors = ps["detectors"]
            st.last_seen = ps["last_seen"]
            st.last_clock = engine.clock()  # restored partitions start active
        engine._max_t = s["max_t"]
        engine._closed_until = s.get("closed_until", {})
        engine.late_pending = s["late_pending"]
        engine.late_total = s["late_total"]
        engine.votes.votes = s["votes"]
        engine.votes.emitted = s["emitted"]
        engine._firings = [Detection.from_record(r) for r in s["firings"]]
        return engine
