"""Mergeable per-partition window partials (pure: numpy + datasketches, no Kafka)."""

from stream_jobs.windows.assign import WindowAssigner
from stream_jobs.windows.categorical import OTHER, CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial
from stream_jobs.windows.spec import PREDICTION, PartialSpec
from stream_jobs.windows.window import CATEGORICAL, NUMERIC, WindowPartial

__all__ = [
    "CATEGORICAL", "NUMERIC", "OTHER", "PREDICTION",
    "CategoricalPartial", "NumericPartial", "PartialSpec", "WindowAssigner", "WindowPartial",
]  # fmt: skip
