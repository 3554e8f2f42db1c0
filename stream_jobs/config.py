"""The worker's configuration, built by the composition root from the settings object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.kafka import KafkaConfig
from schemas.topics import TopicNames
from stream_jobs.input_rules import InputRules


class WorkerConfig(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    topics: TopicNames = Field(default_factory=TopicNames)
    group_id: str = "modelwatch-worker"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    log_level: str = "warn"
    window_poll_s: float = 1.0
    drift: dict[str, Any] = Field(default_factory=dict)
    data_dir: str = ".modelwatch"
    input_rules: InputRules = Field(default_factory=InputRules)
    health_stall_s: float = Field(
        60.0, gt=0, description="/healthz fails when a stage with input has not moved this long"
    )
