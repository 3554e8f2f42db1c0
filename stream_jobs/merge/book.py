"""``MergeBook``: the open windows of one partials-topic partition (stage 2), pure.

Rules (the merge stage's contract; see also :mod:`stream_jobs.merge.protocol`):

* **Completeness.** A record's ``progress_ms`` (set on the last record of each closing
  step: :mod:`stream_jobs.merge.progress`) says that its input partition has closed every
  window ending at or before it, and sent their partials before this record. A window is
  *complete* when each of the model's ``partitions`` input partitions has progressed to its
  end: the ones that had data sent their partial, the others have nothing for it.
* **Timeout.** A partition that never sends anything for a model (no data for it at all)
  or stays away (its worker died and nobody has taken over yet) would hold a window open
  forever: once some partition has passed a window, it becomes final after ``wait_s`` of
  clock time with whatever arrived (counted as ``incomplete``) — unless a partition it
  waits for is *moving*: its progress advanced within the last ``wait_s`` (a partition
  behind the others, read by a busy worker or catching up a backlog, is late, not gone);
  the wait then runs from its last move. Only this path depends on timing; with every
  partition reporting it never fires. The clock is the caller's: the merge stage passes
  one that stands still while it reads a backlog (:meth:`MergeStage.timeout_clock`).
* **Duplicates** (at-least-once input): one partial per (window, input partition) is kept,
  the one with the highest ``input_offset``; a replayed copy changes nothing.
* **Late partials** (for a window already final): counted and dropped — a window is emitted
  once, final. A copy of a partial that was merged is a duplicate, not late.
* **Emitted before** (:meth:`MergeBook.mark_emitted`): a window whose final record is already
  on the output (an earlier owner of the partition emitted it after the snapshot this book
  was restored from) is noted; it collects its partials (replayed from the committed
  offset) and becomes final by the same rules as any other, and the stage, seeing
  :meth:`MergeBook.take_emitted`, merges it only to keep its mergers' state as the earlier
  owner left it, never emitting it again.

Output order is the sorted window key, so the same partials give the same finals whatever
the order they arrived in.

>>> rec = lambda p, start, prog, payload=b"x", off=0: PartialRecord(
...     "m", "1", "drift", start, start + 10, p, 2, off, payload, prog)
>>> book = MergeBook(wait_s=30)
>>> [book.add(r, i) for i, r in enumerate([rec(0, 0, 10), rec(1, 0, 10), rec(1, 0, 10)])]
['applied', 'applied', 'duplicate']
>>> [(k, sorted(p.partition for p in ps), complete) for k, ps, complete in book.ready(0.0)]
[(('m', '1', 'drift', 0), [0, 1], True)]
>>> book.add(rec(0, 0, 10), 3), book.add(rec(0, 10, 20), 4), book.ready(1.0)
('duplicate', 'applied', [])
>>> book.add(rec(1, 20, 20, b""), 5), [k[3] for k, _, _ in book.ready(2.0)]
('marker', [10])
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Any

from stream_jobs.blobs import pack_blobs, unpack_blobs
from stream_jobs.merge.protocol import PartialRecord
from stream_jobs.state.codec import decode_state, encode_state

WKey = tuple[str, str, str, int]  # model, version, kind, window start
STATE_KIND = "merge"


def rec_bytes(r: PartialRecord) -> bytes:
    head = {k: v for k, v in r.to_record().items() if k != "payload"}
    return pack_blobs(json.dumps(head).encode(), r.payload)


def rec_from(data: bytes) -> PartialRecord:
    head, payload = unpack_blobs(data)
    return PartialRecord.from_record({**json.loads(head), "payload": payload})


class MergeBook:
    def __init__(self, wait_s: float = 30.0, keep_final: int = 4_096) -> None:
        self.wait_s = float(wait_s)
        self.keep_final = int(keep_final)
        self.last_offset = -1  # of the partials-topic partition this book reflects
        self.open: dict[WKey, dict[int, PartialRecord]] = {}
        self.end: dict[WKey, int] = {}
        self.progress: dict[tuple[str, str], dict[int, int]] = {}  # (model, kind) -> p -> ms
        self.expected: dict[str, int] = {}  # model -> input partitions
        self.overdue_since: dict[WKey, float] = {}
        # clock time each partition's progress was last seen moving (by ready); not in
        # snapshots: on a new owner every partition counts as moving from its restore
        self.moved_at: dict[tuple[str, str], dict[int, float]] = {}
        self._moved: set[tuple[str, str, int]] = set()  # advanced since the last ready()
        self.final: OrderedDict[WKey, tuple[int, ...]] = OrderedDict()
        self.horizon: dict[tuple[str, str], int] = {}  # ends at or below: final and forgotten
        self.emitted: set[WKey] = set()  # final on the output already (an earlier owner)

    # ---- input ----------------------------------------------------------------------
    def add(self, rec: PartialRecord, offset: int = -1) -> str:
        """Apply one record; says what became of it: ``applied``, ``marker``, ``duplicate``,
        ``late`` or ``skipped`` (its partials-topic offset was applied before)."""
        if offset >= 0:
            if offset <= self.last_offset:
                return "skipped"
            self.last_offset = offset
        if rec.partitions > self.expected.get(rec.model, 0):
            self.expected[rec.model] = rec.partitions
        if rec.progress_ms >= 0:
            prog = self.progress.setdefault((rec.model, rec.kind), {})
            if rec.progress_ms > prog.get(rec.partition, -(2**62)):
                prog[rec.partition] = rec.progress_ms
                self._moved.add((rec.model, rec.kind, rec.partition))
        else:
            self.progress.setdefault((rec.model, rec.kind), {}).setdefault(rec.partition, -(2**62))
        if rec.is_marker:
            return "marker"
        key = rec.window_key
        merged = self.final.get(key)
        if merged is not None:
            return "duplicate" if rec.partition in merged else "late"
        if key not in self.open and rec.window_end_ms <= self.horizon.get(
            (rec.model, rec.kind), -(2**62)
        ):
            return "late"
        parts = self.open.setdefault(key, {})
        self.end[key] = rec.window_end_ms
        have = parts.get(rec.partition)
        if have is not None and have.input_offset >= rec.input_offset:
            return "duplicate"
        parts[rec.partition] = rec
        return "applied"

    # ---- output ---------------------------------------------------------------------
    def _passed(self, key: WKey) -> tuple[int, int]:
        prog = self.progress.get((key[0], key[2]), {})
        end = self.end[key]
        passed = sum(1 for t in prog.values() if t >= end)
        expected = self.expected.get(key[0], 0) or len(prog)
        return passed, expected

    def ready(self, now_s: float, limit: int | None = None) -> list[tuple[WKey, list, bool]]:
        """Windows that are final now, each once: ``(key, partials by partition,
        complete)``; at most ``limit`` (the rest wait for the next call)."""
        self._note_moves(now_s)
        out: list[tuple[WKey, list, bool]] = []
        for key in sorted(self.open):
            passed, expected = self._passed(key)
            complete = passed >= expected
            if not complete:
                if passed == 0:
                    continue
                since = max(self.overdue_since.setdefault(key, now_s), self._moved_behind(key))
                if now_s - since < self.wait_s:
                    continue
            parts = self.open.pop(key)
            self.end.pop(key)
            self.overdue_since.pop(key, None)
            self._finalise(key, tuple(sorted(parts)))
            out.append((key, [parts[p] for p in sorted(parts)], complete))
            if limit is not None and len(out) >= limit:
                break
        return out

    def _note_moves(self, now_s: float) -> None:
        for model, kind, p in self._moved:
            self.moved_at.setdefault((model, kind), {})[p] = now_s
        self._moved.clear()

    def moved(self, model: str, kinds: tuple[str, ...], now_s: float) -> dict[int, float]:
        """Input partition -> clock time its progress in any of ``kinds`` last moved (moves
        since the last call stamped ``now_s``)."""
        self._note_moves(now_s)
        out: dict[int, float] = {}
        for kind in kinds:
            for p, t in self.moved_at.get((model, kind), {}).items():
                out[p] = max(out.get(p, -math.inf), t)
        return out

    def _moved_behind(self, key: WKey) -> float:
        """When a partition that has not passed ``key`` last moved (-inf: none known)."""
        prog = self.progress.get((key[0], key[2]), {})
        moved = self.moved_at.get((key[0], key[2]), {})
        end = self.end[key]
        return max((moved.get(p, -math.inf) for p, t in prog.items() if t < end),
                   default=-math.inf)  # fmt: skip

    def mark_emitted(self, key: WKey) -> bool:
        """The final record of ``key`` is on the output already (noted until
        :meth:`take_emitted`). False if it was final here (or forgotten below the horizon)
        already, or noted before."""
        if key in self.final or key in self.emitted or (
            key not in self.open and key[3] <= self.horizon.get((key[0], key[2]), -(2**62))
        ):
            return False
        self.emitted.add(key)
        return True

    def take_emitted(self, key: WKey) -> bool:
        """Whether the window just final (from :meth:`ready`) was emitted before: it must
        not be emitted again."""
        if key in self.emitted:
            self.emitted.discard(key)
            return True
        return False

    def _finalise(self, key: WKey, partitions: tuple[int, ...]) -> None:
        self.final[key] = partitions
        while len(self.final) > self.keep_final:
            old, _ = self.final.popitem(last=False)
            hk = (old[0], old[2])
            self.horizon[hk] = max(self.horizon.get(hk, -(2**62)), old[3])
            self.emitted = {k for k in self.emitted if (k[0], k[2]) != hk or k[3] > old[3]}

    def partitions_reporting(self, model: str, kind: str) -> int:
        return len(self.progress.get((model, kind), {}))

    def progress_of(self, model: str, kind: str) -> tuple[dict[int, int], int]:
        """``(input partition -> progress_ms, expected partitions or 0)`` of a model's kind."""
        return self.progress.get((model, kind), {}), self.expected.get(model, 0)

    # ---- state ----------------------------------------------------------------------
    def to_bytes(self, extra: dict[str, Any] | None = None) -> bytes:
        return self.encode_parts(*self.snapshot_parts(extra))

    def snapshot_parts(
        self, extra: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], list[PartialRecord]]:
        """The book as of now, in structures of its own (partial records are immutable), so
        :meth:`encode_parts` — the costly part — may run on another thread while the book
        moves on."""
        recs = [r for parts in self.open.values() for r in parts.values()]
        header = {
            "wait_s": self.wait_s,
            "last_offset": self.last_offset,
            "progress": [[m, k, p, t] for (m, k), d in self.progress.items() for p, t in d.items()],
            "expected": dict(self.expected),
            "overdue": [list(k) for k in self.overdue_since],
            "final": [[*k, list(ps)] for k, ps in self.final.items()],
            "horizon": [[m, k, t] for (m, k), t in self.horizon.items()],
            "emitted": [list(k) for k in sorted(self.emitted)],
            "extra": extra or {},
        }
        return header, recs

    @staticmethod
    def encode_parts(header: dict[str, Any], recs: list[PartialRecord]) -> bytes:
        return encode_state(STATE_KIND, header, [rec_bytes(r) for r in recs])

    @classmethod
    def from_bytes(
        cls, data: bytes, now_s: float | None
    ) -> tuple[MergeBook, dict[str, Any]]:
        """The book of a snapshot. Its waits (overdue windows, partitions' last moves) start
        again at ``now_s``; None: at the first :meth:`ready`, on the caller's clock."""
        h, blobs = decode_state(data, STATE_KIND)
        book = cls(h["wait_s"])
        book.last_offset = h["last_offset"]
        for m, k, p, t in h["progress"]:
            book.progress.setdefault((m, k), {})[int(p)] = int(t)
            if now_s is not None:  # moving from the restore
                book.moved_at.setdefault((m, k), {})[int(p)] = now_s
        book.expected = {m: int(n) for m, n in h["expected"].items()}
        for *k, ps in h["final"]:
            book.final[(k[0], k[1], k[2], int(k[3]))] = tuple(ps)
        book.horizon = {(m, k): int(t) for m, k, t in h["horizon"]}
        book.emitted = {(k[0], k[1], k[2], int(k[3])) for k in h.get("emitted", [])}
        for raw in blobs:
            r = rec_from(raw)
            book.open.setdefault(r.window_key, {})[r.partition] = r
            book.end[r.window_key] = r.window_end_ms
        for k in h["overdue"]:
            key = (k[0], k[1], k[2], int(k[3]))
            if key in book.open and now_s is not None:
                book.overdue_since[key] = now_s  # the wait starts again on the new owner
        return book, h["extra"]
