"""The typed detection that flows from the worker to the alerting layer.

>>> d = Detection(model="churn", kind=DetectionKind.FEATURE_DRIFT, subject="age",
...               detector="wasserstein", value=0.31, threshold=0.1, event_time_ms=60_000)
>>> Detection.from_record(d.to_record()) == d
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class DetectionKind(StrEnum):
    # critical-by-default: the model is not serving
    NO_TRAFFIC = "no_traffic"
    ERROR_RATE = "error_rate"
    PERFORMANCE_COLLAPSE = "performance_collapse"
    # major-by-default
    PREDICTION_DRIFT = "prediction_drift"
    LABEL_DRIFT = "label_drift"
    DATASET_DRIFT = "dataset_drift"
    CONCEPT_DRIFT = "concept_drift"
    PERFORMANCE_DROP = "performance_drop"  # worse than the reference performance
    LATENCY_SLO = "latency_slo"
    FALLBACK_RATE = "fallback_rate"
    # minor-by-default
    FEATURE_DRIFT = "feature_drift"
    MISSING_RATE = "missing_rate"
    OUT_OF_RANGE = "out_of_range"
    UNSEEN_CATEGORY = "unseen_category"
    TYPE_VIOLATION = "type_violation"
    SCHEMA_INVALID = "schema_invalid"


@dataclass(frozen=True)
class Detection:
    model: str
    kind: str
    subject: str
    detector: str
    value: float
    threshold: float
    event_time_ms: int
    model_version: str = ""
    active: bool = True
    window_start_ms: int | None = None
    window_end_ms: int | None = None
    partition: int | None = None
    offset: int | None = None
    details: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        # what dataclasses.asdict gives (every field is a scalar but ``details``, a flat
        # dict of strings), without its recursive deep copy: a fifth of the merge stage's
        # time per window went to asdict (measured, 30 detections per window)
        rec = {f: getattr(self, f) for f in _FIELDS}
        rec["details"] = dict(self.details)
        rec["kind"] = str(self.kind)
        rec["value"] = float(self.value)
        rec["threshold"] = float(self.threshold)
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Detection:
        return cls(**{k: rec[k] for k in cls.__dataclass_fields__ if k in rec})


_FIELDS = tuple(f.name for f in fields(Detection))
