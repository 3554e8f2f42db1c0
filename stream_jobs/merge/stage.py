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
it moved, and on revoke; the partials topic's offsets are
committed only up to the last stored snapshot. Finals are sent before the snapshot that
records them, so a crash between the two (no transactions on the embedded broker) makes the
next owner send that final again: at least once, never lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from schemas.codec import Codec, DecodeError
from schemas.detection import Detection
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

    def observe_partial(self, q: int, offset: int, value: bytes | None) -> None:
        """One record of partials-topic partition ``q``."""
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
        if rec.kind == CONCEPT and self.concept is not None:  # error buckets, not a window
            if offset <= book.last_offset:
                self.metrics.partials.labels(rec.kind, "skipped").inc()
                return
            book.last_offset = offset
            self.metrics.partials.labels(rec.kind, self.concept.add(q, rec)).inc()
            return
        if rec.kind == VOTE_KIND and not rec.is_marker:  # a firing (markers: progress)
            if offset <= book.last_offset:
                self.metrics.partials.labels(rec.kind, "skipped").inc()
                return
            book.last_offset = offset
            outcome = self.votes[q].add(decode_vote(rec))  # decided in poll, in event time
            self.metrics.partials.labels(rec.kind, outcome).inc()
            return
        outcome = book.add(rec, offset)
        self.metrics.partials.labels(rec.kind, outcome).inc()

    # ---- output ----------------------------------------------------------------------
    def _merge(self, q: int, key: tuple, parts: list[PartialRecord], complete: bool) -> list:
        model, version, kind, _ = key
        started = time.perf_counter()
        out: list[Outgoing] = []
        ref = self.reference(model, version)
        detections: list[Detection]
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
        out.append(self.sink.encode_window_stats(stats))
        out += self.sink.encode(detections)
        self.metrics.merged.labels(kind, str(complete).lower()).inc()
        self.metrics.merge_seconds.labels(kind).inc(time.perf_counter() - started)
        if not complete:
            log.warning("window %s final without every partition (waited %.0f s)", key,
                        self.config.idle_partition_s)  # fmt: skip
        return out

    def _decide_votes(self, q: int, now_s: float) -> list[Outgoing]:
        """Online detections whose votes every input partition has passed (or timed out)."""
        votes, book = self.votes[q], self.books[q]
        c = self.config
        lag = c.window_ms - (c.hop_ms or c.window_ms)  # hopping: on time below the progress
        out: list[Outgoing] = []
        for model in sorted(votes.pending):
            progress, expected = settled_progress(book, model, lag, DRIFT)
            for d in votes.decide(model, progress, expected, now_s):
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
            decided = self._decide_votes(q, now_s)
            if self.concept is not None:  # pooled concept verdicts that changed
                decided += self.sink.encode(self.concept.poll(q))
            out += decided
            ready = []
            while budget > 0 and (partitions is not None or time.perf_counter() < until):
                got = book.ready(now_s, limit=1)
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
        extra = {"votes": votes_state(self.votes[q]), "mergers": kept}
        if self.concept is not None:
            extra["concept"] = self.concept.state(q)
        return extra

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
                      self._encoding):
                d.pop(q, None)
        for q in partitions:
            data = restored.get(state_key(self.name, q))
            if data is None:
                continue  # kept in memory
            for d in (self.books, self.votes, self._handed, self._encoding):
                d.pop(q, None)
            self._durable[q] = self._snap_offset[q] = -1
            if not data:
                continue
            try:
                book, extra = MergeBook.from_bytes(data, time.time())
            except ValueError:
                log.exception("merge state of partials partition %d unreadable: clean start", q)
                continue
            book.wait_s = self.config.idle_partition_s  # the current setting, not the old one
            self.books[q] = book
            try:
                self.votes[q] = load_votes(self._combiner(), extra.get("votes", {}), time.time())
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
            self.metrics.restored.labels(self.name).inc()
            log.warning("merge partition %d restored at offset %d (%d open windows)", q,
                        book.last_offset, len(book.open))  # fmt: skip
