"""The Kafka transport contract: one client configuration, one way to build clients, one
reader (to the end of a topic, or following it), topic administration.

It lives under ``schemas/`` because ``producers/``, ``stream_jobs/`` and ``alerting/`` all
open Kafka clients and may depend on ``schemas/`` only; ``modelwatch/`` (the composition
root) loads the settings and hands a :class:`KafkaConfig` to each part. Faust is imported
only by :func:`faust_settings` (the worker extra), so the SDK installs without it.
"""

from schemas.kafka.admin import BROKER_DEFAULT, TopicError, create_topics, wait_until_answers
from schemas.kafka.config import (
    DEFAULT_BOOTSTRAP,
    PROFILE_ENV,
    KafkaConfig,
    KafkaUnavailable,
    Profile,
    build_client,
    check_reachable,
    describe,
)
from schemas.kafka.properties import ClientProperties, KafkaConfigError, load_properties
from schemas.kafka.read import (
    Record,
    TopicMissing,
    follow,
    last_per_key,
    partitions_of,
    read_to_end,
)

__all__ = [
    "BROKER_DEFAULT", "DEFAULT_BOOTSTRAP", "PROFILE_ENV", "ClientProperties", "KafkaConfig",
    "KafkaConfigError", "KafkaUnavailable", "Profile", "Record", "TopicError",
    "TopicMissing", "build_client", "check_reachable", "create_topics", "describe", "follow",
    "last_per_key", "load_properties", "partitions_of", "read_to_end", "wait_until_answers",
]  # fmt: skip
