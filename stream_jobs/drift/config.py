"""``DriftConfig``: every knob of the drift engine, with defaults that follow Evidently.

>>> c = DriftConfig(feature_tests={"churn/age": {"test": "psi", "threshold": 0.2}})
>>> c.window_ms, c.allowed_lateness_ms, c.min_sample, c.override("churn", "age").test
(60000, 10000, 100, 'psi')
>>> c.override("other", "age") is None
True
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

TestName = Literal["ks", "chisquare", "psi", "wasserstein", "jensenshannon"]


class FeatureTest(BaseModel):
    """Per-feature override: which test, and its threshold (α for p-value tests)."""

    test: TestName
    threshold: float | None = None


class DriftConfig(BaseModel):
    # windows
    window_ms: int = Field(60_000, gt=0)
    hop_ms: int | None = Field(None, description="hopping windows when set; must divide window_ms")
    allowed_lateness_ms: int = Field(10_000, ge=0)
    idle_partition_s: float = Field(
        30.0,
        gt=0,
        description="a partition without any record for this long (clock time) "
        "no longer holds a model's event clock back",
    )
    # drift tests
    min_sample: int = Field(100, ge=1, description="no verdict below this many values")
    small_sample_max: int = Field(
        1_000, description="up to this many objects (min of reference and window): p-value tests"
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="false-discovery rate of a window's p-value tests (features, prediction "
        "and distance confirmations adjusted together by Benjamini-Hochberg)",
    )
    wasserstein_threshold: float = 0.1
    jensenshannon_threshold: float = 0.1
    psi_threshold: float = 0.1
    low_cardinality: int = Field(
        5, description="numeric with <= this many values: categorical tests"
    )
    benjamini_hochberg: bool = True
    confirm_distances: bool = Field(
        True,
        description="a distance (Wasserstein, JS, PSI) drifts only if its KS / chi-square "
        "p-value, adjusted with the window's family, is also <= alpha",
    )
    drift_share_threshold: float = 0.5
    feature_tests: dict[str, FeatureTest] = Field(
        default_factory=dict, description='keyed "model/feature" or "feature"'
    )
    # sketches
    kll_k: int = Field(
        400, ge=8, description="KLL k; 400 keeps the KS false-verdict rate at ~alpha up to n=1000"
    )
    category_cap: int = Field(100, ge=1)
    # data quality (absolute thresholds on ratios of the window's events)
    missing_rate_rise: float = Field(0.1, description="window missing ratio - reference ratio")
    out_of_range_threshold: float = 0.01
    unseen_threshold: float = 0.01
    type_violation_threshold: float = 0.0
    # online detectors
    detectors: bool = True
    adwin: bool = True
    page_hinkley: bool = True
    kswin: bool = True
    detector_chunk: int = Field(
        64, ge=1, description="standardised values averaged per detector update (x sqrt(chunk))"
    )
    adwin_delta: float = 0.002
    adwin_clock: int = Field(
        1, ge=1, description="ADWIN checks every N chunk updates (river's 32 is per value)"
    )
    ph_delta: float = 0.5
    ph_threshold: float = 15.0
    kswin_sample_every: int = Field(
        1_000, ge=1, description="KSWIN sees one raw value in this many"
    )
    kswin_alpha: float = 0.0001
    kswin_columns: list[str] | None = Field(
        default_factory=lambda: ["__prediction__"],
        description="columns with a KSWIN (None: every numeric feature and the prediction)",
    )
    quorum: int | Literal["majority"] = Field(
        "majority",
        description="partitions that must fire within vote_window_ms (majority: of those "
        "with recent data); bench: majority cuts per-partition false alarms 5-40x for "
        "~1-2 s more delay at 1k events/s",
    )
    vote_window_ms: int = 60_000
    # export
    max_features_exported: int = 50

    @model_validator(mode="after")
    def _check_hop(self) -> DriftConfig:
        if self.hop_ms is not None and (self.hop_ms <= 0 or self.window_ms % self.hop_ms):
            raise ValueError("hop_ms must be positive and divide window_ms")
        return self

    def override(self, model: str, feature: str) -> FeatureTest | None:
        return self.feature_tests.get(f"{model}/{feature}") or self.feature_tests.get(feature)
