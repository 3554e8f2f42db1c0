"""One Kafka client configuration for every process: client properties plus a profile.

``KafkaConfig`` carries the user's client properties (``bootstrap.servers`` and security)
and the deployment profile, and builds every confluent-kafka client the project opens.
Precedence, lowest first: the profile's defaults, the user's properties, then what the
caller's protocol needs (``group.id``, ``enable.partition.eof``, manual commits).

| profile | for | group timeouts | producer |
| --- | --- | --- | --- |
| ``cluster`` (default) | any real Kafka | librdkafka's (45 s session, 3 s heartbeat) | ``acks=all``, idempotent |
| ``embedded`` | the embedded Tansu broker (demo, tests, ``modelwatch broker``) | 6 s / 1 s: a join waits session/2 there | ``acks=all``, not idempotent |

The profile comes from ``MODELWATCH_PROFILE`` when not given (the embedded broker's
commands set it for their children).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from schemas.kafka.properties import ClientProperties, KafkaConfigError, load_properties

Profile = Literal["cluster", "embedded"]
PROFILES: tuple[Profile, ...] = ("cluster", "embedded")
PROFILE_ENV = "MODELWATCH_PROFILE"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"

# group timeouts of the embedded profile: Tansu makes a joining member wait session/2
EMBEDDED_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


KAFKA_LOG = logging.getLogger("modelwatch.kafka")


class KafkaUnavailable(RuntimeError):
    """The cluster did not answer (wrong address, TLS/SASL refused, broker down)."""


def profile_from_env() -> Profile:
    value = os.environ.get(PROFILE_ENV, "cluster").strip().lower() or "cluster"
    if value not in PROFILES:
        raise KafkaConfigError(f"{PROFILE_ENV}={value!r}: expected one of {', '.join(PROFILES)}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class KafkaConfig:
    """Client properties (``bootstrap.servers`` included) and the profile they run in."""

    properties: ClientProperties = field(
        default_factory=lambda: ClientProperties({"bootstrap.servers": DEFAULT_BOOTSTRAP})
    )
    profile: Profile = "cluster"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise KafkaConfigError(f"profile {self.profile!r}: expected one of {PROFILES}")
        if not self.properties.get("bootstrap.servers", "").strip():
            raise KafkaConfigError("bootstrap.servers is empty")

    # ---- construction -----------------------------------------------------------------
    @classmethod
    def load(
        cls, bootstrap: str | None = None, properties_file: str | None = None,
        profile: Profile | None = None,
    ) -> KafkaConfig:
        """From a properties file (its ``bootstrap.servers`` wins) and/or a bootstrap list."""
        props = load_properties(properties_file) if properties_file else ClientProperties()
        servers = props.get("bootstrap.servers") or bootstrap or DEFAULT_BOOTSTRAP
        return cls(props.with_updates({"bootstrap.servers": servers}),
                   profile or profile_from_env())

    @classmethod
    def of(cls, conn: str | KafkaConfig) -> KafkaConfig:
        """``conn`` as a config; a bare string is a plaintext bootstrap list."""
        if isinstance(conn, KafkaConfig):
            return conn
        return cls(ClientProperties({"bootstrap.servers": conn}), profile_from_env())

    @property
    def bootstrap(self) -> str:
        return self.properties["bootstrap.servers"]

    @property
    def embedded(self) -> bool:
        return self.profile == "embedded"

    def __str__(self) -> str:  # what error messages name: never a secret
        src = self.properties.source
        return f"{self.bootstrap}" + (f" (client properties {src})" if src else "")

    # ---- librdkafka configuration dicts ------------------------------------------------
    def common(self) -> dict[str, Any]:
        # librdkafka's own log lines go to Python logging ("modelwatch.kafka"): services
        # show them with their logging setup; one-shot commands report one line instead
        return {"log_level": 4, "logger": KAFKA_LOG, **self.properties}

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"acks": "all", "enable.idempotence": not self.embedded,
                                "linger.ms": 5}
        return {**base, **self.common(), **overrides}

    def consumer_config(self, group_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"auto.offset.reset": "earliest", "enable.auto.commit": False,
                                "enable.partition.eof": False}
        if self.embedded:
            base.update(EMBEDDED_GROUP)
        conf = {**base, **self.common(), **overrides}
        conf["group.id"] = group_id or f"modelwatch-reader-{uuid.uuid4().hex[:8]}"
        return conf

    def admin_config(self, **overrides: Any) -> dict[str, Any]:
        return {**self.common(), **overrides}

    # ---- clients ----------------------------------------------------------------------
    def producer(self, **overrides: Any) -> Producer:
        return build_client(Producer, self, self.producer_config(**overrides))

    def consumer(self, group_id: str | None = None, **overrides: Any) -> Consumer:
        return build_client(Consumer, self, self.consumer_config(group_id, **overrides))

    def admin(self, **overrides: Any) -> AdminClient:
        return build_client(AdminClient, self, self.admin_config(**overrides))


def build_client(kind: type, config: KafkaConfig, conf: dict[str, Any]) -> Any:
    """``kind(conf)``; a property librdkafka rejects becomes :class:`KafkaConfigError`."""
    try:
        return kind(conf)
    except KafkaException as exc:  # unknown or invalid property: name the file, not values
        raise KafkaConfigError(f"Kafka client configuration of {config}: {exc.args[0]}") from None
    except (ValueError, TypeError) as exc:
        raise KafkaConfigError(f"Kafka client configuration of {config}: {exc}") from None


def check_reachable(config: KafkaConfig, timeout_s: float = 10.0) -> None:
    """One metadata round trip, or :class:`KafkaUnavailable` with one clear line."""
    admin = config.admin()
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {config} within {timeout_s:g}s: {describe(exc)}"
        ) from None


def describe(exc: object) -> str:
    """A Kafka exception or KafkaError as one line (the error's text, not its repr)."""
    args = getattr(exc, "args", None)
    arg = args[0] if args else exc
    text = arg.str() if hasattr(arg, "str") else str(arg)
    return " ".join(str(text).split())
