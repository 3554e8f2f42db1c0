"""The Faust worker: a thin adapter from Kafka records to :mod:`stream_jobs.handler`.

Faust's per-message path costs ~160 µs, so records are columnar batches (DESIGN.md) and
everything per-event happens in numpy inside the handler. Processing is at-least-once
(Faust commits after the agent has taken a record); state that must not double count keeps
the last applied offset per partition.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import NotReady, ProducerSendError
from faust.types import TP
from prometheus_client import (
    CollectorRegistry,
    disable_created_metrics,
)

from schemas.codec import default_codec
from schemas.kafka.faust_settings import faust_settings
from stream_jobs.config import WorkerConfig
from stream_jobs.golden import GoldenSignals
from stream_jobs.handler import (
    BatchObserver,
    LabelHandler,
    LabelObserver,
    Outgoing,
    PredictionHandler,
)
from stream_jobs.health import ProgressTracker, start_metrics_and_health
from stream_jobs.outputs import Poller
from stream_jobs.pipeline_metrics import PipelineMetrics

log = logging.getLogger("modelwatch.worker")


@dataclass
class Worker:
    app: faust.App
    config: WorkerConfig
    registry: CollectorRegistry
    handler: PredictionHandler
    health: ProgressTracker = field(default_factory=ProgressTracker)


def faust_app(config: WorkerConfig) -> faust.App:
    return faust.App(
        config.group_id,
        # broker list, credentials, group timeouts (profile), acks=all: the client properties
        **faust_settings(config.kafka),
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,  # topics are created explicitly with their partition counts
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_compression_type="lz4",
        processing_guarantee="at_least_once",
        datadir=config.data_dir,
    )


def create_worker(
    config: WorkerConfig,
    registry: CollectorRegistry,
    observers: list[BatchObserver] | None = None,
    pollers: list[Poller] | None = None,
    label_observer: LabelObserver | None = None,
) -> Worker:
    """The Faust app around a handler; ``pollers`` run every ``window_poll_s`` and their
    outgoing records (window stats, detections) are sent."""
    app = faust_app(config)
    pipeline = PipelineMetrics(registry)
    handler = PredictionHandler(
        default_codec(), config.topics, GoldenSignals(registry), pipeline, observers or [],
        rules=config.input_rules,
    )
    worker = Worker(app, config, registry, handler, ProgressTracker(config.health_stall_s))
    predictions = app.topic(
        config.topics.predictions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    pending: deque[Outgoing] = deque()

    async def send_all(outgoing: list[Outgoing]) -> None:
        """Send and wait for the broker's acknowledgement, so that the source offset is
        committed only after its dead letters / outputs are stored (at-least-once)."""
        pending.extend(outgoing)
        while pending:
            rec = pending[0]
            fut = await app.send(
                rec.topic,
                key=rec.key,
                value=rec.value,
                key_serializer="raw",
                value_serializer="raw",
            )
            await fut
            pending.popleft()

    def record_lag(topic: str, partition: int, offset: int) -> None:
        highwater = app.consumer.highwater(TP(topic, partition))
        if highwater is not None:
            pipeline.lag.labels(topic, str(partition)).set(max(0, highwater - offset - 1))
        worker.health.progress(topic, partition, offset, (highwater or 0) - offset - 1)

    @app.agent(predictions, name="predictions")
    async def on_predictions(stream: faust.StreamT) -> AsyncIterator[None]:
        async for event in stream.events():
            msg = event.message
            outgoing = handler.handle(msg.key, msg.value, msg.partition, msg.offset, time.time())
            if outgoing:
                await send_all(outgoing)
            record_lag(msg.topic, msg.partition, msg.offset)
            yield None

    if label_observer is not None:
        label_handler = LabelHandler(
            default_codec(), config.topics, pipeline, label_observer, rules=config.input_rules
        )
        labels_topic = app.topic(
            config.topics.labels,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

        wait_turn = getattr(label_observer, "wait_turn", None)  # in step with predictions

        @app.agent(labels_topic, name="labels")
        async def on_labels(stream: faust.StreamT) -> AsyncIterator[None]:
            async for event in stream.events():
                msg = event.message
                if wait_turn is not None:
                    await wait_turn(msg.partition)
                outgoing = label_handler.handle(
                    msg.key, msg.value, msg.partition, msg.offset, time.time()
                )
                if outgoing:
                    await send_all(outgoing)
                record_lag(msg.topic, msg.partition, msg.offset)
                yield None

    @app.timer(config.window_poll_s)
    async def poll_outputs() -> None:
        worker.health.beat("output timer")  # a stalled event loop stops beating
        for tp in app.consumer.assignment():  # new input for an agent that stopped moving
            highwater = app.consumer.highwater(tp)
            if highwater is not None:
                worker.health.highwater(tp.topic, tp.partition, highwater)
        if not app.producer.started or app.should_stop:
            return
        now = time.time()
        outgoing = [rec for poller in pollers or [] for rec in poller.poll(now)]
        try:
            await send_all(outgoing)
        except (NotReady, ProducerSendError, KafkaError) as exc:
            log.warning("outputs kept for the next tick (%d pending): %r", len(pending), exc)
            return
        for poller in pollers or []:  # all sent and acknowledged: outboxes may forget them
            acknowledge = getattr(poller, "acknowledge", None)
            if acknowledge is not None:
                acknowledge()

    @app.on_partitions_assigned.connect
    async def on_assigned(app_: faust.App, assigned: set[TP], **_: object) -> None:
        pipeline.rebalances.inc()
        log.info("assigned %s", sorted(assigned))

    return worker


def run_worker(worker: Worker) -> None:
    """Run until SIGINT/SIGTERM (Faust installs the signal handlers)."""
    config = worker.config
    disable_created_metrics()
    start_metrics_and_health(
        config.metrics_port, config.metrics_host, worker.registry, worker.health
    )
    log.warning("metrics on http://%s:%d/metrics (health: /healthz)", config.metrics_host,
                config.metrics_port)
    faust_worker = faust.Worker(worker.app, loglevel=config.log_level, quiet=True)
    faust_worker.execute_from_commandline()
