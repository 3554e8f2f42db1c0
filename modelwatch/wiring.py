"""Composition root: build the parts from one :class:`~modelwatch.settings.Settings`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, ProcessCollector

from modelwatch.settings import Settings
from schemas.codec import default_codec
from stream_jobs.app import Worker, create_worker
from stream_jobs.config import WorkerConfig
from stream_jobs.golden_checks import GoldenChecks, GoldenChecksConfig
from stream_jobs.outputs import DetectionSink, GoldenChecksStage


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        bootstrap=settings.bootstrap,
        topics=settings.topics,
        group_id=settings.group_id,
        metrics_host=settings.metrics_host,
        metrics_port=settings.metrics_port,
        log_level=settings.log_level,
        session_timeout_s=settings.session_timeout_s,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        drift=settings.drift,
        data_dir=settings.data_dir,
    )


def build_worker(settings: Settings) -> Worker:
    config = worker_config(settings)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    sink = DetectionSink(default_codec(), config.topics, registry)
    golden_checks = GoldenChecksStage(
        GoldenChecks(GoldenChecksConfig(**settings.golden_checks)), sink
    )
    return create_worker(config, registry, observers=[golden_checks], pollers=[golden_checks])
