"""Composition root: build the parts from one :class:`~modelwatch.settings.Settings`."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector

from modelwatch.settings import Settings
from schemas.codec import default_codec
from schemas.label_caps import caps_for
from stream_jobs.app import Worker, create_worker
from stream_jobs.concept.pool import ConceptPool
from stream_jobs.config import WorkerConfig
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.engine import DriftEngine
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.drift_stage import DriftStage
from stream_jobs.golden_checks import GoldenChecks, GoldenChecksConfig
from stream_jobs.input_rules import InputRules
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import RocksStore
from stream_jobs.label_pacing import LabelPacer
from stream_jobs.label_restore import LabelRestore
from stream_jobs.label_stage import LabelStage, LockedLabelMetrics
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink, GoldenChecksStage
from stream_jobs.performance.merger import PerformanceMerger
from stream_jobs.reference_feed import ReferenceFeed, ReferenceStage
from stream_jobs.state.metrics import StateMetrics
from stream_jobs.state_identity import ensure_worker_state


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        kafka=settings.kafka,
        topics=settings.topics,
        group_id=settings.group_id,
        metrics_host=settings.metrics_host,
        metrics_port=settings.metrics_port,
        log_level=settings.log_level,
        drift=settings.drift,
        data_dir=settings.data_dir,
        input_rules=InputRules(**settings.input_rules),
        health_stall_s=settings.health_stall_s,
    )


def build_worker(settings: Settings) -> Worker:
    config = worker_config(settings)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    caps_for(registry, settings.label_caps)  # before any collector
    sink = DetectionSink(default_codec(), config.topics, registry)
    golden_checks = GoldenChecksStage(
        GoldenChecks(GoldenChecksConfig(**settings.golden_checks)), sink
    )
    drift_config = DriftConfig(**settings.drift)
    drift_metrics = DriftMetrics(registry, max_features=settings.max_features_per_model)
    state_metrics = StateMetrics(registry)
    drift = DriftStage(
        DriftEngine(drift_config), drift_metrics, state_metrics, default_codec(), config.topics
    )
    labels = LabelConfig(**settings.labels)
    performance = PerformanceMerger(labels, drift_config)
    merge = MergeStage(
        drift_config, drift_metrics, state_metrics, sink, default_codec(), config.topics,
        mergers=[performance],
        concept=ConceptPool(labels, drift_config.idle_partition_s),
        snapshot_off_loop=True,  # megabytes of partials are encoded on a thread of their own
    )
    ensure_worker_state(  # before any store opens: state of another topic life starts clean
        config.kafka, config.topics.predictions, config.topics.labels, settings.data_dir,
        settings.group_id,
    )
    label_engine = LabelEngine(
        LabelConfig(**settings.labels),
        RocksStore(Path(settings.data_dir) / f"join-{settings.group_id}"),
        drift=DriftConfig(**settings.drift),
    )
    label_metrics = LockedLabelMetrics(registry, label_engine, merged=performance)
    pacer = LabelPacer(config.topics, registry)
    labels = LabelStage(
        label_engine, label_metrics, sink, default_codec(), config.topics, pacer=pacer,
        state_metrics=state_metrics,
    )
    label_metrics.lock = labels.lock
    # partitions another worker processed: their join state is rebuilt from the topics
    restore = LabelRestore(
        labels, config.kafka, config.topics, default_codec(), registry,
        group_id=settings.group_id, max_ahead_ms=config.input_rules.max_ahead_ms,
    )  # fmt: skip
    feed = ReferenceFeed(config.kafka, config.topics.references, default_codec())
    feed.start()
    references = ReferenceStage(
        feed, [drift.set_reference, merge.set_reference, labels.set_reference], default_codec(),
        config.topics, registry,
    )
    references.load_initial()  # the reference in force is settled before the first window
    worker = create_worker(
        config,
        registry,
        stages=[references, golden_checks, drift, labels, restore],
        merge=merge,
        labels=True,
        state_metrics=state_metrics,
    )
    pacer.install(worker.app, worker.loop)  # label partitions wait for their predictions
    restore.install(worker.app, pacer)
    worker.health.check("reference feed", feed.alive)
    return worker
