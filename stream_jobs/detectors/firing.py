"""One online-detector firing in one partition, before votes are combined."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Firing:
    model: str
    model_version: str
    subject: str  # feature name, or "prediction"
    detector: str  # "adwin" | "page_hinkley" | "kswin"
    partition: int
    offset: int
    event_time_ms: int
    statistic: float = 0.0  # the chunk z-score (or KSWIN p-value) at the firing
