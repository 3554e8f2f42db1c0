"""The label engine the worker calls: join, performance windows, concept drift, orphans.

The worker hands it whole batches with their source ``(topic, partition, offset)``::

    engine = LabelEngine(LabelConfig(), RocksStore(path))
    engine.observe_predictions(topic, partition, offset, cols)     # -> JoinResult (early
                                                                   #    labels joining now)
    result = engine.observe_labels(topic, partition, offset, labels)  # -> JoinResult
    out = engine.poll(now_event_ms)   # closed windows, detections, orphans past the TTL
    engine.totals(model)              # persisted cumulative counts

**Idempotent replay.** Each observe call is one atomic store write holding every state
change of the batch *and* the batch's offset under its ``(topic, partition)``; a batch at
or below the stored offset is skipped. The worker commits broker offsets after the call
returns, so after a SIGKILL it re-reads at most the batches it had applied but not
committed, and they are skipped: nothing lost, nothing counted twice.

**Store layout** (one byte prefix per kind of key; every value is sealed with the state
codec's version byte, :mod:`stream_jobs.join.codec`, and the key layout is versioned by
the ``#format`` key: a store of another version starts clean, loudly):

=========  ===============================================  ================================
prefix     key                                              value
=========  ===============================================  ================================
``#``      ``format``                                       layout version (:data:`FORMAT`)
``p``      model (u2 length + bytes) + prediction_id        packed prediction / JOINED
``l``      model (u2 length + bytes) + prediction_id        early label (waits on disk)
``t``      expiry ms (BE) + kind + source + seq             prediction_ids to expire then
``w``      catalog id (u4 BE) + partition + window start    :class:`WindowPerformance`
``m``      catalog id                                       :class:`Catalog` of a version
``k``      partition (i4 BE) + model                        closed-until ms (window grid)
``a``      partition (i4 BE) + model                        label clock ms (max label time)
``e``      partition (i4 BE) + model                        prediction clock ms (max time)
``u``      partition (i4 BE)                                offsets of a restored snapshot
``c``      model                                            totals
``o``      topic + partition                                last applied offset
``z``      catalog id + partition                           concept :class:`PartitionMonitor`
``v``      catalog id                                       concept :class:`VoteBox`
``q``      catalog id + partition (i4 BE)                   pooled concept buckets not sent
``x``      sequence number (BE)                             outbox record (topic, key, value)
=========  ===============================================  ================================

**Windows** are by prediction event time and belong to an *input partition* (predictions
and labels are co-partitioned: a label lands in its prediction's partition). What a
partition's window holds is a function of that partition's two streams alone, whatever
their interleaving (which agent ran ahead, a pause, a restart): each stream is *cut* for the
window at a record of its own, and the window holds the predictions read before the
prediction cut joined with the labels read before the label cut.

- **Label cut**: the label record that brings the partition's label clock for the model
  (the largest label time read) to ``window end + label_horizon``: labels keep arriving
  for a window long after its predictions, and the label stream's own clock says how far
  it has got. A label counts in its prediction's window if the label-side *edge* before
  its record (:func:`~stream_jobs.merge.progress.boundary` of clock − horizon) is below
  the window end; an early label keeps the clock on disk until its prediction comes.
- **Prediction cut**: likewise, the prediction record that brings the partition's
  prediction clock for the model to ``window end + allowed_lateness`` (the drift half's
  rule, so both halves count the same predictions): a prediction read after it is *late*
  (flagged in the store): it still joins its label, but changes no window.

A window closes once both cuts have passed it (in :meth:`LabelEngine.observe_labels` or
:meth:`LabelEngine.observe_predictions`, whichever passes the second), not on timers or on
which worker owns the partition: a window can no longer change then, since any later
record of either stream is past its cut. (The last windows of a stream whose predictions
stop stay open, as drift windows do.) A closed window
leaves as a :class:`~stream_jobs.merge.protocol.PartialRecord` of kind ``performance``
(:mod:`stream_jobs.performance.merger`); a closing step that closed no window with data
sends a progress marker instead (:func:`stream_jobs.merge.progress.closing_step`, the same
rule as the drift half), so the merge stage finalises a window as soon as every partition
has passed it. Labels past their window's cut still join (counted as ``late_labels``, in the
totals, the delay histogram and the concept detectors) but change no window.

**Judged once, merged.** The merge stage merges the partitions' partials of a window and
judges the merged window (:class:`~stream_jobs.performance.merger.PerformanceMerger`):
label drift, ``performance_collapse``, ``performance_drop`` against the reference, and the
ranking of an active one against a baseline of healthy windows (``explained_by``). Without
an ``encode`` function (tests, benches, single-process use) the engine runs that merge
itself at :meth:`LabelEngine.poll` and returns the merged windows and their detections.

**Concept drift** stays here, in stage 1: the error-stream monitors (per partition with a
per-process quorum, or one pooled test over the worker's partitions) emit on every change
of their verdict and once per window of the model as it closes here (so an alert resolves
when quiet).

**Outbox.** Given an ``encode`` function, :meth:`LabelEngine.poll` and
:meth:`LabelEngine.observe_labels` write what they emit (closed windows, detections,
orphans) as encoded records into the store *in the same atomic write* as the state change
that produced them, and :meth:`LabelEngine.outbox` lists them until the caller, having had
them acknowledged by the broker, removes them with :meth:`LabelEngine.clear_outbox`. A
crash between the two re-sends them after the restart (at least once) instead of losing
them: the state change that emitted them is never replayed.

**Orphans.** A prediction still unlabelled ``ttl_ms`` after its event time, and an early
label whose prediction has not come ``ttl_ms`` after the label's time, are returned by
:meth:`LabelEngine.poll` (the caller dead-letters them, ``error_kind="orphan"``) and
counted. A label read before its prediction waits on disk (no count cap: the worker reads
the two topics in step by event time, :mod:`stream_jobs.join.in_step`, so few wait). A
joined prediction leaves a one-byte marker until its TTL, so a second label for it counts
as a duplicate, once, and changes nothing else.

**The join key is (model, prediction_id)**, and the first write wins: a prediction whose
key is already pending or joined is a duplicate (counted, otherwise ignored), so a label
never joins twice, and a label of model B never meets model A's prediction. A label with
neither a class nor a finite value is returned as an orphan ``no_value`` (the caller
dead-letters it) and leaves the prediction free for its real label.
"""

from __future__ import annotations

import json
import logging
import math
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.columnar import LabelColumns, PredictionColumns
from schemas.detection import Detection
from stream_jobs.blobs import pack_blobs, unpack_blobs, unpack_strings
from stream_jobs.concept.monitor import PartitionMonitor
from stream_jobs.concept.pool import KIND as CONCEPT
from stream_jobs.concept.pool import ConceptPool, encode_buckets
from stream_jobs.concept.pooled import bucket_counts
from stream_jobs.concept.quorum import VoteBox
from stream_jobs.concept.verdict import concept_detection, transition
from stream_jobs.drift.config import DriftConfig
from stream_jobs.join.codec import StateVersionError
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.keys import encode_ids, first_rows, prefixed
from stream_jobs.join.records import (
    HAS_CLASS,
    HAS_PROBS,
    HAS_SCORE,
    JOINED,
    LATE,
    Catalog,
    pack_label,
    pack_predictions,
    unpack_label,
    unpack_predictions,
)
from stream_jobs.join.store import KeyValueStore, VersionedStore
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.progress import boundary, closing_step
from stream_jobs.merge.protocol import PartialRecord
from stream_jobs.performance.feature_bins import FEATURE_TAG, FeatureBinner
from stream_jobs.performance.judge import window_doc
from stream_jobs.performance.merger import KIND as PERFORMANCE
from stream_jobs.performance.merger import (
    PerformanceMerger,
    decode_payload,
    encode_payload,
    recode_classes,
)
from stream_jobs.performance.window import CLASSIFICATION, REGRESSION, WindowPerformance
from stream_jobs.reference.view import ReferenceView
from stream_jobs.state.codec import decode_state, encode_state

