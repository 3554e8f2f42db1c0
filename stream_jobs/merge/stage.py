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
``snapshot_off_loop`` (the worker's setting) the costly work runs on a thread of the
stage's own, one job after another in the order given: merging a final window (decoding
sketches, the drift tests; the votes it expires are expired on the loop when it is handed
over) and encoding a snapshot (captured on the loop: the book's own lists of immutable
records). A later poll hands out their outputs in that order; while merges are under way
no new ones start and vote detections wait, so nothing overtakes what was computed
before it. A partition's snapshot is captured only once its merged windows are handed
out (a snapshot recording a window as final follows that window's outputs), never two at
once. A revoke waits for the merges under way and snapshots synchronously.

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
from stream_jobs.detectors.vote import VoteCombiner
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.merger import KIND as DRIFT
from stream_jobs.drift.merger import DriftMerger
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.handler import Outgoing
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.protocol import PartialMerger, PartialRecord
from stream_jobs.merge.votes import VOTE_KIND, decode_vote, load_votes, votes_state
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
        self.slice_windows = slice_windows
        self.slice_s = slice_s
        self._init_snapshots(snapshot_every_s)
        self.books: dict[int, MergeBook] = {}
        self.votes: dict[int, VoteCombiner] = {}
        self._refs: dict[tuple[str, str], ReferenceView] = {}
        self._pending: list[Outgoing] = []  # detections of votes, sent at the next poll
        self._polled: dict[int, int] = {}  # last offset seen by the previous poll
        self._encoder = (
            ThreadPoolExecutor(1, thread_name_prefix="merge") if snapshot_off_loop
            else None
        )  # fmt: skip
        self._encoding: dict[int, tuple[Future[bytes], int]] = {}  # q -> (bytes, offset)
        self._merging: list[tuple[int, MergeBook, tuple, bool, Future]] = []  # on the thread
        self._want_snapshot: set[int] = set()  # windows merged since its last snapshot

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
            self.votes[q] = VoteCombiner(self.config.quorum, self.config.vote_window_ms)
        return book

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
        if rec.kind == VOTE_KIND:
            if offset <= book.last_offset:
                self.metrics.partials.labels(rec.kind, "skipped").inc()
                return
            book.last_offset = offset
            n = book.partitions_reporting(rec.model, DRIFT) or 1
            d = self.votes[q].update(decode_vote(rec), n)
            self.metrics.partials.labels(rec.kind, "applied").inc()
            if d is not None:
                self.drift_metrics.record_detection(d)
                self._pending += self.sink.encode([d])
            return
        outcome = book.add(rec, offset)
        self.metrics.partials.labels(rec.kind, outcome).inc()

    # ---- output ----------------------------------------------------------------------
    def _merge(self, q: int, key: tuple, parts: list[PartialRecord], complete: bool) -> list:
        self._before_merge(q, key, parts)
        return self._after_merge(key, complete, self._merge_pure(key, parts))

    def _before_merge(self, q: int, key: tuple, parts: list[PartialRecord]) -> None:
        """The merge's effect on the stage's own state, on the loop, in window order."""
        if key[2] == DRIFT:
            self.votes[q].expire_model(key[0], parts[0].window_end_ms)

    def _merge_pure(self, key: tuple, parts: list[PartialRecord]) -> tuple[Any, float] | None:
        """The costly part (decoding sketches, the drift tests): touches no state of the
        stage, so it may run on the merge thread. (merged window, seconds) or None."""
        model, version, kind, _ = key
        started = time.perf_counter()
        ref = self.reference(model, version)
        if kind == DRIFT:
            return self.drift.merge_closed(parts, ref), time.perf_counter() - started
        merger = self.mergers.get(kind)
        if merger is None:
            log.error("no merger for partials of kind %r (model %s): dropped", kind, model)
            return None
        return merger.merge(parts, ref), time.perf_counter() - started

    def _after_merge(self, key: tuple, complete: bool, got: tuple[Any, float] | None) -> list:
        if got is None:
            return []
        merged, took = got
        kind = key[2]
        if kind == DRIFT:
            self.drift_metrics.record_window(merged)
        detections: list[Detection] = merged.detections
        out: list[Outgoing] = [self.sink.encode_window_stats(merged.stats)]
        out += self.sink.encode(detections)
        self.metrics.merged.labels(kind, str(complete).lower()).inc()
        self.metrics.merge_seconds.labels(kind).inc(took)
        if not complete:
            log.warning("window %s final without every partition (waited %.0f s)", key,
                        self.config.idle_partition_s)  # fmt: skip
        return out

    def poll(self, now_s: float, partitions: list[int] | None = None) -> list[Outgoing]:
        off_loop = self._encoder is not None and partitions is None
        out = self._merged(wait=not off_loop)  # merges handed to the thread, in order
        busy = bool(self._merging)  # merges still on the thread: nothing overtakes them
        if not busy:  # detections of votes, in the order they were made
            out, self._pending = out + self._pending, []
        budget = 0 if busy else self.slice_windows
        until = time.perf_counter() + self.slice_s
        targets = sorted(self.books) if partitions is None else partitions
        for q in targets:
            book = self.books.get(q)
            if book is None:
                continue
            ready = []
            while budget > 0 and (partitions is not None or time.perf_counter() < until):
                got = book.ready(now_s, limit=1)
                if not got:
                    break
                ready += got
                budget -= 1
                key, parts, complete = got[0]
                try:
                    if off_loop:
                        self._before_merge(q, key, parts)
                        assert self._encoder is not None
                        fut = self._encoder.submit(self._merge_pure, key, parts)
                        self._merging.append((q, book, key, complete, fut))
                    else:
                        out += self._merge(q, key, parts, complete)
                except Exception:  # a bad partial must not stop the stage: count, go on
                    log.exception("merging %s failed: window dropped", key)
                    self.metrics.merged.labels(key[2], "failed").inc()
            if ready:
                self._want_snapshot.add(q)
            moved, due = self._snapshot_due(q, book.last_offset, now_s)
            idle = book.last_offset == self._polled.get(q)  # nothing new since the last poll
            self._polled[q] = book.last_offset
            wanted = q in self._want_snapshot or (moved and (due or idle))
            if not off_loop:
                self._encoding.pop(q, None)  # superseded (revoke): never handed out
                if wanted or partitions is not None:
                    self._want_snapshot.discard(q)
                    out.append(self._snapshot(q, now_s))
            elif (wanted or q in self._encoding) and not any(m[0] == q for m in self._merging):
                # only once its merged windows are handed out: a snapshot recording a window
                # as final must follow that window's outputs
                self._want_snapshot.discard(q)
                out += self._snapshot_off_loop(q, now_s)
        return out

    def _merged(self, wait: bool) -> list[Outgoing]:
        """Outputs of the merges done on the thread, in the order they were handed to it
        (stopping at the first not done unless ``wait``); merges of a book no longer ours
        are dropped (its next owner merges them again)."""
        out: list[Outgoing] = []
        while self._merging:
            q, book, key, complete, fut = self._merging[0]
            if not wait and not fut.done():
                break
            self._merging.pop(0)
            try:
                got = fut.result()
            except Exception:  # a bad partial must not stop the stage: count, go on
                log.exception("merging %s failed: window dropped", key)
                self.metrics.merged.labels(key[2], "failed").inc()
                continue
            if self.books.get(q) is book:
                out += self._after_merge(key, complete, got)
        return out

    def _snapshot_off_loop(self, q: int, now_s: float) -> list[Outgoing]:
        """The snapshot whose encoding finished, or start one (captured now); [] while one
        is under way."""
        assert self._encoder is not None
        pending = self._encoding.get(q)
        if pending is None:
            book = self.books[q]
            header, recs = book.snapshot_parts({"votes": votes_state(self.votes[q])})
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

    def _snapshot(self, q: int, now_s: float) -> Outgoing:
        book = self.books[q]
        data = book.to_bytes({"votes": votes_state(self.votes[q])})
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
        self._want_snapshot &= keep
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
            self._want_snapshot.discard(q)
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
            self.votes[q] = load_votes(
                VoteCombiner(self.config.quorum, self.config.vote_window_ms), extra.get("votes", {})
            )
            self._durable[q] = self._snap_offset[q] = book.last_offset
            self.metrics.restored.labels(self.name).inc()
            log.warning("merge partition %d restored at offset %d (%d open windows)", q,
                        book.last_offset, len(book.open))  # fmt: skip
