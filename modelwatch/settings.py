"""One settings object: environment variables (``MODELWATCH_*``) over an optional YAML file.

The YAML file is named by ``MODELWATCH_CONFIG`` (or ``--config``); environment variables
win over it; nested sections use ``__`` in variable names (``MODELWATCH_DRIFT__WINDOW_S``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from schemas.kafka import KafkaConfig
from schemas.label_caps import LabelCapsConfig
from schemas.topics import TopicNames


class YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: str | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path:
            return {}
        p = Path(self.path)
        if not p.is_file():
            raise FileNotFoundError(f"MODELWATCH_CONFIG points at {p}, which is not a file")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{p}: top level must be a mapping")
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MODELWATCH_", env_nested_delimiter="__", extra="ignore"
    )

    bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_config: str | None = Field(
        None,
        description="client properties file (bootstrap.servers, security.protocol, SASL, SSL) "
        "for every Kafka client; its bootstrap.servers wins over `bootstrap`",
    )
    profile: Literal["cluster", "embedded"] = Field(
        "cluster",
        description="cluster: production client defaults; embedded: the embedded broker's "
        "fast group timeouts and no idempotent producer",
    )
    replication_factor: int = Field(-1, description="of created topics; -1 = broker default")
    topic_config: dict[str, str] = Field(
        default_factory=dict, description="topic configs applied to every created topic"
    )
    topic_prefix: str = ""
    partitions: int = Field(4, description="partitions of predictions and labels topics")
    metrics_port: int = 9108
    metrics_host: str = Field(
        "127.0.0.1", description="address /metrics binds to (0.0.0.0 to expose it, e.g. in compose)"
    )
    group_id: str = "modelwatch-worker"
    log_level: str = "warn"
    drift: dict[str, Any] = Field(default_factory=dict, description="stream_jobs DriftConfig")
    golden_checks: dict[str, Any] = Field(
        default_factory=dict, description="stream_jobs GoldenChecksConfig (error rate, SLOs)"
    )
    max_features_per_model: int = Field(50, description="cap on features exported as labels")
    label_caps: LabelCapsConfig = Field(
        default_factory=LabelCapsConfig, description="caps on producer-chosen label values"
    )
    labels: dict[str, Any] = Field(default_factory=dict, description="stream_jobs LabelConfig")
    alert_policy_file: str | None = None
    routes_file: str | None = None
    data_dir: str = ".modelwatch"
    health_stall_s: float = Field(
        60.0, description="/healthz fails when a stage with input has not moved this long"
    )
    input_rules: dict[str, Any] = Field(
        default_factory=dict, description="stream_jobs InputRules (event-time skew bounds)"
    )

    @property
    def topics(self) -> TopicNames:
        return TopicNames.with_prefix(self.topic_prefix)

    @property
    def kafka(self) -> KafkaConfig:
        """The one Kafka client configuration every client of this process is built from."""
        return KafkaConfig.load(self.bootstrap, self.kafka_config, self.profile)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlSource(settings_cls, os.environ.get("MODELWATCH_CONFIG"))
        return (init_settings, env_settings, yaml_source)


def load_settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