log = logging.getLogger(__name__)
_BE8 = struct.Struct(">q")
_BE2 = struct.Struct(">H")
_CID = struct.Struct(">I")  # catalog ids in keys
_I8 = struct.Struct("<q")
_ORD8 = struct.Struct(">Q")  # event times + 2**63: byte order is time order
TOTAL_FIELDS = (
    "predictions",
    "labels",
    "joined",
    "duplicates",
    "early",
    "late_labels",
    "orphan_labels",
    "orphan_predictions",
    "label_watermark_ms",
    "duplicate_predictions",
    "valueless_labels",
)
_TOTALS = struct.Struct("<" + "q" * len(TOTAL_FIELDS))
NO_TIME = -(2**62)
FORMAT = b"\x05"  # store layout version: a store of another layout starts clean, loudly
STATE_KIND = "labels"  # a partition's performance windows on the worker-state changelog
_FORMAT_KEY = b"#format"


@dataclass(frozen=True)
class Orphan:
    prediction_id: str
    model: str
    reason: str  # "no_label" | "no_prediction" | "no_value"
    event_time_ms: int


@dataclass
class JoinResult:
    joined: int = 0
    duplicates: int = 0
    early: int = 0
    late: int = 0
    skipped: bool = False  # the batch's offset was already applied
    orphans: list[Orphan] = field(default_factory=list)
    delays_s: dict[str, np.ndarray] = field(default_factory=dict)  # per model
    joined_by_model: dict[str, int] = field(default_factory=dict)


@dataclass
class LabelOutputs:
    windows: list[dict[str, Any]] = field(default_factory=list)  # merged (no encode only)
    detections: list[Detection] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    partials: list[PartialRecord] = field(default_factory=list)  # closed in a partition


Encoder = Callable[[LabelOutputs], list[tuple[str, bytes, bytes]]]


def _no_count(model: str, name: str, n: int, touched: set[str]) -> None:
    return None


def _model_key(model: str) -> bytes:
    """The join key's model part (length-prefixed: no model/id pair can collide)."""
    m = model.encode()
    return _BE2.pack(len(m)) + m  # (model names are capped far below 64 KiB)


def _expiry_entry(model: str, pids: list[bytes]) -> bytes:
    """An expiry index value: the model and the (UTF-8) prediction ids."""
    return pack_blobs(model.encode(), pack_blobs(*pids))


def _read_expiry_entry(data: bytes) -> tuple[str, list[str]]:
    model, pids = unpack_blobs(data)
    return model.decode(), unpack_strings(pids)


def _expiry_key(kind: bytes, partition: int, model: str, expiry_ms: int, src: bytes) -> bytes:
    """Expiry index key: what expires (``p`` predictions, ``l`` early labels) of one
    partition and model, by expiry time (order-preserving), then the batch it came from."""
    return _expiry_prefix(kind, partition, model) + _ORD8.pack(expiry_ms + 2**63) + src


def _expiry_prefix(kind: bytes, partition: int, model: str) -> bytes:
    return b"t" + kind + struct.pack(">i", partition) + _model_key(model)


def _concept_key(cid: int, partition: int) -> bytes:
    return b"q" + _CID.pack(cid) + struct.pack(">i", partition)


def _buckets_value(sent: int, cells: dict[int, list[float]]) -> bytes:
    return json.dumps([sent, [[s, n, k] for s, (n, k) in sorted(cells.items())]]).encode()


def _read_buckets(data: bytes) -> tuple[int, dict[int, list[float]]]:
    sent, cells = json.loads(data)
    return int(sent), {int(s): [float(n), float(k)] for s, n, k in cells}


def _offset_key(topic: str, partition: int) -> bytes:
    return b"o" + topic.encode() + b"\x00" + struct.pack(">i", partition)


def _window_key(cid: int, partition: int, start: int) -> bytes:
    return b"w" + _CID.pack(cid) + struct.pack(">i", partition) + _BE8.pack(start)


def _clock_key(prefix: bytes, partition: int, model: str) -> bytes:
    return prefix + struct.pack(">i", partition) + model.encode()


class _Batch:
    """Puts and deletes of one atomic write (a key deleted after it was put is deleted)."""

    def __init__(self) -> None:
        self.puts: dict[bytes, bytes] = {}
        self.deletes: dict[bytes, None] = {}  # ordered set

    def delete(self, key: bytes) -> None:
        self.puts.pop(key, None)
        self.deletes[key] = None

    def get(self, key: bytes, stored: bytes | None) -> bytes | None:
        """``key``'s value as of this batch (``stored``: its value in the store)."""
        if key in self.deletes:
            return None
        return self.puts.get(key, stored)


