"""The worker's configuration, built by the composition root from the settings object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.kafka import KafkaConfig
from schemas.topics import TopicNames


class WorkerConfig(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    topics: TopicNames = Field(default_factory=TopicNames)
    group_id: str = "modelwatch-worker"
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9108
    log_level: str = "warn"
    window_poll_s: float = 1.0
    drift: dict[str, Any] = Field(default_factory=dict)
    data_dir: str = ".modelwatch"
