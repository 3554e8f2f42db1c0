"""Stage 2: the merge stage, a consumer of the window-partials topic on every worker.

The partials topic is keyed by model, so all partials of a model meet in one of its
partitions and exactly one worker (that partition's owner) merges them. Per partials-topic
partition there is one :class:`~stream_jobs.merge.book.MergeBook` (open windows, progress,
recent finals) and one :class:`~stream_jobs.detectors.vote.VoteCombiner` (the online
detectors' quorum per model). Final windows are merged by the merger of their kind, judged
against the model's reference, published to window-stats (one final record per model,
version, window) with their detections, and exported as Prometheus gauges — only here.

At most ``slice_windows`` windows, and windows for at most ``slice_s`` seconds, are merged
per poll, so a backlog of finals never holds the event loop for long. With
``snapshot_off_loop`` (the worker's setting) a snapshot is captured on the loop (cheap: the
book's own lists of immutable records) and encoded on a thread of its own (the costly
part: megabytes of partials); a later poll hands it out once encoded, and no partition has
two encodings under way (the encoder's pace bounds the snapshot rate). A revoke snapshots
synchronously, superseding an encoding under way.

The book (with the votes) is snapshotted to the worker-state changelog as
``merge/<partials partition>`` whenever windows became final, every ``snapshot_every_s`` if
it moved, and on revoke; the partials topic's offsets are committed only up to the last
stored snapshot. Finals are sent before the snapshot that records them.

**Each window is emitted once as final, whoever owned the partition before.** Without
broker transactions (the embedded broker has none) the finals and the snapshot recording
them are two writes, and a new owner restores the last *stored* snapshot: the previous
owner may have emitted finals after it — it was SIGKILLed before the next snapshot was
stored, its revoke flush ran out of time, or its snapshot was refused as too large.
(Measured: the scale-out test kills a worker right after the first performance windows
appear; when that worker owned the model's merge partition, its last stored snapshot
predated those finals, the replayed partials made them final again, and the first
performance windows came out twice — drift windows, final earlier, were in that snapshot.
The merge book's timeout and stage 1's re-sent partials played no part.) So a restore does
not trust the snapshot alone. Rule:

1. Every snapshot carries ``outputs_from``: per window-stats partition, an offset at or
   below that of any final emitted after the snapshot was captured (the next offset past
   this worker's window-stats records the broker had acknowledged by then —
   :meth:`MergeStage.delivered` — or past where the last restore's read ended).
2. The new owner of partials partition ``q``, after restoring ``merge/<q>`` and before any
   partial of ``q`` is handled or any final emitted (:meth:`MergeStage.after_restore`, run
   by the worker loop on a thread during the assignment), reads window-stats from those
   offsets to the fetch's end of partition (the one topic reader, ``read_to_end``) and
   notes every window found there of a model the book knows as emitted
   (:meth:`~stream_jobs.merge.book.MergeBook.mark_emitted`). Such a window still collects
   its partials (replayed from the committed offset) and becomes final as any other, but
   is merged only to bring the mergers' state (the performance ranking baselines) and the
   pooled concept tests' where the earlier owner left them: no window-stats, no
   detections, no metrics, from here.

What stays at least once: a final written by an old owner *after* the new owner's read
(an owner evicted from the group while stalled, still emitting), the finals of a model
whose first partial reached ``q`` after the restored snapshot, and everything when no
snapshot of ``q`` was ever stored (a clean start replays the partials from the beginning;
its earlier finals are not looked for). Detections decided after the snapshot that are
not part of a window (online-detector votes, pooled concept verdicts) may also be sent
again. A window emitted twice in these cases carries the same numbers both times (the
merge is deterministic). The read takes window-stats as this application's own output: a
second consumer group writing the same topic would have its finals taken for this group's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from schemas.codec import Codec, DecodeError
from schemas.detection import Detection
from schemas.kafka.read import Record
from schemas.topics import TopicNames
from stream_jobs.concept.pool import KIND as CONCEPT
from stream_jobs.concept.pool import ConceptPool
from stream_jobs.detectors.vote import VoteCombiner
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.merger import KIND as DRIFT
from stream_jobs.drift.merger import DriftMerger
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.handler import Outgoing
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.protocol import PartialMerger, PartialRecord
from stream_jobs.merge.votes import (
    VOTE_KIND,
    decode_vote,
    load_votes,
    settled_progress,
    votes_state,
)
from stream_jobs.outputs import DetectionSink
from stream_jobs.reference.view import ReferenceView
from stream_jobs.stage import SnapshottingStage, state_key
from stream_jobs.state.metrics import StateMetrics

log = logging.getLogger("modelwatch.merge")
# window-stats records from these offsets per partition (absent: from its beginning) to
# the fetch's end of partition
OutputReader = Callable[[Mapping[int, int]], list[Record]]


class MergeStage(SnapshottingStage):
    name = "merge"

    def __init__(
        self,
        config: DriftConfig,
        drift_metrics: DriftMetrics,
        metrics: StateMetrics,
        sink: DetectionSink,
        codec: Codec,
        topics: TopicNames,
        mergers: list[PartialMerger] | None = None,
        slice_windows: int = 32,
        slice_s: float = 0.25,
        snapshot_every_s: float = 30.0,
        snapshot_off_loop: bool = False,
        concept: ConceptPool | None = None,
        read_outputs: OutputReader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.drift_metrics = drift_metrics
        self.metrics = metrics
        self.sink = sink
        self.codec = codec
        self.topics = topics
        self.state_topics = (topics.window_partials,)
        self.drift = DriftMerger(config)
        self.mergers: dict[str, PartialMerger] = {m.kind: m for m in mergers or []}
        self.concept = concept  # the pooled concept tests (partials of kind concept)
        self.slice_windows = slice_windows
        self.slice_s = slice_s
        self._init_snapshots(snapshot_every_s)
        self.books: dict[int, MergeBook] = {}
        self.votes: dict[int, VoteCombiner] = {}
        self._refs: dict[tuple[str, str], ReferenceView] = {}
        self._polled: dict[int, int] = {}  # last offset seen by the previous poll
        self._encoder = (
            ThreadPoolExecutor(1, thread_name_prefix="merge-snapshot") if snapshot_off_loop
            else None
        )  # fmt: skip
        self._encoding: dict[int, tuple[Future[bytes], int]] = {}  # q -> (bytes, offset)
        self.read_outputs = read_outputs  # None: restores do not look at the output
        self._written: dict[int, int] = {}  # window-stats partition -> past our last stored
        self._outputs_from: dict[int, dict[int, int]] = {}  # q -> where its last read ended
        self._unfenced: dict[int, dict[int, int]] = {}  # q restored -> outputs_from to read
        # the timeout clock per partials partition (:meth:`timeout_clock`): the newest
        # send time read and the local time it was read at
        self._sent: dict[int, tuple[float, float]] = {}
        self.clock = clock  # the local clock records are read on (tests inject one)

    # ---- references ------------------------------------------------------------------
    def set_reference(self, profile: dict[str, Any]) -> None:
        ref = ReferenceView(profile)
        self._refs[(ref.model, ref.model_version)] = ref

    def reference(self, model: str, version: str) -> ReferenceView | None:
        return self._refs.get((model, version)) or self._refs.get((model, ""))

    # ---- input -----------------------------------------------------------------------
    def _book(self, q: int) -> MergeBook:
        book = self.books.get(q)
        if book is None:
            book = self.books[q] = MergeBook(wait_s=self.config.idle_partition_s)
            self.votes[q] = self._combiner()
        return book

    def _combiner(self) -> VoteCombiner:
        c = self.config
        return VoteCombiner(c.quorum, c.vote_window_ms, c.idle_partition_s)

    def observe_partial(
        self, q: int, offset: int, value: bytes | None, sent_s: float | None = None
    ) -> None:
        """One record of partials-topic partition ``q``, sent at ``sent_s`` (the record's
        timestamp: its producer's clock; None or <= 0: unknown)."""
        if sent_s is not None and sent_s > 0:
            newest = max(sent_s, self._sent.get(q, (sent_s, 0.0))[0])
            self._sent[q] = (newest, self.clock())
        book = self._book(q)
        try:
            rec = PartialRecord.from_record(
                self.codec.decode(value, expect=("WindowPartial",)).record
            )
        except (DecodeError, KeyError, ValueError, TypeError) as exc:
            log.error("unreadable partial at %s[%d]@%d: %r", self.topics.window_partials, q,
                      offset, exc)  # fmt: skip
            self.metrics.partials.labels("?", "unreadable").inc()
            book.last_offset = max(book.last_offset, offset)
            return
        pool = self.concept if rec.kind == CONCEPT else None  # error buckets
        vote = rec.kind == VOTE_KIND and not rec.is_marker  # a firing (markers: progress)
        if pool is not None or vote:  # not windows: the book only records the offset
            if offset <= book.last_offset:
                outcome = "skipped"
            else:
                book.last_offset = offset
                outcome = (
                    pool.add(q, rec, self.timeout_clock(q, self.clock())) if pool is not None
                    else self.votes[q].add(decode_vote(rec))  # decided in poll, in event time
                )  # fmt: skip
            self.metrics.partials.labels(rec.kind, outcome).inc()
            return
        outcome = book.add(rec, offset)
        self.metrics.partials.labels(rec.kind, outcome).inc()

    # ---- output ----------------------------------------------------------------------
    def _merge(self, q: int, key: tuple, parts: list[PartialRecord], complete: bool) -> list:
        model, version, kind, _ = key
        emitted = self.books[q].take_emitted(key)  # final on the output already: state only
        started = time.perf_counter()
        out: list[Outgoing] = []
        ref = self.reference(model, version)
        detections: list[Detection]
        if kind == DRIFT and emitted:  # nothing of it is kept: not merged at all
            return out
        if kind == DRIFT:
            closed = self.drift.merge_closed(parts, ref)
            self.drift_metrics.record_window(closed)
            stats, detections = closed.stats, closed.detections
        else:
            merger = self.mergers.get(kind)
            if merger is None:
                log.error("no merger for partials of kind %r (model %s): dropped", kind, model)
                return out
            merged = merger.merge(parts, ref)
            stats, detections = merged.stats, merged.detections
            if self.concept is not None:  # the pooled concept test observes the window
                self.concept.window_closed(q, model, version, key[3], parts[0].window_end_ms)
        if emitted:  # the mergers' and the concept tests' state moved; nothing is sent
            return out
        out.append(self.sink.encode_window_stats(stats))
        out += self.sink.encode(detections)
        self.metrics.merged.labels(kind, str(complete).lower()).inc()
        self.metrics.merge_seconds.labels(kind).inc(time.perf_counter() - started)
        if not complete:
            log.warning("window %s final without every partition (waited %.0f s)", key,
                        self.config.idle_partition_s)  # fmt: skip
        return out

    def timeout_clock(self, q: int, now_s: float) -> float:
        """The clock the timeouts of partials partition ``q`` run on (the book's silent
        partitions, the votes' quorum, the pooled concept tests' stalled partitions): the
        send time of the newest record read, plus the time since it was read.

        Caught up, that is the wall clock. Reading a backlog (a replay, a burst of
        closing steps: thousands of partials sent within a second, read over a minute
        while the loop also merges), it stands still at the backlog's send time, so a
        partition whose records are further down the backlog is not taken for silent:
        it times out only once records sent ``wait_s`` after it went quiet have been read,
        or nothing at all for ``wait_s``. (Measured: a two-day backtest's merge stage cut
        82 drift windows without a partition whose partials were still unread.)"""
        got = self._sent.get(q)
        if got is None:
            return now_s
        sent, read_at = got
        return sent + max(0.0, now_s - read_at)

    def _decide_votes(self, q: int, now_s: float) -> list[Outgoing]:
        """Online detections whose votes every input partition has passed (or timed out)."""
        votes, book = self.votes[q], self.books[q]
        c = self.config
        lag = c.window_ms - (c.hop_ms or c.window_ms)  # hopping: on time below the progress
        out: list[Outgoing] = []
        for model in sorted(votes.pending):
            progress, expected = settled_progress(book, model, lag, DRIFT)
            moved = book.moved(model, (DRIFT, VOTE_KIND), now_s)
            for d in votes.decide(model, progress, expected, now_s, moved_s=moved):
                self.drift_metrics.record_detection(d)
                out += self.sink.encode([d])
        return out

    def poll(self, now_s: float, partitions: list[int] | None = None) -> list[Outgoing]:
        out: list[Outgoing] = []
        budget = self.slice_windows
        until = time.perf_counter() + self.slice_s
        targets = sorted(self.books) if partitions is None else partitions
        for q in targets:
            book = self.books.get(q)
            if book is None:
                continue
            clock = self.timeout_clock(q, now_s)
            decided = self._decide_votes(q, clock)
            if self.concept is not None:  # pooled concept verdicts that changed
                decided += self.sink.encode(self.concept.poll(q, clock))
            out += decided
            ready = []
            while budget > 0 and (partitions is not None or time.perf_counter() < until):
                got = book.ready(clock, limit=1)
                if not got:
                    break
                ready += got
                budget -= 1
                key, parts, complete = got[0]
                try:
                    out += self._merge(q, key, parts, complete)
                except Exception:  # a bad partial must not stop the stage: count, go on
                    log.exception("merging %s failed: window dropped", key)
                    self.metrics.merged.labels(key[2], "failed").inc()
            moved, due = self._snapshot_due(q, book.last_offset, now_s)
            idle = book.last_offset == self._polled.get(q)  # nothing new since the last poll
            self._polled[q] = book.last_offset
            wanted = bool(ready) or bool(decided) or (moved and (due or idle))
            if partitions is not None or self._encoder is None:
                self._encoding.pop(q, None)  # superseded (revoke): never handed out
                if wanted or partitions is not None:
                    out.append(self._snapshot(q, now_s))
            elif wanted or q in self._encoding:
                out += self._snapshot_off_loop(q, now_s)
        return out

    def _snapshot_off_loop(self, q: int, now_s: float) -> list[Outgoing]:
        """The snapshot whose encoding finished, or start one (captured now); [] while one
        is under way."""
        assert self._encoder is not None
        pending = self._encoding.get(q)
        if pending is None:
            book = self.books[q]
            header, recs = book.snapshot_parts(self._extra(q))
            fut = self._encoder.submit(MergeBook.encode_parts, header, recs)
            self._encoding[q] = (fut, book.last_offset)
            return []
        fut, offset = pending
        if not fut.done():
            return []
        del self._encoding[q]
        try:
            data = fut.result()
        except Exception:  # not stored: the partition counts as moved and snapshots again
            log.exception("encoding the merge snapshot of partials partition %d failed", q)
            return []
        return [self._snapshot_record(q, offset, data, now_s, self.topics.worker_state,
                                      self.metrics)]  # fmt: skip

    def _extra(self, q: int) -> dict[str, Any]:
        """What a merge snapshot carries besides the book: the votes and the mergers' state
        (the performance merger's ranking baselines) of the partition's models."""
        models = {m for m, _ in self.books[q].progress}
        kept = {k: m.state(models) for k, m in self.mergers.items() if hasattr(m, "state")}
        extra = {"votes": votes_state(self.votes[q]), "mergers": kept,
                 "outputs_from": self._outputs_mark(q)}  # fmt: skip
        if self.concept is not None:
            extra["concept"] = self.concept.state(q)
        return extra

    # ---- emitted once: the output read after a restore ---------------------------------
    def delivered(self, partition: int, offset: int) -> None:
        """A window-stats record this worker sent is stored at ``offset`` of ``partition``
        (called by the worker's sender on each acknowledgement)."""
        if offset + 1 > self._written.get(partition, 0):
            self._written[partition] = offset + 1

    def _outputs_mark(self, q: int) -> dict[str, int]:
        """Per window-stats partition, an offset at or below that of any final emitted
        from now on: past the records acknowledged so far, or past the last restore's read
        (a record sent later is stored after both)."""
        mark = dict(self._outputs_from.get(q, {}))
        for p, off in self._written.items():
            mark[p] = max(mark.get(p, 0), off)
        return {str(p): off for p, off in sorted(mark.items())}

    def after_restore(self, topic: str, partitions: list[int]) -> None:
        """For each partition restored from a snapshot: read window-stats from the
        snapshot's ``outputs_from`` to the end and mark the windows found there final
        (blocking; the worker loop runs it before the partition's first partial)."""
        for q in partitions:
            since = self._unfenced.pop(q, None)
            if since is None or q not in self.books or self.read_outputs is None:
                continue
            started = time.perf_counter()
            try:
                records = self.read_outputs(since)
            except Exception:  # the restore goes on: at least once, as without the read
                log.exception("reading %s after the snapshot of partials partition %d failed: "
                              "finals emitted since may be emitted again",
                              self.topics.window_stats, q)  # fmt: skip
                continue
            marked = self._mark_emitted(q, records)
            ends = dict(since)
            for r in records:
                ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
            self._outputs_from[q] = ends
            log.warning("merge partition %d: %d windows final on %s after its snapshot (%d "
                        "records read in %.2f s): not emitted again", q, marked,
                        self.topics.window_stats, len(records),
                        time.perf_counter() - started)  # fmt: skip

    def _mark_emitted(self, q: int, records: list[Record]) -> int:
        book = self.books[q]
        models = set(book.expected) | {m for m, _ in book.progress}
        marked = 0
        for r in records:
            key = self._window_of(r.value)
            if key is not None and key[0] in models:
                marked += book.mark_emitted(key)
        return marked

    def _window_of(self, value: bytes | None) -> tuple[str, str, str, int] | None:
        """The window key of a window-stats record: a drift part has features; the part
        of another kind fills the WindowStats field named after its merger's kind."""
        try:
            r = self.codec.decode(value, expect=("WindowStats",)).record
        except (DecodeError, TypeError, ValueError):  # not ours to judge: skipped
            return None
        kind = DRIFT if r.get("features") else next((k for k in self.mergers if r.get(k)), None)
        if kind is None:
            return None
        return (r["model"], r["model_version"], kind, int(r["window_start_ms"]))

    def _snapshot(self, q: int, now_s: float) -> Outgoing:
        book = self.books[q]
        data = book.to_bytes(self._extra(q))
        return self._snapshot_record(
            q, book.last_offset, data, now_s, self.topics.worker_state, self.metrics
        )

    def on_revoke(self, topic: str, partitions: list[int]) -> list[Outgoing]:
        owned = [q for q in partitions if q in self.books]
        return self.poll(time.time(), owned) if owned else []

    def on_assign(
        self, topic: str, partitions: list[int], restored: Mapping[str, bytes], total: int
    ) -> None:
        keep = set(partitions)
        for q in {*self.books, *self._durable, *self._handed} - keep:
            for d in (self.books, self.votes, self._durable, self._snap_offset, self._handed,
                      self._encoding, self._outputs_from, self._unfenced):
                d.pop(q, None)
        for q in partitions:
            data = restored.get(state_key(self.name, q))
            if data is None:
                continue  # kept in memory
            for d in (self.books, self.votes, self._handed, self._encoding, self._outputs_from,
                      self._unfenced, self._sent):
                d.pop(q, None)
            self._durable[q] = self._snap_offset[q] = -1
            if not data:
                continue
            try:
                # waits start again on this owner's timeout clock, at their first poll
                # (the replay from the committed offset is a backlog: it stands still there)
                book, extra = MergeBook.from_bytes(data, None)
            except ValueError:
                log.exception("merge state of partials partition %d unreadable: clean start", q)
                continue
            book.wait_s = self.config.idle_partition_s  # the current setting, not the old one
            self.books[q] = book
            try:
                self.votes[q] = load_votes(self._combiner(), extra.get("votes", {}), None)
            except (ValueError, KeyError, TypeError):
                log.exception("votes of partials partition %d unreadable: clean start", q)
                self.votes[q] = self._combiner()
            if self.concept is not None:
                try:
                    self.concept.load_into(q, extra.get("concept", {}))
                except (ValueError, KeyError, TypeError):
                    log.exception("concept tests of partials partition %d unreadable", q)
                    self.concept.forget(q)
            for kind, state in extra.get("mergers", {}).items():
                if kind in self.mergers and hasattr(self.mergers[kind], "load_state"):
                    self.mergers[kind].load_state(state)  # type: ignore[attr-defined]
            self._durable[q] = self._snap_offset[q] = book.last_offset
            try:  # a snapshot without it (older code) has its output read from the start
                since = {int(p): int(off) for p, off in extra.get("outputs_from", {}).items()}
            except (ValueError, TypeError, AttributeError):
                log.exception("outputs_from of partials partition %d unreadable: read all", q)
                since = {}
            self._unfenced[q] = since
            self.metrics.restored.labels(self.name).inc()
            log.warning("merge partition %d restored at offset %d (%d open windows)", q,
                        book.last_offset, len(book.open))  # fmt: skip