class LabelEngine:
    def __init__(
        self, config: LabelConfig, store: KeyValueStore, drift: DriftConfig | None = None
    ) -> None:
        self.config = config
        self.raw_store = store
        self.store = VersionedStore(store)  # every value sealed with the state codec
        self.drift = drift or DriftConfig()
        self.references: dict[tuple[str, str], ReferenceView] = {}
        self._regression: dict[str, bool] = {}  # task="auto": decided once per model
        self.catalogs: dict[int, Catalog] = {}
        self._cid: dict[tuple[str, str], int] = {}
        # (catalog id, input partition, window start) -> the partition's open window
        self.windows: dict[tuple[int, int, int], WindowPerformance] = {}
        self.closed_until: dict[tuple[str, int], int] = {}  # (model, partition) -> boundary
        self.label_clock: dict[tuple[str, int], int] = {}  # (model, partition) -> max label t
        self.pred_clock: dict[tuple[str, int], int] = {}  # (model, partition) -> max pred t
        # label_restore's running clocks while it re-reads a partition: (kind, partition,
        # model) -> the largest time re-read so far (the cut a re-read record was read at)
        self._reread_clock: dict[tuple[str, int, str], int] = {}
        # the expiry backstop: (kind, model, partition) -> (clock, wall ms it was first seen)
        self._clock_seen: dict[tuple[bytes, str, int], tuple[int | None, int]] = {}
        self.input_partitions = 0  # of the input topics; 0: the partitions seen
        # partitions restored from another worker's snapshot: (predictions, labels) offsets
        # it reflects; batches at or below them update the join state only
        self.rewound: dict[int, tuple[int, int]] = {}
        self.fresh_early: set[bytes] = set()  # early labels of rewound partitions read live
        self.stepped: set[int] = set()  # partitions that made a closing step (snapshot them)
        self._totals: dict[str, list[int]] = {}
        self.monitors: dict[tuple[int, int], PartitionMonitor] = {}
        self.votes: dict[int, VoteBox] = {}
        # pooled concept test (merge stage): per (catalog id, partition), the error buckets
        # not sent yet and how far the partition has sent them (concept_step_ms grid)
        self.concept_open: dict[tuple[int, int], dict[int, list[float]]] = {}
        self.concept_sent: dict[tuple[int, int], int] = {}
        self.early: set[str] = set()
        self._binners: dict[tuple[str, str], FeatureBinner] = {}
        self._outbox_seq = 0
        self._concept_window: dict[int, int] = {}  # cid -> last window end observed
        self._concept_due: list[tuple[int, int, int, bool]] = []  # cid, start, end, regression
        # in-process merge (no encode): partials and detections wait for the next poll
        self._local = LabelOutputs()
        self.merger = PerformanceMerger(config, self.drift)
        self._book = MergeBook(wait_s=self.drift.idle_partition_s)
        self._pool = ConceptPool(config, self.drift.idle_partition_s)
        self._load()

    @property
    def latest_closed(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Each model version's latest window merged in this process (no encode only)."""
        return self.merger.latest_closed

    # ---- state -------------------------------------------------------------------------
    def _check_format(self) -> None:
        found = self.raw_store.get(_FORMAT_KEY)
        if found != FORMAT:
            self._start_clean(f"layout {found!r}, this version writes {FORMAT!r}")

    def _start_clean(self, why: str) -> None:
        s = self.raw_store
        stale = [k for k, _ in s.scan(b"")]
        if stale:
            log.error(
                "label store has %s: starting clean (%d keys dropped; the join re-learns "
                "from the topics)",
                why,
                len(stale),
            )
        s.write({_FORMAT_KEY: FORMAT}, stale)

    def _load(self) -> None:
        self._check_format()
        try:
            self._read_state()
        except StateVersionError as exc:
            self._reset_memory()
            self._start_clean(str(exc))

    def _reset_memory(self) -> None:
        self.catalogs.clear()
        self._cid.clear()
        self.windows.clear()
        self.closed_until.clear()
        self.label_clock.clear()
        self.pred_clock.clear()
        self.rewound.clear()
        self._totals.clear()
        self.monitors.clear()
        self.votes.clear()
        self.concept_open.clear()
        self.concept_sent.clear()
        self.early = set()
        self._outbox_seq = 0

    def _read_state(self) -> None:
        s = self.store
        for _, v in s.scan(b"m"):
            cat = Catalog.from_bytes(v)
            self.catalogs[cat.cid] = cat
            self._cid[(cat.model, cat.version)] = cat.cid
        for k, v in s.scan(b"w"):
            w = WindowPerformance.from_bytes(v)
            cid, part = _CID.unpack(k[1:5])[0], struct.unpack(">i", k[5:9])[0]
            self.windows[(cid, part, w.start_ms)] = w
        for k, v in s.scan(b"u"):
            pred, lab = struct.unpack("<qq", v)
            self.rewound[struct.unpack(">i", k[1:5])[0]] = (pred, lab)
        clocks = ((b"k", self.closed_until), (b"a", self.label_clock), (b"e", self.pred_clock))
        for prefix, into in clocks:
            for k, v in s.scan(prefix):
                into[(k[5:].decode(), struct.unpack(">i", k[1:5])[0])] = _I8.unpack(v)[0]
        for k, v in s.scan(b"c"):
            self._totals[k[1:].decode()] = list(_TOTALS.unpack(v))
        for k, v in s.scan(b"z"):
            cid, part = _CID.unpack(k[1:5])[0], struct.unpack(">i", k[5:9])[0]
            self.monitors[(cid, part)] = PartitionMonitor.from_bytes(v)
        for k, v in s.scan(b"v"):
            self.votes[_CID.unpack(k[1:5])[0]] = self._new_votebox().load(v)
        for k, v in s.scan(b"q"):
            key = (_CID.unpack(k[1:5])[0], struct.unpack(">i", k[5:9])[0])
            self.concept_sent[key], self.concept_open[key] = _read_buckets(v)
        self.early = {k[1:] for k, _ in s.scan(b"l")}
        for k, _ in s.scan(b"x"):
            self._outbox_seq = max(self._outbox_seq, _BE8.unpack(k[1:9])[0] + 1)

    def _new_votebox(self) -> VoteBox:
        c = self.config
        return VoteBox(c.quorum_fraction, c.quorum_min_votes, c.vote_window_ms)

    def set_reference(self, model: str, version: str, ref: ReferenceView | None) -> None:
        """Reference for label drift, performance comparison and feature bins
        (``version=""``: any version of the model)."""
        self._binners.clear()
        if ref is None:
            self.references.pop((model, version), None)
        else:
            self.references[(model, version)] = ref

    def _reference(self, cat: Catalog) -> ReferenceView | None:
        return self._reference_of(cat.model, cat.version)

    def _segments(self, cat: Catalog, cols: PredictionColumns) -> dict[str, Any]:
        """The batch's segment tags plus its binned features (``feature:<name>``)."""
        segments: dict[str, Any] = dict(cols.segments)
        if cat.tags is None:
            names = sorted(cols.numeric) + sorted(cols.categorical)
            features = names[: self.config.ranked_features]
        else:
            features = [t[len(FEATURE_TAG) :] for t in cat.tags if t.startswith(FEATURE_TAG)]
        if features:
            binner = self._binners.get((cat.model, cat.version))
            if binner is None:
                binner = FeatureBinner(self._reference(cat), self.config.feature_bins)
                self._binners[(cat.model, cat.version)] = binner
            segments.update(binner.segments(cols, features))
        return segments

    def _segment_codes(self, cat: Catalog, cols: PredictionColumns) -> np.ndarray:
        """Each row's value code per segment tag of ``cat``, ``(n, tags)`` int16, -1 for
        none: the batch's dictionaries through :meth:`Catalog.segment_codes` tag by tag
        (interning new values), then one lookup of every tag's codes in a table of them."""
        segments = self._segments(cat, cols)
        cat.ensure_tags(list(segments))
        tags = cat.tags or []
        cap = self.config.segment_cardinality
        present: list[int] = []
        tables: list[list[int]] = []
        codes = []
        for j, tag in enumerate(tags):
            arr = segments.get(tag)
            if arr is not None:
                present.append(j)
                tables.append(cat.segment_codes(j, arr.dictionary, cap))
                codes.append(arr.codes)
        if not present:
            return np.full((cols.n, len(tags)), -1, dtype=np.int16)
        # a row per tag: the codes of its dictionary's values, then -1s; the last cell
        # (index -1, a missing value) is always -1
        width = max(map(len, tables)) + 1
        table = np.array([[*t, *[-1] * (width - len(t))] for t in tables], dtype=np.int16)
        got = table[np.arange(len(present))[:, None], np.maximum(np.stack(codes), -1)].T
        if len(present) == len(tags):
            return got
        segs = np.full((cols.n, len(tags)), -1, dtype=np.int16)
        segs[:, present] = got
        return segs

    def _to_outbox(self, b: _Batch, out: LabelOutputs, encode: Encoder | None) -> None:
        if encode is None:
            return
        for topic, key, value in encode(out):
            b.puts[b"x" + _BE8.pack(self._outbox_seq)] = pack_blobs(topic.encode(), key, value)
            self._outbox_seq += 1

    def outbox(self) -> list[tuple[bytes, tuple[str, bytes, bytes]]]:
        """Encoded records emitted but not yet cleared: ``[(outbox key, (topic, key, value))]``."""
        out = []
        for k, v in self.store.scan(b"x"):
            topic, key, value = unpack_blobs(v)
            out.append((k, (topic.decode(), key, value)))
        return out

    def clear_outbox(self, keys: list[bytes]) -> None:
        """Forget outbox records the broker has acknowledged."""
        if keys:
            self.store.write({}, list(keys))

    def waiting_labels(self) -> set[tuple[str, str]]:
        """``(model, prediction_id)`` of the labels waiting for their prediction."""
        out = set()
        for key in self.early:
            n = _BE2.unpack(key[:2])[0]
            out.add((key[2 : 2 + n].decode(), key[2 + n :].decode()))
        return out

    def applied_offset(self, topic: str, partition: int) -> int:
        v = self.store.get(_offset_key(topic, partition))
        return -1 if v is None else _I8.unpack(v)[0]

    def _catalog(self, model: str, version: str, b: _Batch) -> Catalog:
        cid = self._cid.get((model, version))
        if cid is None:
            cid = len(self.catalogs) + 1  # u4: billions of model versions
            cat = Catalog(cid, model, version, max_classes=self.config.max_classes)
            self.catalogs[cid] = cat
            self._cid[(model, version)] = cid
        return self.catalogs[cid]

    def _tot(self, model: str) -> list[int]:
        t = self._totals.get(model)
        if t is None:
            t = self._totals[model] = [0] * len(TOTAL_FIELDS)
            t[TOTAL_FIELDS.index("label_watermark_ms")] = NO_TIME
        return t

    def _bump(self, model: str, name: str, n: int, touched: set[str]) -> None:
        if n:
            self._tot(model)[TOTAL_FIELDS.index(name)] += int(n)
            touched.add(model)

    def totals(self, model: str) -> dict[str, int]:
        """Cumulative counts of ``model`` (persisted; they survive restarts)."""
        t = self._totals.get(model)
        if t is None:
            return {f: 0 for f in TOTAL_FIELDS if f != "label_watermark_ms"}
        return {f: v for f, v in zip(TOTAL_FIELDS, t, strict=True) if f != "label_watermark_ms"}

    def models(self) -> list[str]:
        return sorted(self._totals)

    def _window(self, cid: int, partition: int, start: int) -> WindowPerformance:
        w = self.windows.get((cid, partition, start))
        if w is None:
            cat = self.catalogs[cid]
            c = self.config
            task = c.task_for(cat.model)
            w = WindowPerformance(
                cat.model,
                cat.version,
                start,
                start + c.window_ms,
                task=REGRESSION if task == "regression" else CLASSIFICATION,
                auc_bins=c.auc_bins,
                ece_bins=c.ece_bins,
            )
            self.windows[(cid, partition, start)] = w
        return w

    def _flush(self, b: _Batch, touched_models: set[str], touched_windows: set) -> None:
        for model in touched_models:
            b.puts[b"c" + model.encode()] = _TOTALS.pack(*self._totals[model])
        for cid, part, start in touched_windows:
            w = self.windows.get((cid, part, start))
            if w is not None:
                b.puts[_window_key(cid, part, start)] = w.to_bytes()
        for cat in self.catalogs.values():
            if cat.dirty:
                b.puts[b"m" + _CID.pack(cat.cid)] = cat.to_bytes()
                cat.dirty = False
        self.store.write(b.puts, list(b.deletes))

    # ---- predictions -----------------------------------------------------------------
    def observe_predictions(
        self,
        topic: str,
        partition: int,
        offset: int,
        cols: PredictionColumns,
        *,
        restore: bool = False,
        encode: Encoder | None = None,
    ) -> JoinResult:
        """Store a batch's predictions pending their labels (skipped if already applied).

        Labels that were waiting for these predictions join now: the result counts them.
        The batch moves the partition's prediction clock, which may close windows (with
        ``encode``, what closes goes to the outbox).
        With ``restore`` (rebuilding the join state of a partition another worker
        processed, :mod:`stream_jobs.join.restore`): pending records and their expiry only,
        first write wins, no counts, windows, joins or applied offset.
        """
        okey = _offset_key(topic, partition)
        if not restore and offset <= self.applied_offset(topic, partition):
            return JoinResult(skipped=True)
        c = self.config
        b = _Batch()
        touched: set[str] = set()
        twin: set[tuple[int, int, int]] = set()
        # first write wins: a prediction_id already pending (or joined) for this model, or
        # repeated in the batch, is a duplicate and changes nothing
        mkey = _model_key(cols.model)
        enc = encode_ids(cols.prediction_ids)
        pkeys = prefixed(b"p" + mkey, enc)
        first = first_rows(pkeys)
        stored = self.store.get_many(pkeys if first is None else list(first))
        fresh: Sequence[int]
        if first is None and stored.count(None) == cols.n:
            fresh = range(cols.n)  # every id new (most batches)
        else:
            rows = range(cols.n) if first is None else first.values()
            fresh = [i for i, rec in zip(rows, stored, strict=True) if rec is None]
        dup_predictions = cols.n - len(fresh)
        # a replay of what a restored partition snapshot already counted: join keys only
        replay = not restore and offset <= self.rewound.get(partition, (-1, -1))[0]
        if not restore and not replay:
            self._bump(cols.model, "duplicate_predictions", dup_predictions, touched)
        if dup_predictions:
            cols = cols.subset(np.array(fresh, dtype=np.int64))
            enc = [enc[i] for i in fresh]
            pkeys = [pkeys[i] for i in fresh]
        cat = self._catalog(cols.model, cols.model_version, b)
        n = cols.n
        t = np.asarray(cols.event_time_ms, dtype=np.int64)
        # -- predicted classes, probabilities, segments as catalog codes
        cls = None
        if cols.predicted_class is not None:
            dict_codes = cat.class_codes(cols.predicted_class.dictionary)
            pc = cols.predicted_class.codes
            cls = np.where(pc >= 0, dict_codes[np.maximum(pc, 0)] if dict_codes.size else -1, -1)
        probs = None
        if cols.class_probabilities is not None and cols.class_names:
            if cat.prob_classes is None:
                cat.prob_classes = list(cols.class_names)
                cat.dirty = True
                for name in cat.prob_classes:
                    cat.class_code(name)
            col_of = {name: j for j, name in enumerate(cols.class_names)}
            probs = np.full((n, len(cat.prob_classes)), np.nan)
            for j, name in enumerate(cat.prob_classes):
                if name in col_of:
                    probs[:, j] = cols.class_probabilities[:, col_of[name]]
        segs = self._segment_codes(cat, cols)
        # late: read after the partition cut the window on the prediction side
        starts = (t // c.window_ms) * c.window_ms
        edge = self._cut("p", self._clock_before("p", cat.model, partition, t, restore or replay))
        late = starts + c.window_ms <= edge
        records = pack_predictions(cat, t, cols.score, cls, probs, segs, late)
        b.puts.update(zip(pkeys, records, strict=True))
        if restore:  # join keys only
            self._index_expiry(b"p", topic, partition, offset, cols.model, t, enc, b)
            self._flush(b, set(), set())
            return JoinResult(skipped=False)
        # -- windows: prediction counts (join-rate denominator) and per-segment traffic
        for start in np.unique(starts[~late]).tolist() if not replay else []:
            sel = (starts == start) & ~late
            w = self._window(cat.cid, partition, start)
            w.n_predictions += int(sel.sum())
            for j, tag in enumerate(cat.tags or []):
                if tag.startswith(FEATURE_TAG):
                    continue  # feature ranges: labelled rows only (what the ranking reads)
                w.slices.add(
                    tag,
                    cat.segment_names(j),
                    segs[sel, j].astype(np.int64),
                    predictions=np.ones(int(sel.sum())),
                )
            twin.add((cat.cid, partition, start))
        if not replay:
            self._bump(cat.model, "predictions", n, touched)
        # -- expiry index: one entry per expiry bucket of this batch
        pids = cols.prediction_ids
        self._index_expiry(b"p", topic, partition, offset, cols.model, t, enc, b)
        # -- labels that came first
        result = JoinResult()
        if self.early and not self.early.isdisjoint(jkeys := [k[1:] for k in pkeys]):
            waiting = [i for i, k in enumerate(jkeys) if k in self.early]
            if replay:  # joined already in the snapshot, unless the label came after it
                silent = [i for i in waiting if jkeys[i] not in self.fresh_early]
                for i in silent:
                    b.puts[b"p" + jkeys[i]] = JOINED
                    b.delete(b"l" + jkeys[i])
                    self.early.discard(jkeys[i])
                waiting = [i for i in waiting if jkeys[i] in self.fresh_early]
            if waiting:
                for i in waiting:
                    self.fresh_early.discard(jkeys[i])
                lkeys = [b"l" + jkeys[i] for i in waiting]
                labs = [unpack_label(v) for v in self.store.get_many(lkeys)]
                lab_clock = np.array([x[4] for x in labs], dtype=np.int64)
                for k in lkeys:
                    b.delete(k)
                for i in waiting:
                    self.early.discard(jkeys[i])
                lab_t = np.array([x[1] for x in labs], dtype=np.int64)
                lab_v = np.array([x[2] for x in labs], dtype=np.float64)
                lab_c = [x[3] for x in labs]
                recs = [records[i] for i in waiting]
                self._join(
                    partition,
                    cat.model,
                    recs,
                    [pids[i] for i in waiting],
                    lab_t,
                    lab_v,
                    lab_c,
                    lab_clock,
                    b,
                    touched,
                    twin,
                    result,
                )
        b.puts[okey] = _I8.pack(offset)
        if n and not replay:
            out = LabelOutputs(orphans=result.orphans)
            self._advance(self.pred_clock, b"e", cat.model, partition, int(t.max()), offset, b, out)
            # early labels whose prediction did not come within the TTL of prediction time
            self._expire(b"l", cat.model, partition, self.pred_clock[(cat.model, partition)],
                         b, out, touched)  # fmt: skip
            self._emit(b, out, encode)
        self._flush(b, touched, twin)
        return result

    def _index_expiry(
        self,
        kind: bytes,
        topic: str,
        partition: int,
        offset: int,
        model: str,
        t: np.ndarray,
        ids: list[bytes],
        b: _Batch,
    ) -> None:
        """Index ``ids`` (UTF-8, event times ``t``) of one batch to expire a TTL after their
        time, one entry per expiry bucket."""
        if not ids:
            return
        bucket = self.config.expiry_bucket_ms
        exp = (np.asarray(t, dtype=np.int64) // bucket + 1) * bucket + self.config.ttl_ms
        src = topic.encode() + b"\x00" + struct.pack(">iq", partition, offset)
        first, last = int(exp.min()), int(exp.max())
        if first == last:  # one bucket (most batches): no grouping
            b.puts[_expiry_key(kind, partition, model, first, src)] = _expiry_entry(model, ids)
            return
        for e in np.unique(exp).tolist():
            idx = np.flatnonzero(exp == e).tolist()
            b.puts[_expiry_key(kind, partition, model, e, src)] = _expiry_entry(
                model, [ids[i] for i in idx]
            )

    def restore_labels(
        self, topic: str, partition: int, offset: int, labels: LabelColumns, *, early: bool = True
    ) -> int:
        """Rebuild what labels already did to a partition's join state elsewhere: their
        pending predictions become joined, labels without one wait as early labels (not
        with ``early`` False: see ``label_restore``). No counts, windows or applied
        offset. Returns the predictions marked joined."""
        mkey = _model_key(labels.model)
        lt = np.asarray(labels.event_time_ms, dtype=np.int64)
        lv = (
            np.full(labels.n, np.nan)
            if labels.label_value is None
            else np.asarray(labels.label_value, dtype=np.float64)
        )
        lc = [None] * labels.n if labels.label_class is None else labels.label_class.values()
        first: dict[bytes, int] = {}
        for i, pid in enumerate(labels.prediction_ids):
            if lc[i] is not None or math.isfinite(lv[i]):
                first.setdefault(mkey + pid.encode(), i)
        b = _Batch()
        joined = 0
        # predictions whose TTL the label stream had passed expired before these labels,
        # as they did for the worker that read them (its labels then waited, early)
        clock = self._reread_clock.get(("l", partition, labels.model))
        if clock is not None:
            self._expire(b"p", labels.model, partition, clock, b, LabelOutputs(), set(),
                         count=False)  # fmt: skip
            self._flush(b, set(), set())
            b = _Batch()
        clock = self._clock_before("l", labels.model, partition, lt, reread=True)
        waiting: list[int] = []
        for (key, i), rec in zip(
            first.items(), self.store.get_many([b"p" + k for k in first]), strict=True
        ):
            if rec is None:
                if early and key not in self.early:
                    self.early.add(key)
                    b.puts[b"l" + key] = pack_label(
                        labels.model, int(lt[i]), float(lv[i]), lc[i], clock=clock
                    )
                    waiting.append(i)
            elif rec != JOINED:
                b.puts[b"p" + key] = JOINED
                joined += 1
        ids = encode_ids([labels.prediction_ids[i] for i in waiting])
        self._index_expiry(b"l", topic, partition, offset, labels.model, lt[waiting], ids, b)
        self._flush(b, set(), set())
        return joined

    def expire_reread(self, partition: int) -> None:
        """After a restore re-read ``partition``: expire what the clocks of the re-read
        passed, silently (the worker that read the records dead-lettered the orphans)."""
        b = _Batch()
        for (side, p, model), clock in sorted(self._reread_clock.items()):
            if p == partition:
                kind = b"l" if side == "p" else b"p"  # each stream's clock expires the other's
                self._expire(kind, model, p, clock, b, LabelOutputs(), set(), count=False)
        self._flush(b, set(), set())

    # ---- labels ----------------------------------------------------------------------
    def observe_labels(
        self,
        topic: str,
        partition: int,
        offset: int,
        labels: LabelColumns,
        encode: Encoder | None = None,
    ) -> JoinResult:
        """Join a batch of labels with their stored predictions (skipped if applied).

        With ``encode``, labels orphaned at once (early-label overflow) go to the outbox."""
        okey = _offset_key(topic, partition)
        if offset <= self.applied_offset(topic, partition):
            return JoinResult(skipped=True)
        b = _Batch()
        touched: set[str] = set()
        twin: set[tuple[int, int, int]] = set()
        result = JoinResult()
        model = labels.model
        pids = labels.prediction_ids
        lt = np.asarray(labels.event_time_ms, dtype=np.int64)
        lv = (
            np.full(labels.n, np.nan)
            if labels.label_value is None
            else np.asarray(labels.label_value, dtype=np.float64)
        )
        lc: list[str | None] = (
            [None] * labels.n if labels.label_class is None else labels.label_class.values()
        )
        # a replay of what a restored partition snapshot already counted: join state only
        replay = offset <= self.rewound.get(partition, (-1, -1))[1]
        bump = self._bump if not replay else _no_count  # the snapshot's worker counted it
        # the label clock before this record: where this record's labels were read
        clock = self._clock_before("l", model, partition, lt, reread=replay)
        bump(model, "labels", labels.n, touched)
        tot = self._tot(model)
        wm = TOTAL_FIELDS.index("label_watermark_ms")
        if labels.n:
            tot[wm] = max(tot[wm], int(lt.max()))
        # a label without a value (no class, no finite number) cannot be scored: it is
        # dead-lettered and leaves the prediction free for its real label
        valueless = [i for i in range(labels.n) if lc[i] is None and not math.isfinite(lv[i])]
        for i in valueless:
            result.orphans.append(Orphan(pids[i], model, "no_value", int(lt[i])))
        bump(model, "valueless_labels", len(valueless), touched)
        # first occurrence of each (model, id) in the batch; the rest are duplicates
        mkey = _model_key(model)
        skip = set(valueless)
        first: dict[bytes, int] = {}
        for i, pid in enumerate(pids):
            if i not in skip:
                first.setdefault(mkey + pid.encode(), i)
        dup = labels.n - len(skip) - len(first)
        rows = list(first.values())
        keys_by_row = {i: k for k, i in first.items()}
        found = self.store.get_many([b"p" + k for k in first])
        join_pos: list[int] = []
        join_recs: list[bytes] = []
        early_new: list[int] = []
        for i, rec in zip(rows, found, strict=True):
            if rec is None:
                if keys_by_row[i] in self.early:
                    dup += 1
                else:
                    early_new.append(i)
            elif rec == JOINED:
                dup += 1
            else:
                join_pos.append(i)
                join_recs.append(rec)
        bump(model, "duplicates", dup, touched)
        result.duplicates = dup
        # early labels wait on disk until their prediction comes or their TTL passes
        for i in early_new:
            key = keys_by_row[i]
            self.early.add(key)
            if partition in self.rewound and not replay:
                self.fresh_early.add(key)  # came after the snapshot: joins count
            b.puts[b"l" + key] = pack_label(model, int(lt[i]), float(lv[i]), lc[i], clock=clock)
            result.early += 1
        ids = encode_ids([pids[i] for i in early_new])
        self._index_expiry(b"l", topic, partition, offset, model, lt[early_new], ids, b)
        bump(model, "early", result.early, touched)
        if join_pos and replay:
            for i in join_pos:
                b.puts[b"p" + keys_by_row[i]] = JOINED
        elif join_pos:
            jp = np.array(join_pos)
            self._join(
                partition,
                model,
                join_recs,
                [pids[i] for i in join_pos],
                lt[jp],
                lv[jp],
                [lc[i] for i in join_pos],
                np.full(len(join_pos), clock, dtype=np.int64),
                b,
                touched,
                twin,
                result,
            )
        b.puts[okey] = _I8.pack(offset)
        if replay:
            result.orphans = []  # dead-lettered by the worker that made the snapshot
        out = LabelOutputs(orphans=result.orphans)
        if labels.n and not replay:
            self._advance(self.label_clock, b"a", model, partition, int(lt.max()), offset, b, out)
            # predictions whose label did not come within the TTL of label time
            self._expire(b"p", model, partition, self.label_clock[(model, partition)], b, out,
                         touched)  # fmt: skip
        self._emit(b, out, encode)
        self._flush(b, touched, twin)
        return result

    def _emit(self, b: _Batch, out: LabelOutputs, encode: Encoder | None) -> None:
        if encode is not None:
            self._to_outbox(b, out, encode)
        else:  # in-process: merged and judged at the next poll
            self._local.partials += out.partials
            self._local.detections += out.detections

    # ---- windows close per partition ----------------------------------------------------
    def _cut(self, side: str, clock_ms: int) -> int:
        """The window end up to which a stream at ``clock_ms`` is cut (``side``: ``l``
        labels, ``p`` predictions; NO_TIME: nothing read, nothing cut)."""
        if clock_ms <= NO_TIME:
            return NO_TIME
        lag = self.config.label_horizon_ms if side == "l" else self.drift.allowed_lateness_ms
        return boundary(clock_ms - lag, self.config.window_ms)

    def _label_cuts(self, clocks_ms: np.ndarray) -> np.ndarray:
        """:meth:`_cut` of label clocks, vectorised."""
        c = self.config
        cut = (clocks_ms - c.label_horizon_ms) // c.window_ms * c.window_ms
        return np.where(clocks_ms <= NO_TIME, NO_TIME, cut)

    def _clock_before(
        self, side: str, model: str, partition: int, t: np.ndarray, reread: bool
    ) -> int:
        """The clock of ``side``'s stream of ``partition`` for ``model`` before a record
        with times ``t`` (NO_TIME: none read). A record ``reread`` (label_restore re-reading
        what another worker processed, or a replay of what a restored snapshot counted) is
        taken at the running clock of the re-read, which then moves past it: the clock it
        had when first read, exactly if the re-read started at offset 0 (else a lower
        bound)."""
        if reread:
            key = (side, partition, model)
            before = self._reread_clock.get(key)
            if t.size:
                self._reread_clock[key] = max(NO_TIME if before is None else before, int(t.max()))
        else:
            clocks = self.label_clock if side == "l" else self.pred_clock
            before = clocks.get((model, partition))
        return NO_TIME if before is None else before

    def _advance(
        self,
        clocks: dict[tuple[str, int], int],
        prefix: bytes,
        model: str,
        partition: int,
        t: int,
        offset: int,
        b: _Batch,
        out: LabelOutputs,
    ) -> None:
        """Move one stream's clock of the partition for ``model`` to ``t``; close the
        windows both streams' cuts have now passed."""
        key = (model, partition)
        if t <= clocks.get(key, NO_TIME):
            return
        clocks[key] = t
        b.puts[_clock_key(prefix, partition, model)] = _I8.pack(t)
        if key not in self.label_clock or key not in self.pred_clock:
            return  # a stream not read yet has not cut anything
        self._settle_concept(model, partition, offset, b, out)
        edge = min(self._cut("l", self.label_clock[key]), self._cut("p", self.pred_clock[key]))
        if edge <= self.closed_until.get(key, NO_TIME):
            return
        self.closed_until[key] = edge
        b.puts[_clock_key(b"k", partition, model)] = _I8.pack(edge)
        closing = sorted(
            (k for k, w in self.windows.items()
             if k[1] == partition and w.end_ms <= edge and self.catalogs[k[0]].model == model),
            key=lambda k: (k[2], self.catalogs[k[0]].version),
        )  # fmt: skip
        closed = []
        for cid, part, start in closing:
            w = self.windows.pop((cid, part, start))
            b.delete(_window_key(cid, part, start))
            cat = self.catalogs[cid]
            closed.append((cat.version, start, w.end_ms, encode_payload(w, cat.classes)))
            if cid in self.votes and w.end_ms > self._concept_window.get(cid, NO_TIME):
                # a per-window concept observation (resolves when quiet), once per window
                # of the model, made at the next poll (after the quorum's own transitions)
                self._concept_window[cid] = w.end_ms
                self._concept_due.append((cid, start, w.end_ms, w.reg.n > w.cls.n))
        out.partials += closing_step(
            model, PERFORMANCE, partition, self.input_partitions, offset, edge, closed
        )
        self.stepped.add(partition)

    def _settle_concept(
        self, model: str, partition: int, offset: int, b: _Batch, out: LabelOutputs
    ) -> None:
        """Send ``model``'s pooled concept buckets this partition has settled, every
        ``concept_step_ms``: it has settled up to the lesser of its label clock and its
        prediction cut. A later error of the partition lands in a later bucket: one joined
        when its label is read, in the bucket of that label clock or later; one joined when
        its prediction is read (not late), in the bucket of its time, at or past the
        prediction cut."""
        key = (model, partition)
        c = self.config
        settled = min(self.label_clock[key], self._cut("p", self.pred_clock[key]))
        step = boundary(settled, c.concept_step_ms)
        due = [(cid, p) for cid, p in self.concept_open
               if p == partition and step > self.concept_sent[(cid, p)]
               and self.catalogs[cid].model == model]  # fmt: skip
        for cid, p in sorted(due):
            cat, cells = self.catalogs[cid], self.concept_open[(cid, p)]
            done = sorted(s for s in cells if s + c.concept_bucket_ms <= step)
            counts = [(s, *cells.pop(s)) for s in done]
            out.partials.append(PartialRecord(
                model, cat.version, CONCEPT, self.concept_sent[(cid, p)], step, partition,
                self.input_partitions, offset, encode_buckets(counts), step,
            ))  # fmt: skip
            self.concept_sent[(cid, p)] = step
            b.puts[_concept_key(cid, p)] = _buckets_value(step, cells)

    # ---- a partition's window state moves with the partition ------------------------------
    def label_position(self, partition: int) -> int | None:
        """The partition's label clock (largest over its models), if it has one."""
        times = [t for (_, p), t in self.label_clock.items() if p == partition]
        return max(times) if times else None

    def partitions(self) -> list[int]:
        """Input partitions with performance state here."""
        found = {p for _, p, _ in self.windows} | {p for _, p in self.label_clock}
        found |= {p for _, p in self.pred_clock}
        return sorted(found)

    def partition_state(self, partition: int, predictions: str, labels: str) -> bytes:
        """What another worker needs to carry on ``partition``'s performance windows: its
        open windows, clocks, and the input offsets they reflect (versioned state codec)."""
        header = {
            "partition": partition,
            "predictions": self.applied_offset(predictions, partition),
            "labels": self.applied_offset(labels, partition),
            # [model, closed until, label clock, prediction clock]
            "clocks": [[m, self.closed_until.get((m, p), NO_TIME),
                        self.label_clock.get((m, p), NO_TIME), self.pred_clock.get((m, p), NO_TIME)]
                       for m, p in sorted({*self.label_clock, *self.pred_clock}) if p == partition],
        }  # fmt: skip
        # pooled concept buckets not sent yet: [model, version, sent up to, buckets]
        header["concept"] = [
            [self.catalogs[cid].model, self.catalogs[cid].version, self.concept_sent[(cid, p)],
             [[s, n, k] for s, (n, k) in sorted(cells.items())]]
            for (cid, p), cells in sorted(self.concept_open.items()) if p == partition
        ]  # fmt: skip
        blobs = [
            encode_payload(w, self.catalogs[cid].classes)
            for (cid, p, _), w in sorted(self.windows.items())
            if p == partition
        ]
        return encode_state(STATE_KIND, header, blobs)

    def snapshot_offsets(self, data: bytes) -> tuple[int, int]:
        h, _ = decode_state(data, STATE_KIND)
        return int(h["predictions"]), int(h["labels"])

    def restore_partition(
        self, partition: int, data: bytes, predictions: str, labels: str
    ) -> bool:
        """Take over ``partition``'s windows from a snapshot another worker made, unless this
        store has applied at least as much of the partition (then it is the newer state).
        Batches at or below the snapshot's offsets then update the join state only (what
        they did to the windows is in the snapshot). Returns whether the snapshot was taken."""
        h, blobs = decode_state(data, STATE_KIND)
        snap = (int(h["labels"]), int(h["predictions"]))
        have = (self.applied_offset(labels, partition), self.applied_offset(predictions, partition))
        if snap <= have:
            return False
        b = _Batch()
        for key in [k for k in self.windows if k[1] == partition]:
            del self.windows[key]
            b.delete(_window_key(*key))
        clocks = ((b"k", self.closed_until), (b"a", self.label_clock), (b"e", self.pred_clock))
        for key in [k for k in {*self.label_clock, *self.pred_clock, *self.closed_until}
                    if k[1] == partition]:  # fmt: skip
            for prefix, into in clocks:
                into.pop(key, None)
                b.delete(_clock_key(prefix, partition, key[0]))
        for model, *times in h["clocks"]:
            for (prefix, into), t in zip(clocks, times, strict=True):
                if int(t) > NO_TIME:
                    into[(model, partition)] = int(t)
                    b.puts[_clock_key(prefix, partition, model)] = _I8.pack(int(t))
        for key in [k for k in self.concept_open if k[1] == partition]:
            del self.concept_open[key]
            del self.concept_sent[key]
            b.delete(_concept_key(*key))
        for model, version, sent, cells in h.get("concept", []):
            key = (self._catalog(model, version, b).cid, partition)
            self.concept_sent[key] = int(sent)
            self.concept_open[key] = {int(s): [float(n), float(k)] for s, n, k in cells}
            b.puts[_concept_key(*key)] = _buckets_value(int(sent), self.concept_open[key])
        twin: set[tuple[int, int, int]] = set()
        for blob in blobs:
            w, names = decode_payload(blob)
            cat = self._catalog(w.model, w.model_version, b)
            index = {name: cat.class_code(name) for name in names}
            recode_classes(w, names, index, len(cat.classes))
            self.windows[(cat.cid, partition, w.start_ms)] = w
            twin.add((cat.cid, partition, w.start_ms))
        self.rewound[partition] = (int(h["predictions"]), int(h["labels"]))
        b.puts[b"u" + struct.pack(">i", partition)] = struct.pack("<qq", *self.rewound[partition])
        self._flush(b, set(), twin)
        return True

    # ---- the join proper ---------------------------------------------------------------
    def _join(
        self,
        partition: int,
        label_model: str,
        records: list[bytes],
        pids: list[str],
        lab_t: np.ndarray,
        lab_v: np.ndarray,
        lab_c: list[str | None],
        lab_clock: np.ndarray,
        b: _Batch,
        touched: set[str],
        twin: set[tuple[int, int, int]],
        result: JoinResult,
    ) -> None:
        """Join labels with their predictions' records; a pair counts in the prediction's
        window unless the prediction was late or the label came after the label cut
        (``lab_clock``: the label clock before each label's record)."""
        c = self.config
        mkey = _model_key(label_model)
        for pid in pids:
            b.puts[b"p" + mkey + pid.encode()] = JOINED
        for cid, rows, pos in unpack_predictions(records, self.catalogs):
            cat = self.catalogs[cid]
            lt, lv = lab_t[pos], lab_v[pos]
            lcs = [lab_c[i] for i in pos.tolist()]
            pt = rows["t"].astype(np.int64)
            delays = (lt - pt) / 1000.0
            regression = self._is_regression(cat.model, lcs)
            if regression:
                y_true, y_pred = lv, rows["score"].astype(np.float64)
                err = np.abs(y_pred - y_true)
                err = np.where(np.isfinite(err), err, np.nan)
                stream = err[np.isfinite(err)]
                stream_t = pt[np.isfinite(err)]
                pieces = None
            else:
                pieces = self._classification_pieces(cat, rows, lv, lcs)
                y_true, y_pred = pieces["y_true"], pieces["y_pred"]
                ok = (y_true >= 0) & (y_pred >= 0)
                err = (y_true != y_pred).astype(np.float64)
                stream, stream_t = err[ok], pt[ok]
            # windows: both reads before their stream's cut (the window is open then)
            starts = (pt // c.window_ms) * c.window_ms
            pred_late = (rows["flags"] & LATE) > 0
            late = pred_late | (starts + c.window_ms <= self._label_cuts(lab_clock[pos]))
            n_late = int(late.sum())
            result.late += n_late
            self._bump(cat.model, "late_labels", n_late, touched)
            for start in np.unique(starts[~late]).tolist():
                sel = starts == start
                w = self._window(cid, partition, start)
                w.add_delays(delays[sel])
                if regression:
                    w.reg.update(y_true[sel], y_pred[sel])
                    w.add_label_values(y_true[sel])
                else:
                    if w.cls.positive < 0 and pieces["positive"] >= 0:
                        w.cls.positive = pieces["positive"]
                    w.cls.update(
                        y_true[sel],
                        y_pred[sel],
                        pos_score=pieces["pos_score"][sel],
                        p_true=pieces["p_true"][sel],
                        confidence=pieces["confidence"][sel],
                    )
                if cat.tags:
                    e = err[sel]
                    fin = np.isfinite(e)
                    for j, tag in enumerate(cat.tags):
                        w.slices.add(
                            tag,
                            cat.segment_names(j),
                            rows["segs"][sel, j].astype(np.int64),
                            labels=fin.astype(np.float64),
                            errors=np.where(fin, e, 0.0),
                            sq_errors=np.where(fin, e * e, 0.0),
                        )
                twin.add((cid, partition, start))
            # concept drift: the model's pooled error stream (classifiers, by default) ...
            if stream.size and not regression and c.concept_scope == "pooled":
                # a late prediction's error counts in no bucket (as in no window); the
                # others in the bucket of their time or of the label clock their label was
                # read at, whichever is later: never one the partition has settled
                fed = ok & ~pred_late
                key = (cid, partition)
                cells = self.concept_open.setdefault(key, {})
                self.concept_sent.setdefault(key, NO_TIME)
                assigned = np.maximum(pt, lab_clock[pos])[fed]
                for start, n_, k_ in bucket_counts(err[fed], assigned, c.concept_bucket_ms):
                    cell = cells.setdefault(start, [0.0, 0.0])
                    cell[0] += n_
                    cell[1] += k_
                b.puts[_concept_key(*key)] = _buckets_value(self.concept_sent[key], cells)
            # ... or this partition's error stream, in join order
            elif stream.size:
                part = partition if c.concept_scope == "partition" else 0
                mkey = (cid, part)
                mon = self.monitors.get(mkey)
                if mon is None:
                    name = c.regression_detector if regression else c.detector
                    params = c.regression_detector_params if regression else c.detector_params
                    mon = self.monitors[mkey] = PartitionMonitor(
                        name, params, recent=c.recent_errors, min_increase=c.min_increase
                    )
                box = self.votes.get(cid)
                if not isinstance(box, VoteBox):
                    box = self.votes[cid] = self._new_votebox()
                box.seen(part, int(stream_t.max()))
                for fire in mon.update(stream, stream_t):
                    box.vote(part, fire)
                b.puts[b"z" + _CID.pack(cid) + struct.pack(">i", part)] = mon.to_bytes()
                b.puts[b"v" + _CID.pack(cid)] = box.to_bytes()
            n = int(pt.size)
            result.joined += n
            result.joined_by_model[cat.model] = result.joined_by_model.get(cat.model, 0) + n
            prev = result.delays_s.get(cat.model)
            result.delays_s[cat.model] = delays if prev is None else np.concatenate([prev, delays])
            self._bump(cat.model, "joined", n, touched)

    def _is_regression(self, model: str, label_classes: list[str | None]) -> bool:
        task = self.config.task_for(model)
        if task != "auto":
            return task == "regression"
        decided = self._regression.get(model)
        if decided is None:  # once per model, so the task never flips mid-stream
            from_ref = self._reference_is_regression(model)
            decided = all(x is None for x in label_classes) if from_ref is None else from_ref
            self._regression[model] = decided
        return decided

    def _reference_is_regression(self, model: str) -> bool | None:
        """What the model's reference says its task is (its performance metrics), if any."""
        for (m, _), ref in sorted(self.references.items(), key=lambda kv: kv[0][1]):
            if m == model and ref.performance:
                return "accuracy" not in ref.performance and "mae" in ref.performance
        return None

    def _classification_pieces(
        self, cat: Catalog, rows: np.ndarray, lv: np.ndarray, lcs: list[str | None]
    ) -> dict[str, Any]:
        c = self.config
        n = rows.size
        # true class codes (a numeric label of a classifier names its class: 1.0 -> "1")
        names = [
            x
            if x is not None
            else (
                None if not math.isfinite(v) else (str(int(v)) if float(v).is_integer() else str(v))
            )
            for x, v in zip(lcs, lv.tolist(), strict=True)
        ]
        y_true = np.array([-1 if x is None else cat.class_code(x) for x in names], np.int64)
        flags = rows["flags"]
        has_cls = (flags & HAS_CLASS) > 0
        has_probs = (flags & HAS_PROBS) > 0
        has_score = (flags & HAS_SCORE) > 0
        score = rows["score"].astype(np.float64)
        # the positive class: binary models only
        positive = -1
        pc = cat.prob_classes
        if pc and len(pc) == 2:
            positive = cat.class_code(c.positive_class if c.positive_class in pc else pc[1])
        elif not pc and (has_score.any() or c.positive_class in cat._class_index):
            positive = cat.class_code(c.positive_class)
        negative = cat.class_code(c.negative_class) if positive >= 0 and not pc else -1
        y_pred = np.where(has_cls, rows["cls"].astype(np.int64), -1)
        pos_score = np.full(n, np.nan)
        p_true = np.full(n, np.nan)
        confidence = np.full(n, np.nan)
        if pc and has_probs.any():
            probs = rows["probs"].astype(np.float64)
            tot = probs.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                probs = probs / tot
            pcodes = np.array([cat.class_code(x) for x in pc], dtype=np.int64)
            y_pred = np.where(
                ~has_cls & has_probs,
                pcodes[np.nanargmax(np.where(np.isfinite(probs), probs, -1.0), axis=1)],
                y_pred,
            )
            col_of_code = {code: j for j, code in enumerate(pcodes.tolist())}
            tcol = np.array([col_of_code.get(v, -1) for v in y_true.tolist()], dtype=np.int64)
            pcol = np.array([col_of_code.get(v, -1) for v in y_pred.tolist()], dtype=np.int64)
            r = np.arange(n)
            p_true = np.where(
                has_probs & (y_true >= 0),
                np.where(tcol >= 0, probs[r, np.maximum(tcol, 0)], 0.0),
                np.nan,
            )
            confidence = np.where(has_probs & (pcol >= 0), probs[r, np.maximum(pcol, 0)], np.nan)
            if positive >= 0:
                pos_score = np.where(has_probs, probs[:, col_of_code[positive]], np.nan)
        if positive >= 0:
            by_score = has_score & ~has_probs
            if by_score.any():
                s = score
                pos_score = np.where(by_score, s, pos_score)
                y_pred = np.where(
                    by_score & ~has_cls,
                    np.where(s >= c.decision_threshold, positive, negative),
                    y_pred,
                )
                p_true = np.where(
                    by_score & (y_true >= 0), np.where(y_true == positive, s, 1.0 - s), p_true
                )
                pred_pos = y_pred == positive
                confidence = np.where(by_score, np.where(pred_pos, s, 1.0 - s), confidence)
        return {
            "y_true": y_true,
            "y_pred": y_pred,
            "pos_score": pos_score,
            "p_true": p_true,
            "confidence": confidence,
            "positive": positive,
        }

    # ---- time passes -------------------------------------------------------------------
    def poll(self, now_event_ms: int, encode: Encoder | None = None) -> LabelOutputs:
        """Expire past the TTL at ``now_event_ms``; evaluate concept-drift quorums. With
        ``encode``, what this emits goes to the outbox in the same write; without, the
        partials closed since the last poll are merged here (in-process) and the merged
        windows and their detections returned."""
        out = LabelOutputs()
        b = _Batch()
        touched: set[str] = set()
        self._expire_stalled(now_event_ms, b, out, touched)
        self._concept(b, out)
        due, self._concept_due = self._concept_due, []
        for cid, start, end, regression in due:
            box = self.votes.get(cid)
            if box is not None:
                cat = self.catalogs[cid]
                out.detections.append(
                    concept_detection(cat.model, cat.version, box, self.config,
                                      (start, end, regression))
                )  # fmt: skip
        if encode is None:
            self._merge_local(out)
        self._to_outbox(b, out, encode)
        self._flush(b, touched, set())
        return out

    def _merge_local(self, out: LabelOutputs, force: bool = False) -> None:
        local, self._local = self._local, LabelOutputs()
        out.detections += local.detections
        for rec in local.partials:
            if rec.kind == CONCEPT:
                self._pool.add(0, rec)
            else:
                self._book.add(rec)
        now = time.monotonic() + (1e18 if force else 0.0)
        for (model, version, _, start), parts, _ in self._book.ready(now):
            doc, dets = self.merger.judge(parts, self._reference_of(model, version))
            out.windows.append(doc)
            out.detections += dets
            self._pool.window_closed(0, model, version, start, int(doc["window_end_ms"]))
        out.detections += self._pool.poll(0)

    def drain_partials(self) -> list[PartialRecord]:
        """In-process (no encode): the performance partials and markers closed since the
        last call, unmerged (a poll merges them instead; concept partials go to the
        in-process concept pool)."""
        out = [r for r in self._local.partials if r.kind != CONCEPT]
        self._local.partials = [r for r in self._local.partials if r.kind == CONCEPT]
        return out

    def flush_windows(self) -> LabelOutputs:
        """In-process: merge every partial closed so far, complete or not (tests, end of
        a replay)."""
        out = LabelOutputs()
        self._merge_local(out, force=True)
        return out

    def _reference_of(self, model: str, version: str) -> ReferenceView | None:
        return self.references.get((model, version)) or self.references.get((model, ""))

    def _expire(
        self,
        kind: bytes,
        model: str,
        partition: int,
        clock_ms: int,
        b: _Batch,
        out: LabelOutputs,
        touched: set[str],
        count: bool = True,
    ) -> None:
        """Expire ``kind`` entries (``p``: pending predictions, ``l``: early labels) of the
        partition and model due at ``clock_ms``: the other stream's clock, so what expires
        is decided by the records read, not by when a timer ran. Without ``count`` (a
        restore re-reading what another worker processed) nothing is counted or returned."""
        bump = self._bump if count else _no_count
        orphans = out.orphans if count else []
        prefix = _expiry_prefix(kind, partition, model)
        upto = prefix + _ORD8.pack(max(0, min(clock_ms + 2**63 + 1, 2**64 - 1)))
        mkey = _model_key(model)
        for k, v in list(self.store.scan(prefix, upto)):
            if k in b.deletes:
                continue
            b.delete(k)
            _, ids = _read_expiry_entry(v)
            if kind == b"p":
                keys = [b"p" + mkey + pid.encode() for pid in ids]
                stored = self.store.get_many(keys)
                for key, pid, rec in zip(keys, ids, stored, strict=True):
                    rec = b.get(key, rec)  # joined by this very batch, maybe
                    if rec is None:
                        continue
                    b.delete(key)
                    if rec != JOINED:
                        cat = self.catalogs[int.from_bytes(rec[1:5], "little")]
                        t = struct.unpack_from("<q", rec, 5)[0]
                        orphans.append(Orphan(pid, cat.model, "no_label", t))
                        bump(cat.model, "orphan_predictions", 1, touched)
            else:
                keys = [b"l" + mkey + pid.encode() for pid in ids]
                stored = self.store.get_many(keys)
                for key, pid, rec in zip(keys, ids, stored, strict=True):
                    rec = b.get(key, rec)
                    if rec is None:
                        continue
                    b.delete(key)
                    self.early.discard(key[1:])
                    self.fresh_early.discard(key[1:])
                    lmodel, t, _, _, _ = unpack_label(rec)
                    orphans.append(Orphan(pid, lmodel, "no_prediction", t))
                    bump(lmodel, "orphan_labels", 1, touched)

    def _expire_stalled(self, now_ms: int, b: _Batch, out: LabelOutputs, touched: set[str]) -> None:
        """The backstop on the wall clock: a stream that stopped (a model whose labels never
        come, a partition without predictions any more) moves no clock, so what waits on
        it expires once that clock has not moved for a TTL of wall time, at ``now_ms``."""
        ttl = self.config.ttl_ms
        pairs = sorted({*self.label_clock, *self.pred_clock})
        for kind, clocks in ((b"p", self.label_clock), (b"l", self.pred_clock)):
            for model, partition in pairs:
                key = (kind, model, partition)
                clock = clocks.get((model, partition))
                seen = self._clock_seen.get(key)
                if seen is None or seen[0] != clock:
                    self._clock_seen[key] = (clock, now_ms)
                    continue
                if now_ms - seen[1] >= ttl:
                    self._expire(kind, model, partition, now_ms, b, out, touched)

    def window_partial(
        self, model: str, version: str, start_ms: int, partition: int | None = None
    ) -> WindowPerformance | None:
        """The open accumulator of a window in ``partition`` (None: every partition's,
        merged)."""
        cid = self._cid.get((model, version))
        if cid is None:
            return None
        found = [w for (c, p, s), w in sorted(self.windows.items())
                 if c == cid and s == start_ms and partition in (None, p)]  # fmt: skip
        if not found:
            return None
        merged = WindowPerformance.from_bytes(found[0].to_bytes())
        for w in found[1:]:
            merged.merge(w)
        return merged

    def open_windows(self, model: str | None = None) -> list[dict[str, Any]]:
        """Current values of windows not yet closed (every partition's, merged)."""
        docs = []
        keys = sorted({(s, cid) for cid, _, s in self.windows})
        for start, cid in keys:
            cat = self.catalogs[cid]
            if model is None or cat.model == model:
                w = self.window_partial(cat.model, cat.version, start)
                assert w is not None
                docs.append(window_doc(w, cat.classes, closed=False))
        return docs

    def _concept(self, b: _Batch, out: LabelOutputs) -> None:
        for cid, box in self.votes.items():
            cat = self.catalogs[cid]
            det = transition(cat.model, cat.version, box, self.config)
            if det is None:
                continue
            out.detections.append(det)
            b.puts[b"v" + _CID.pack(cid)] = box.to_bytes()
