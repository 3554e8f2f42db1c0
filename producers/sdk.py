"""The publishing SDK a model server embeds.

Each call appends one row to an in-memory buffer and returns at once; a background sender
thread routes rows to partitions with Kafka's murmur2 of the prediction_id (vectorised),
keeps one buffer per partition, and sends one columnar ``PredictionBatch`` / ``LabelBatch``
per partition when that partition holds ``batch_size`` events or its oldest event has
waited ``linger_ms``. Labels are routed by the same hash over the labels topic, so a label
lands in its prediction's partition (the topics have equal partition counts).

Wire details (documented contract):

* A batch's Kafka **key is the first prediction_id in the batch**. Every id in a batch
  hashes to the batch's partition, so the key is consistent with the partition whoever
  re-hashes it; consumers must read ids from the batch body, not the key.
* The batch is produced to an explicit partition; single events
  (:meth:`ModelwatchPublisher.publish_single_prediction`) are keyed by their prediction_id
  and placed by librdkafka's ``murmur2_random`` partitioner — the same function.
* Producer: ``enable.idempotence=True``, ``compression.type`` zstd or lz4, bounded
  ``queue.buffering.max.messages`` and ``message.timeout.ms``.

The caller's path never blocks on the network and never raises because the broker is slow
or down: the buffer is bounded (``max_buffered_events`` counts rows waiting in the SDK
*and* rows handed to the Kafka client but not yet acknowledged); past the bound, events are
dropped and counted by reason (:attr:`ModelwatchPublisher.dropped`, and the
``modelwatch_sdk_events_dropped_total`` metric). Drop reasons: ``buffer_full``,
``queue_full`` (the Kafka client's queue stayed full), ``timeout`` (not acknowledged within
``message_timeout_ms``), ``no_metadata`` (partition count unknown for
``message_timeout_ms``), ``delivery_error``, ``too_large``, ``invalid`` (a row that could not
be encoded), ``closed`` (published after :meth:`close`, or still unsent at close).

asyncio: every ``publish_*`` method is non-blocking (a lock-protected list append) and safe
to call directly from a coroutine. ``await pub.aflush()`` / ``await pub.aclose()`` and
``async with`` wait without blocking the event loop. :class:`AsyncModelwatchPublisher` is
the same class under the name an asyncio code base looks for.

Example (needs a broker, so not run as a doctest)::

    with ModelwatchPublisher("127.0.0.1:9092", "churn", "v3") as pub:
        pid = pub.publish_prediction(numeric={"age": 41.0}, categorical={"plan": "plus"},
                                     score=0.83, predicted_class="churn", latency_ms=12.5)
        pub.publish_label(pid, label_class="churn")
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter as TallyCounter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
from confluent_kafka import KafkaError, Message, Producer
from prometheus_client import CollectorRegistry

from producers.columns import (
    concat_labels,
    concat_predictions,
    split_by_partition,
    take_labels,
    take_predictions,
)
from producers.metrics import sdk_metrics
from producers.partitioner import partitions_for
from producers.rows import (
    LabelRow,
    PredRow,
    event_features,
    label_rows_to_columns,
    prediction_rows_to_columns,
)
from schemas.codec import default_codec
from schemas.columnar import STATUS_CODES, LabelColumns, PredictionColumns
from schemas.kafka import KafkaConfig, build_client
from schemas.topics import TopicNames

log = logging.getLogger("modelwatch.sdk")

PREDICTION = "prediction"
LABEL = "label"
MAX_PAYLOAD_BYTES = 900_000  # under the 1 MB default message.max.bytes of brokers
_NO_META_RETRY_S = 1.0  # between metadata attempts
_ROWS_PER_CONVERSION = 1000
_META_TIMEOUT_S = 0.3  # one metadata request (sender thread), short so close() is quick


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Lane:
    """Rows of one kind (predictions or labels) on their way to one topic."""

    kind: str
    topic: str
    rows: list[Any] = field(default_factory=list)  # caller-side rows (PredRow / LabelRow)
    chunks: list[Any] = field(default_factory=list)  # caller-side columnar chunks
    incoming_n: int = 0
    partitions: int = 0
    # per partition: list of (monotonic enqueue time, columns)
    routed: list[list[tuple[float, Any]]] = field(default_factory=list)
    routed_n: list[int] = field(default_factory=list)
    oldest_row_mono: float = 0.0


class ModelwatchPublisher:
    """Buffered, partition-aware, never-blocking publisher of predictions and labels.

    Args:
        bootstrap: Kafka bootstrap servers, e.g. ``"127.0.0.1:9092"``, or a
            :class:`schemas.kafka.KafkaConfig` (client properties file: SASL, TLS).
        model, model_version: stamped on every prediction (and the label's ``model``).
        topics: topic names (:class:`schemas.topics.TopicNames`).
        batch_size: events per batch and partition before a send.
        linger_ms: longest time an event waits in the SDK before its partition is sent.
        max_buffered_events: bound on events held (SDK buffer + unacknowledged).
        compression: ``"zstd"``, ``"lz4"``, ``"snappy"``, ``"gzip"`` or ``"none"``.
        registry: Prometheus registry for the SDK metrics (default: the global one).
        message_timeout_ms: how long the Kafka client retries a batch before it is dropped.
        partitions: skip the metadata lookup and use this partition count (both topics).
        idempotence: ``enable.idempotence`` (on by default).
        producer_config: extra librdkafka settings, applied last.
    """

    def __init__(
        self,
        bootstrap: str | KafkaConfig,
        model: str,
        model_version: str,
        topics: TopicNames | None = None,
        batch_size: int = 500,
        linger_ms: int = 200,
        max_buffered_events: int = 100_000,
        compression: str = "zstd",
        registry: CollectorRegistry | None = None,
        *,
        message_timeout_ms: int = 30_000,
        partitions: int | None = None,
        idempotence: bool = True,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        if not model:
            raise ValueError("model must be a non-empty string")
        if batch_size <= 0 or linger_ms < 0 or max_buffered_events <= 0:
            raise ValueError("batch_size and max_buffered_events must be > 0, linger_ms >= 0")
        kafka = KafkaConfig.of(bootstrap)
        self.bootstrap = kafka.bootstrap
        self.model = model
        self.model_version = model_version
        self.topics = topics or TopicNames()
        self.batch_size = batch_size
        self.linger_s = linger_ms / 1000.0
        self.max_buffered_events = max_buffered_events
        self.message_timeout_s = message_timeout_ms / 1000.0
        self._codec = default_codec()
        self._metrics = sdk_metrics(registry)
        self._published_c = {
            k: self._metrics.published.labels(model, k) for k in (PREDICTION, LABEL)
        }
        self._latency_h = self._metrics.send_latency.labels(model)
        self._buffered_g = self._metrics.buffered.labels(model)
        self._lock = threading.Lock()  # guards lanes' caller-side lists and the tallies
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flushing = 0
        self._closed = False
        self._held = 0  # events admitted and not yet acknowledged or dropped
        self._id_pool: list[str] = []
        self._published: TallyCounter[str] = TallyCounter()
        self._dropped: TallyCounter[tuple[str, str]] = TallyCounter()
        self._lanes = {
            PREDICTION: _Lane(PREDICTION, self.topics.predictions),
            LABEL: _Lane(LABEL, self.topics.labels),
        }
        if partitions is not None:
            for lane in self._lanes.values():
                self._set_partitions(lane, partitions)
        queue_max = max(64, 4 * max_buffered_events // batch_size)
        # the client properties (security, bootstrap) under what batching per partition needs
        config: dict[str, Any] = kafka.producer_config(**{
            "enable.idempotence": idempotence,
            "compression.type": compression,
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": queue_max,
            "queue.buffering.max.kbytes": 256 * 1024,
            "message.timeout.ms": message_timeout_ms,
            "socket.connection.setup.timeout.ms": max(1_000, min(10_000, message_timeout_ms)),
            "reconnect.backoff.max.ms": 2_000,
            "logger": logging.getLogger("modelwatch.sdk.librdkafka"),
            "error_cb": self._on_client_error,
        })  # fmt: skip
        config.update(producer_config or {})
        self._producer = build_client(Producer, kafka, config)
        self._sender = threading.Thread(
            target=self._run, name=f"modelwatch-sdk-{model}", daemon=True
        )
        self._sender.start()

    # ---- caller side: never blocks, never raises on broker trouble ---------------------
    @property
    def buffered(self) -> int:
        """Events held: waiting in the SDK, or handed to Kafka and not yet acknowledged."""
        return self._held

    @property
    def dropped(self) -> dict[str, int]:
        """Dropped events by reason (both kinds)."""
        out: TallyCounter[str] = TallyCounter()
        for (_kind, reason), n in self._dropped.items():
            out[reason] += n
        return dict(out)

    @property
    def dropped_by_kind(self) -> dict[tuple[str, str], int]:
        """Dropped events by ``(kind, reason)``."""
        return dict(self._dropped)

    @property
    def published(self) -> dict[str, int]:
        """Events acknowledged by the broker, by kind."""
        return dict(self._published)

    def _drop(self, kind: str, reason: str, n: int = 1, release: bool = False) -> None:
        """Count ``n`` dropped events; ``release`` when they had been admitted (held)."""
        if n <= 0:
            return
        with self._lock:
            self._dropped[(kind, reason)] += n
            if release:
                self._held -= n
        self._metrics.dropped.labels(self.model, kind, reason).inc(n)

    def _admit(self, kind: str, n: int = 1) -> bool:
        if self._closed:
            self._drop(kind, "closed", n)
            return False
        with self._lock:
            if self._held + n <= self.max_buffered_events:
                self._held += n
                return True
        self._drop(kind, "buffer_full", n)
        return False

    def _new_id(self) -> str:
        """A random uuid4 as 32 hex chars, from a pool refilled 4096 at a time (~0.2 µs)."""
        try:
            return self._id_pool.pop()
        except IndexError:
            raw = np.frombuffer(os.urandom(16 * 4096), dtype=np.uint8).reshape(4096, 16).copy()
            raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
            raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
            h = raw.tobytes().hex()
            self._id_pool = [h[i : i + 32] for i in range(0, len(h), 32)]
            return self._id_pool.pop()

    def _enqueue(self, lane: _Lane, row: Any) -> None:
        with self._lock:
            if not lane.rows and not lane.chunks:
                lane.oldest_row_mono = time.monotonic()
            lane.rows.append(row)
            lane.incoming_n += 1
            big = lane.incoming_n >= self.batch_size * max(1, lane.partitions)
        if big:
            self._wake.set()

    def _accept_prediction(self, prediction_id: str | None, status: str) -> tuple[str, bool]:
        """The prediction's id, and whether it may be buffered: a known status and room
        under the bound (both refusals are counted as drops, never raised)."""
        pid = prediction_id if prediction_id is not None else self._new_id()
        if status not in STATUS_CODES:
            self._drop(PREDICTION, "invalid")
            log.warning("dropped prediction %s: unknown status %r", pid, status)
            return pid, False
        return pid, self._admit(PREDICTION)

    def publish_prediction(
        self,
        numeric: Mapping[str, float | None] | None = None,
        categorical: Mapping[str, str | None] | None = None,
        score: float | None = None,
        predicted_class: str | None = None,
        class_probabilities: Mapping[str, float] | None = None,
        latency_ms: float = 0.0,
        status: str = "ok",
        error_type: str | None = None,
        request_bytes: int = 0,
        response_bytes: int = 0,
        segments: Mapping[str, str] | None = None,
        prediction_id: str | None = None,
        event_time_ms: int | None = None,
    ) -> str:
        """Buffer one prediction; return its prediction_id (a uuid4 hex when not given).

        Never blocks and never raises on broker trouble: a full buffer drops the event and
        counts it (``buffer_full``); an unknown ``status`` is dropped as ``invalid``.
        """
        pid, accepted = self._accept_prediction(prediction_id, status)
        if not accepted:
            return pid
        row: PredRow = (
            pid,
            _now_ms() if event_time_ms is None else int(event_time_ms),
            numeric,
            categorical,
            score,
            predicted_class,
            class_probabilities,
            latency_ms,
            status,
            error_type,
            request_bytes,
            response_bytes,
            segments,
        )
        self._enqueue(self._lanes[PREDICTION], row)
        return pid

    def publish_label(
        self,
        prediction_id: str,
        label_value: float | None = None,
        label_class: str | None = None,
        event_time_ms: int | None = None,
    ) -> None:
        """Buffer the ground truth of ``prediction_id``; ``event_time_ms``: when it was known."""
        if label_value is None and label_class is None:
            self._drop(LABEL, "invalid")
            log.warning("dropped label for %s: neither label_value nor label_class", prediction_id)
            return
        if not self._admit(LABEL):
            return
        row: LabelRow = (
            prediction_id,
            _now_ms() if event_time_ms is None else int(event_time_ms),
            label_value,
            label_class,
        )
        self._enqueue(self._lanes[LABEL], row)

    def publish_columns(self, cols: PredictionColumns) -> int:
        """Buffer a whole columnar chunk (e.g. from the simulator or replay); returns rows taken.

        ``cols.model`` / ``cols.model_version`` are overwritten with the publisher's.
        All-or-nothing: a chunk that would overflow the bound is dropped (``buffer_full``).
        """
        return self._enqueue_chunk(self._lanes[PREDICTION], cols)

    def wait_for_room(self, n: int, timeout: float | None = None) -> bool:
        """Block until ``n`` more events fit under ``max_buffered_events`` (bulk producers).

        For the simulator and replay, which prefer back-pressure to drops; a request path
        never calls it. Returns False on timeout or when ``n`` can never fit.
        """
        if n > self.max_buffered_events:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._held + n > self.max_buffered_events:
            if self._closed or (deadline is not None and time.monotonic() >= deadline):
                return False
            self._wake.set()
            time.sleep(0.002)
        return True

    def publish_label_columns(self, cols: LabelColumns) -> int:
        """Buffer a columnar chunk of labels; returns rows taken (0 if dropped)."""
        return self._enqueue_chunk(self._lanes[LABEL], cols)

    def _enqueue_chunk(self, lane: _Lane, cols: PredictionColumns | LabelColumns) -> int:
        n = cols.n
        if n == 0 or not self._admit(lane.kind, n):
            return 0
        with self._lock:
            if not lane.rows and not lane.chunks:
                lane.oldest_row_mono = time.monotonic()
            lane.chunks.append(cols)
            lane.incoming_n += n
        self._wake.set()
        return n

    def publish_single_prediction(
        self,
        numeric: Mapping[str, float | None] | None = None,
        categorical: Mapping[str, str | None] | None = None,
        score: float | None = None,
        predicted_class: str | None = None,
        class_probabilities: Mapping[str, float] | None = None,
        latency_ms: float = 0.0,
        status: str = "ok",
        error_type: str | None = None,
        request_bytes: int = 0,
        response_bytes: int = 0,
        segments: Mapping[str, str] | None = None,
        prediction_id: str | None = None,
        event_time_ms: int | None = None,
    ) -> str:
        """Send one unbatched ``PredictionEvent`` keyed by its prediction_id.

        Same arguments as :meth:`publish_prediction`. Encodes on the caller's thread
        (~10-20 µs) and hands the record to the Kafka client, whose ``murmur2_random``
        partitioner places it where a batch would; never blocks.
        """
        pid, accepted = self._accept_prediction(prediction_id, status)
        if not accepted:
            return pid
        numeric_features, categorical_features = event_features(numeric, categorical)
        record = {
            "prediction_id": pid,
            "model": self.model,
            "model_version": self.model_version,
            "event_time_ms": _now_ms() if event_time_ms is None else int(event_time_ms),
            "numeric_features": numeric_features,
            "categorical_features": categorical_features,
            "score": score,
            "predicted_class": predicted_class,
            "class_probabilities": None
            if class_probabilities is None
            else dict(class_probabilities),
            "latency_ms": float(latency_ms),
            "status": status,
            "error_type": error_type,
            "request_bytes": int(request_bytes),
            "response_bytes": int(response_bytes),
            "segments": dict(segments or {}),
        }
        try:
            payload = self._codec.encode("PredictionEvent", record)
        except Exception as exc:  # bad field types: the caller's bug, but never raise
            self._drop(PREDICTION, "invalid", release=True)
            log.warning("dropped single prediction %s: %s", pid, exc)
            return pid
        self._produce(self.topics.predictions, None, pid, payload, 1, PREDICTION)
        return pid

    # ---- sending ----------------------------------------------------------------------
    def _produce(
        self,
        topic: str,
        partition: int | None,
        key: str,
        payload: bytes,
        n: int,
        kind: str,
        retry_s: float = 0.0,
    ) -> bool:
        """Hand one message to librdkafka; on a full local queue drop it.

        ``retry_s`` > 0 (sender thread only) polls and retries a full queue that long first;
        the caller's thread uses 0, so it never waits.
        """
        t0 = time.perf_counter()

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            self._on_delivery(err, n, t0, kind)

        give_up = time.monotonic() + retry_s
        try:
            while True:
                try:
                    if partition is None:
                        self._producer.produce(topic, payload, key, on_delivery=on_delivery)
                    else:
                        self._producer.produce(
                            topic, payload, key, partition=partition, on_delivery=on_delivery
                        )
                    return True
                except BufferError:
                    if time.monotonic() >= give_up or self._stop.is_set():
                        raise
                    self._producer.poll(0.01)
        except BufferError:
            self._drop(kind, "queue_full", n, release=True)
        except Exception as exc:  # KafkaException (e.g. message too large)
            reason = "too_large" if "MSG_SIZE_TOO_LARGE" in str(exc) else "delivery_error"
            self._drop(kind, reason, n, release=True)
            log.warning("produce to %s failed (%d events dropped): %s", topic, n, exc)
        return False

    def _on_delivery(self, err: KafkaError | None, n: int, t0: float, kind: str) -> None:
        if err is None:
            with self._lock:
                self._held -= n
                self._published[kind] += n
            self._published_c[kind].inc(n)
            self._latency_h.observe(time.perf_counter() - t0)
            return
        code = err.code()
        if code in (KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TIMED_OUT_QUEUE):
            reason = "timeout"
        elif code in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
            reason = "closed"
        elif code == KafkaError.MSG_SIZE_TOO_LARGE:
            reason = "too_large"
        else:
            reason = "delivery_error"
        self._drop(kind, reason, n, release=True)

    def _on_client_error(self, err: KafkaError) -> None:
        log.debug("kafka client error: %s", err)

    def _set_partitions(self, lane: _Lane, partitions: int) -> None:
        lane.partitions = partitions
        lane.routed = [[] for _ in range(partitions)]
        lane.routed_n = [0] * partitions

    def _fetch_partitions(self) -> bool:
        """Learn partition counts from metadata (sender thread); True when both are known."""
        todo = [lane for lane in self._lanes.values() if lane.partitions == 0]
        for lane in todo:
            try:
                md = self._producer.list_topics(lane.topic, timeout=_META_TIMEOUT_S)
            except Exception as exc:
                log.debug("metadata for %s unavailable: %s", lane.topic, exc)
                return False
            tmd = md.topics.get(lane.topic)
            if tmd is None or tmd.error is not None or not tmd.partitions:
                return False
            self._set_partitions(lane, len(tmd.partitions))
        counts = {lane.topic: lane.partitions for lane in self._lanes.values()}
        if todo and len(set(counts.values())) > 1:
            log.warning(
                "predictions and labels topics differ in partition count %s: a label will "
                "not land in its prediction's partition",
                counts,
            )
        return True

    def _expire_unrouted(self) -> None:
        """Without metadata for ``message_timeout_ms``, buffered rows are dropped."""
        now = time.monotonic()
        for lane in self._lanes.values():
            if lane.partitions:
                continue
            with self._lock:
                if lane.incoming_n and now - lane.oldest_row_mono > self.message_timeout_s:
                    n, lane.rows, lane.chunks, lane.incoming_n = lane.incoming_n, [], [], 0
                else:
                    n = 0
            self._drop(lane.kind, "no_metadata", n, release=True)

    def _route(self, lane: _Lane) -> None:
        with self._lock:
            rows, chunks, n = lane.rows, lane.chunks, lane.incoming_n
            lane.rows, lane.chunks = [], []
            if not n:
                return
            lane.incoming_n = 0
        now = time.monotonic()
        parts: list[Any] = list(chunks)
        # slices keep each C-level call (which holds the GIL) short for the caller's sake
        for start in range(0, len(rows), _ROWS_PER_CONVERSION):
            block = rows[start : start + _ROWS_PER_CONVERSION]
            try:
                parts.append(self._rows_to_columns(lane, block))
            except Exception:  # a malformed row: convert one by one, drop the bad ones
                for r in block:
                    try:
                        parts.append(self._rows_to_columns(lane, [r]))
                    except Exception as exc:
                        self._drop(lane.kind, "invalid", release=True)
                        log.warning("dropped malformed %s row %s: %s", lane.kind, r[0], exc)
        for cols in parts:
            if lane.kind == PREDICTION:
                cols.model, cols.model_version = self.model, self.model_version
            else:
                cols.model = self.model
            target = partitions_for(cols.prediction_ids, lane.partitions)
            take = take_predictions if lane.kind == PREDICTION else take_labels
            for p, idx in enumerate(split_by_partition(target, lane.partitions)):
                if len(idx) == 0:
                    continue
                piece = cols if len(idx) == cols.n else take(cols, idx)
                with self._lock:
                    lane.routed[p].append((now, piece))
                    lane.routed_n[p] += piece.n

    def _rows_to_columns(self, lane: _Lane, rows: list[Any]) -> Any:
        if lane.kind == PREDICTION:
            return prediction_rows_to_columns(self.model, self.model_version, rows)
        return label_rows_to_columns(self.model, rows)

    def _send_due(self, lane: _Lane, force: bool) -> None:
        now = time.monotonic()
        concat = concat_predictions if lane.kind == PREDICTION else concat_labels
        take = take_predictions if lane.kind == PREDICTION else take_labels
        for p in range(lane.partitions):
            pieces = lane.routed[p]
            if not pieces:
                continue
            count = lane.routed_n[p]
            if not (force or count >= self.batch_size or now - pieces[0][0] >= self.linger_s):
                continue
            with self._lock:
                lane.routed[p] = []
                lane.routed_n[p] = 0
            cols = concat([c for _, c in pieces])
            for start in range(0, cols.n, self.batch_size):
                idx = np.arange(start, min(start + self.batch_size, cols.n))
                part = cols if len(idx) == cols.n else take(cols, idx)
                self._send_columns(lane, p, part)

    def _send_columns(self, lane: _Lane, partition: int, cols: Any) -> None:
        name = "PredictionBatch" if lane.kind == PREDICTION else "LabelBatch"
        try:
            payload = self._codec.encode(name, cols.to_record())
        except Exception as exc:
            self._drop(lane.kind, "invalid", cols.n, release=True)
            log.warning("could not encode a %s of %d rows: %s", name, cols.n, exc)
            return
        if len(payload) > MAX_PAYLOAD_BYTES and cols.n > 1:
            take = take_predictions if lane.kind == PREDICTION else take_labels
            half = cols.n // 2
            self._send_columns(lane, partition, take(cols, np.arange(half)))
            self._send_columns(lane, partition, take(cols, np.arange(half, cols.n)))
            return
        self._produce(
            lane.topic,
            partition,
            cols.prediction_ids[0],
            payload,
            cols.n,
            lane.kind,
            retry_s=max(0.05, self.linger_s),
        )

    def _run(self) -> None:
        tick = max(0.005, min(0.05, self.linger_s / 4 if self.linger_s else 0.005))
        last_meta_try = 0.0
        while True:
            self._wake.wait(tick)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                if any(lane.partitions == 0 for lane in self._lanes.values()):
                    now = time.monotonic()
                    if now - last_meta_try >= _NO_META_RETRY_S or stopping:
                        last_meta_try = now
                        self._fetch_partitions()
                    self._expire_unrouted()
                force = stopping or self._flushing > 0
                for lane in self._lanes.values():
                    if lane.partitions:
                        self._route(lane)
                        self._send_due(lane, force)
                self._producer.poll(0)
            except Exception:  # the sender must survive anything
                log.exception("modelwatch SDK sender error")
            self._buffered_g.set(self.buffered)
            if stopping:
                return

    # ---- lifecycle ----------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> int:
        """Send everything buffered and wait for delivery reports; return events still held.

        Blocks the calling thread up to ``timeout`` seconds (call it at shutdown, not per
        request). Returns 0 when every event was acknowledged or dropped.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flushing += 1
        try:
            while True:
                self._wake.set()
                remaining = self.buffered
                if remaining == 0 or time.monotonic() >= deadline or not self._sender.is_alive():
                    # the sender sets the gauge once per loop: a delivery report that just
                    # released the last events may not be in it yet
                    self._buffered_g.set(remaining)
                    return remaining
                time.sleep(0.005)
        finally:
            with self._lock:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Flush (up to ``timeout``), stop the sender; anything still held counts as dropped."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._sender.join(timeout=max(1.0, timeout))
        # whatever librdkafka still holds: purge, and let the callbacks count it as "closed"
        try:
            self._producer.purge()
            self._producer.poll(0)
        except Exception:
            pass
        for lane in self._lanes.values():
            with self._lock:
                n = lane.incoming_n + sum(lane.routed_n)
                lane.rows, lane.chunks, lane.incoming_n = [], [], 0
                lane.routed = [[] for _ in range(lane.partitions)]
                lane.routed_n = [0] * lane.partitions
            self._drop(lane.kind, "closed", n, release=True)
        stuck = self._held  # handed to the client, no delivery report after the purge
        self._drop(PREDICTION, "closed", stuck, release=True)
        self._buffered_g.set(0)

    def __enter__(self) -> ModelwatchPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def aflush(self, timeout: float = 10.0) -> int:
        """:meth:`flush` without blocking the event loop."""
        return await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float = 10.0) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close, timeout)

    async def __aenter__(self) -> ModelwatchPublisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


AsyncModelwatchPublisher = ModelwatchPublisher
"""asyncio code uses the same class: ``publish_*`` never block; await ``aflush``/``aclose``."""
