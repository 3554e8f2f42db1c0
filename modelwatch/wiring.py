"""Composition root: build the parts from one :class:`~modelwatch.settings.Settings`."""

from __future__ import annotations

from modelwatch.settings import Settings
from stream_jobs.app import Worker, create_worker
from stream_jobs.config import WorkerConfig


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
    return create_worker(worker_config(settings))
