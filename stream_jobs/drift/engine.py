"""``DriftEngine``: stage 1 of the drift pipeline, per input partition, pure (no Kafka).

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
>>> for r in engine.drain_partials():  # (markers carry progress only)
...     if r.kind == "drift":
...         print(r.partition, r.window_start_ms, r.progress_ms, r.is_marker)
0 0 0 True
0 0 20000 False
1 10000 10000 True
1 10000 20000 False
>>> engine.observe(1, 2, batch(0))  # partition 1 closed that window already: late
1000

Windows close per input partition
---------------------------------
Each partition builds its own :class:`WindowPartial` per (model, version, window) and
closes it on its *own* event clock for the model: a window closes in partition ``p`` as
soon as a batch of ``p`` brings the model's maximum event time in ``p`` to ``end +
allowed_lateness`` or beyond. Closing happens inside :meth:`observe`, so what a partial
holds is a function of the partition's records alone — not of timers, of which worker owns
the partition, or of a restart. A closed partial leaves as a :class:`PartialRecord` of kind
``drift`` (:meth:`drain_partials`) for the merge stage, which merges every partition's
partial of a window and judges it (:mod:`stream_jobs.merge`); each record carries the
partition's progress, and a closing step with no data in any closed window sends a progress
marker instead (empty payload), so the merge stage knows a partition without data has
nothing more for a window. Events of a window the partition has already closed are late:
counted (returned by :meth:`observe`) and reported in the partition's next partial.

Online detectors run per partition; their firings leave as records of kind ``vote`` and
the quorum is counted per model in the merge stage (:mod:`stream_jobs.merge.votes`), in
event time: each drain also sends a ``vote`` progress marker per model whose detector clock
moved (newest event time less the allowed lateness; older events are no longer fed to the
partition's detectors), after every firing made so far.

Idempotence and state: :meth:`observe` keeps the last applied offset per partition and
skips any ``(partition, offset)`` at or below it. :meth:`partition_state` /
:meth:`restore_partition` carry one partition's state (open partials, clocks, late counts,
last applied offset) through the versioned state codec; online detectors are not part of
it (a new owner restarts them, they warm up again within a few chunks).

For tests, benches and single-process use, :meth:`poll_closed` / :meth:`flush` run the
partials through an in-process merge book and return merged, judged windows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.columnar import PredictionColumns
from schemas.detection import Detection
from stream_jobs.detectors.chunker import update_rows
from stream_jobs.detectors.column import ColumnDetectors
from stream_jobs.detectors.vote import PREDICTION_SUBJECT, VoteCombiner
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.evaluate import ClosedWindow
from stream_jobs.drift.merger import KIND, DriftMerger, encode_drift_payload
from stream_jobs.merge.book import MergeBook, rec_bytes, rec_from
from stream_jobs.merge.progress import boundary, closing_step
from stream_jobs.merge.protocol import PartialRecord
from stream_jobs.merge.votes import VOTE_KIND, decode_vote, encode_vote, settled_progress
from stream_jobs.reference.view import ReferenceView
from stream_jobs.state.codec import decode_state, encode_state
from stream_jobs.windows.assign import WindowAssigner
from stream_jobs.windows.numeric import stack_rows
from stream_jobs.windows.spec import PREDICTION, PartialSpec
from stream_jobs.windows.window import NUMERIC, WindowPartial

WindowKey = tuple[str, str, int]  # model, model_version, window_start_ms
DetKey = tuple[str, str, str]  # model, model_version, subject
STATE_KIND = "drift"
_NEVER = -(2**62)


@dataclass
class _Partition:
    last_offset: int = -1
    windows: dict[WindowKey, WindowPartial] = field(default_factory=dict)
    detectors: dict[DetKey, ColumnDetectors | None] = field(default_factory=dict)
    last_seen: dict[str, int] = field(default_factory=dict)  # model -> max event time
    closed_until: dict[str, int] = field(default_factory=dict)  # model -> closed boundary
    late_pending: dict[str, int] = field(default_factory=dict)  # model -> not yet reported
    vote_until: dict[str, int] = field(default_factory=dict)  # model -> detectors see >= it
    vote_sent: dict[str, int] = field(default_factory=dict)  # model -> vote progress published
    outbox: list[PartialRecord] = field(default_factory=list)


class DriftEngine:
    """Per-partition windows and online detectors for every partition it is fed."""

    def __init__(
        self, config: DriftConfig | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or DriftConfig()
        self.clock = clock
        c = self.config
        self.assigner = WindowAssigner(c.window_ms, c.hop_ms)
        self.input_partitions = 0  # of the predictions topic; 0: the partitions seen
        self._refs: dict[tuple[str, str], ReferenceView] = {}
        self._specs: dict[tuple[str, str], tuple[ReferenceView | None, PartialSpec]] = {}
        self._parts: dict[int, _Partition] = {}
        self.late_total: dict[str, int] = {}
        # in-process merge (poll_closed / flush / poll_detector_firings)
        self.votes = VoteCombiner(c.quorum, c.vote_window_ms, c.idle_partition_s)
        self._book = MergeBook(wait_s=c.idle_partition_s)
        self._merger = DriftMerger(c)
        self._firings: list[Detection] = []

    # ---- references ------------------------------------------------------------------
    def set_reference(self, profile_record: dict[str, Any]) -> None:
        """Install (or replace) a ``ReferenceProfile``; ``model_version ""`` = any version.

        Windows already open keep the range/category facts they were created with; the
        model's online detectors restart with the new standardisation.
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
            ref = self.reference(model, version)
            got = self._specs[(model, version)] = (ref, self._merger.spec(ref))
        return got

    # ---- ingest ----------------------------------------------------------------------
    def observe(self, partition: int, offset: int, cols: PredictionColumns) -> int:
        """Apply one batch (one Kafka record) of ``partition`` at ``offset`` and close what
        the partition's clock has passed.

        Returns the number of late events (counted, not applied). A ``(partition, offset)``
        at or below the last applied offset of the partition is skipped (returns 0).
        """
        st = self._parts.get(partition)
        if st is None:
            st = self._parts[partition] = _Partition()
        if offset <= st.last_offset:
            return 0
        st.last_offset = offset
        if cols.n == 0:
            return 0
        model, version = cols.model, cols.model_version
        t = np.asarray(cols.event_time_ms)
        on_time, late = self.assigner.split_late(t, st.closed_until.get(model, -math.inf))
        if late:
            st.late_pending[model] = st.late_pending.get(model, 0) + late
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
        if tmax > st.last_seen.get(model, _NEVER):
            st.last_seen[model] = tmax
        if self.config.detectors and ref is not None:
            floor = st.vote_until.get(model, _NEVER)
            if int(t_on.min()) < floor:  # older than the vote progress published: not fed
                keep = t_on >= floor
                on_time = np.flatnonzero(keep) if on_time is None else on_time[keep]
                t_on = t_on[keep]
            if t_on.size:
                self._detect(st, partition, offset, cols, ref, on_time, t_on)
            wm = st.last_seen[model] - self.config.allowed_lateness_ms
            if wm > floor:
                st.vote_until[model] = wm
        self._close(st, partition, model, st.last_seen[model] - self.config.allowed_lateness_ms)
        return late

    def _boundary(self, limit_ms: float) -> int:
        return boundary(limit_ms, self.assigner.hop_ms)

    def _close(self, st: _Partition, partition: int, model: str, limit_ms: float) -> None:
        """Close ``model``'s windows of the partition that end at or before ``limit_ms``."""
        boundary = self._boundary(limit_ms)
        if boundary <= st.closed_until.get(model, _NEVER):
            return
        self._emit(st, partition, model, boundary)

    def _emit(self, st: _Partition, partition: int, model: str, boundary: int) -> None:
        st.closed_until[model] = boundary
        keys = sorted(k for k, w in st.windows.items() if k[0] == model and w.end_ms <= boundary)
        late = st.late_pending.pop(model, 0)
        closed = []
        for key in keys:
            w = st.windows.pop(key)
            closed.append((w.model_version, w.start_ms, w.end_ms, encode_drift_payload(w, late)))
            late = 0
        st.outbox += closing_step(model, KIND, partition, self.input_partitions, st.last_offset,
                                  boundary, closed)  # fmt: skip
        if not keys and late:
            st.late_pending[model] = late

    def _record(self, partition: int, st: _Partition, version: str, model: str, kind: str,
                start: int, end: int, progress: int, payload: bytes) -> PartialRecord:  # fmt: skip
        return PartialRecord(
            model, version, kind, start, end, partition, self.input_partitions,
            st.last_offset, payload, progress,
        )  # fmt: skip

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
        fed = []
        for name, col, x in streams:
            det = self._column_detectors(st, partition, (model, version, name), col.mean, col.std)
            if det is not None:
                fed.append((det, x))
        matrix = stack_rows([x for _, x in fed], rows)
        chunked = None if matrix is None else update_rows([d.chunker for d, _ in fed], matrix, t)
        for j, (det, x) in enumerate(fed):
            xr = x if rows is None else x[rows]
            got = det.update(xr, t, offset) if chunked is None else det.update_chunked(
                xr, t, offset, *chunked[j])  # fmt: skip
            for f in got:
                st.outbox.append(self._record(partition, st, version, model, VOTE_KIND,
                                              f.event_time_ms, f.event_time_ms, -1,
                                              encode_vote(f)))  # fmt: skip

    # ---- stage 1 output --------------------------------------------------------------
    def drain_partials(self, partitions: Iterable[int] | None = None) -> list[PartialRecord]:
        """Records closed since the last call (partials, progress markers, votes), in
        partition order, each partition's in the order they were made."""
        out: list[PartialRecord] = []
        for p in sorted(self._parts if partitions is None else partitions):
            st = self._parts.get(p)
            if st is None:
                continue
            if st.outbox:
                out += st.outbox
                st.outbox = []
            for model, until in sorted(st.vote_until.items()):
                if until > st.vote_sent.get(model, _NEVER):  # after every firing made so far
                    st.vote_sent[model] = until
                    out.append(self._record(p, st, "", model, VOTE_KIND, until, until, until, b""))
        return out

    def close_until(self, now_ms: int) -> None:
        """Close, in every partition, the windows whose ``end + allowed_lateness`` is at or
        below ``now_ms`` (processing time: only for models whose event time tracks the
        wall clock, to close windows of a model whose traffic stopped)."""
        for p, st in self._parts.items():
            for model in list(st.last_seen):
                self._close(st, p, model, now_ms - self.config.allowed_lateness_ms)

    def close_all(self) -> None:
        """Close every open window now (shutdown, tests)."""
        for p, st in self._parts.items():
            ends: dict[str, int] = {}
            for (model, _, _), w in st.windows.items():
                ends[model] = max(ends.get(model, _NEVER), w.end_ms)
            for model, end in ends.items():
                self._emit(st, p, model, max(end, st.closed_until.get(model, _NEVER)))

    # ---- in-process merge (tests, benches, one process) ------------------------------
    def poll_closed(self, now_ms: int | None = None) -> list[ClosedWindow]:
        """Drain the partials and merge them here: windows every partition seen has
        closed (or that waited ``idle_partition_s`` of clock time), merged and judged."""
        if now_ms is not None:
            self.close_until(now_ms)
        return self._merge_local()

    def flush(self) -> list[ClosedWindow]:
        """Close and merge every open window now."""
        self.close_all()
        return self._merge_local(force=True)

    def _merge_local(self, force: bool = False) -> list[ClosedWindow]:
        for rec in self.drain_partials():
            if rec.kind == VOTE_KIND and not rec.is_marker:
                self.votes.add(decode_vote(rec))
            else:
                self._book.add(rec)
        now = math.inf if force else self.clock()
        lag = self.assigner.size_ms - self.assigner.hop_ms
        for model in sorted(self.votes.pending):
            progress, expected = settled_progress(self._book, model, lag)
            self._firings += self.votes.decide(model, progress, expected, now, force)
        out = []
        for key, parts, _ in self._book.ready(now):
            out.append(self._merger.merge_closed(parts, self.reference(key[0], key[1])))
        return out

    def poll_detector_firings(self) -> list[Detection]:
        """Online detections that reached quorum (in-process merge) since the last call."""
        self._merge_local()
        out, self._firings = self._firings, []
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
        """Forget partitions (revoked: their state lives on in the changelog)."""
        for p in partitions:
            self._parts.pop(p, None)

    # ---- state -----------------------------------------------------------------------
    def partition_state(self, partition: int) -> bytes:
        """One partition's state through the versioned codec (detectors excluded)."""
        st = self._parts.get(partition) or _Partition()
        header = {
            "partition": partition,
            "last_offset": st.last_offset,
            "last_seen": st.last_seen,
            "closed_until": st.closed_until,
            "late_pending": st.late_pending,
            "vote_until": st.vote_until,
            "vote_sent": st.vote_sent,
            "windows": len(st.windows),
        }
        blobs = [w.to_bytes() for _, w in sorted(st.windows.items())]
        blobs += [rec_bytes(r) for r in st.outbox]
        return encode_state(STATE_KIND, header, blobs)

    def restore_partition(self, partition: int, data: bytes) -> int:
        """Install a partition's state (replacing what this engine held); returns the
        number of open windows restored."""
        h, blobs = decode_state(data, STATE_KIND)
        st = self._parts[partition] = _Partition(int(h["last_offset"]))
        st.last_seen = {m: int(v) for m, v in h["last_seen"].items()}
        st.closed_until = {m: int(v) for m, v in h["closed_until"].items()}
        st.late_pending = {m: int(v) for m, v in h["late_pending"].items()}
        st.vote_until = {m: int(v) for m, v in h.get("vote_until", {}).items()}
        st.vote_sent = {m: int(v) for m, v in h.get("vote_sent", {}).items()}
        n = int(h["windows"])
        for raw in blobs[:n]:
            w = WindowPartial.from_bytes(raw)
            w.spec = self._spec(w.model, w.model_version)[1]
            st.windows[(w.model, w.model_version, w.start_ms)] = w
        st.outbox = [rec_from(b) for b in blobs[n:]]
        return n

    def state_bytes(self) -> bytes:
        """Every partition's state (:meth:`partition_state`), for a whole-engine restore."""
        parts = {str(p): self.partition_state(p).hex() for p in sorted(self._parts)}
        header = {"config": self.config.model_dump(), "parts": parts,
                  "refs": len(self._refs), "late_total": self.late_total}  # fmt: skip
        refs = [json.dumps(r.record, default=_bytes_hex).encode() for r in self._refs.values()]
        return encode_state("drift-engine", header, refs)

    @classmethod
    def from_state_bytes(cls, data: bytes, config: DriftConfig | None = None) -> DriftEngine:
        h, refs = decode_state(data, "drift-engine")
        engine = cls(config or DriftConfig(**h["config"]))
        for raw in refs:
            engine.set_reference(json.loads(raw, object_hook=_hex_bytes))
        for p, hexed in h["parts"].items():
            engine.restore_partition(int(p), bytes.fromhex(hexed))
        engine.late_total = dict(h["late_total"])
        return engine


def _bytes_hex(v: object) -> object:
    if isinstance(v, bytes):
        return {"__bytes__": v.hex()}
    raise TypeError(type(v).__name__)


def _hex_bytes(d: dict[str, Any]) -> object:
    return bytes.fromhex(d["__bytes__"]) if set(d) == {"__bytes__"} else d
