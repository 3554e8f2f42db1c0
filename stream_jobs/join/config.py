"""Settings of the label join, performance windows and concept-drift detectors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

DAY_MS = 86_400_000


class LabelConfig(BaseModel):
    # ---- join ----------------------------------------------------------------------
    ttl_ms: int = Field(
        7 * DAY_MS,
        gt=0,
        description="how long a prediction waits for its label, and a label for its "
        "prediction, in event time: a prediction expires once its partition's label stream "
        "has passed its time + ttl, an early label once the prediction stream has (so a "
        "replay of old history joins the same labels whatever the wall clock); a stream "
        "that stops expires what waits on it after ttl of wall time",
    )
    expiry_bucket_ms: int = Field(
        60_000,
        gt=0,
        description="expiry index granularity: a record expires at most this much after its TTL",
    )
    # ---- performance windows ----------------------------------------------------------
    window_ms: int = Field(60_000, gt=0, description="tumbling window on prediction time")
    label_horizon_ms: int = Field(
        300_000,
        ge=0,
        description="a partition's window closes once its label clock has passed window end + "
        "horizon and its prediction clock window end + the drift allowed lateness",
    )
    task: Literal["auto", "classification", "regression"] = "auto"
    max_classes: int = Field(
        1_000,
        gt=1,
        le=32_000,
        description="classes per model version; later ones count as __other__ (a label and "
        "a prediction both in __other__ count as agreeing)",
    )
    tasks: dict[str, Literal["classification", "regression"]] = Field(default_factory=dict)
    positive_class: str = "1"
    negative_class: str = "0"
    decision_threshold: float = 0.5
    auc_bins: int = Field(200, gt=1)
    ece_bins: int = Field(15, gt=0)
    segment_cardinality: int = Field(
        20, gt=0, description="values per segment tag; more go to __other__"
    )
    min_labels_for_performance: int = Field(
        30, ge=1, description="collapse checks need at least this many labels in the window"
    )
    performance_floors: dict[str, float] = Field(
        default_factory=dict, description="metric -> lowest healthy value, e.g. {'accuracy': 0.7}"
    )
    performance_tolerance: dict[str, float] = Field(
        default_factory=lambda: {"accuracy": 0.0},
        description="metrics compared with the reference -> the absolute drop below which "
        "no performance_drop fires (a floor; 0: any drop the data proves). Accuracy and "
        "error_rate drops must also exceed performance_z standard errors of the window's "
        "label count (binomial, at the reference's value)",
    )
    performance_z: float = Field(
        3.0, gt=0, description="one-sided standard errors a proportion's drop must exceed"
    )
    min_labels_for_comparison: int = Field(
        200, ge=1, description="labels a window needs before it is compared with the reference"
    )
    # ---- ranking: which segment or feature range explains a drop -----------------------
    ranked_features: int = Field(
        32,
        ge=0,
        description="features binned as segments for the ranking (first N by name, numeric "
        "then categorical; 2 bytes each per pending prediction; 0: segment tags only)",
    )
    feature_bins: int = Field(10, ge=2, description="reference-quantile bins per feature")
    ranking_top: int = Field(3, ge=1, description="segments named in a detection")
    baseline_decay: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="the ranking baseline (healthy closed windows) keeps this share of its "
        "weight per new healthy window",
    )
    performance_ceilings: dict[str, float] = Field(
        default_factory=dict, description="metric -> highest healthy value, e.g. {'mae': 3.0}"
    )
    # ---- concept drift ----------------------------------------------------------------
    detector: Literal["ddm", "eddm", "hddm_a", "hddm_w", "fhddm"] = "fhddm"
    detector_params: dict[str, Any] = Field(default_factory=dict)
    regression_detector: Literal["adwin"] = "adwin"
    regression_detector_params: dict[str, Any] = Field(default_factory=dict)
    recent_errors: int = Field(100, gt=0, description="samples behind a detection's 'after' error")
    min_increase: float = Field(0.0, ge=0, description="a fire must raise the error by more")
    concept_scope: Literal["pooled", "partition", "model"] = Field(
        "pooled",
        description="pooled: one Bernoulli CUSUM per model on the partitions' errors "
        "counted in event-time buckets (a classifier's error stream; deterministic, as "
        "quick as one detector on the whole stream); partition: one monitor per "
        "partition, votes combined by quorum; model: one monitor on the merged error "
        "stream in arrival order. Regression models use partition monitors under pooled",
    )
    concept_bucket_ms: int = Field(1_000, gt=0, description="pooled: event-time bucket")
    concept_step_ms: int = Field(
        10_000,
        gt=0,
        description="pooled: a partition sends the buckets it has settled to the merge stage "
        "each time it settles this much more event time",
    )
    concept_warmup: int = Field(1_000, gt=0, description="pooled: baseline samples first")
    concept_threshold: float = Field(
        12.0, gt=0, description="pooled: CUSUM log-likelihood ratio that raises an alarm"
    )
    concept_ratio: float = Field(
        2.0, gt=1, description="pooled: error-rate multiple the CUSUM is tuned to detect"
    )
    quorum_fraction: float = Field(0.5, gt=0, le=1)
    quorum_min_votes: int = Field(1, ge=1)
    vote_window_ms: int = Field(600_000, gt=0)

    def task_for(self, model: str) -> str:
        return self.tasks.get(model, self.task)
