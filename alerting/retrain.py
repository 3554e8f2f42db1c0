"""The ``retrain`` rule action: turn a firing alert into a RetrainRequest, rate-limited.

The evidence is what a person would otherwise copy from a drift report by hand: the
dataset-level drift share, the drifted features and the performance delta. It is read
from the detection (``value`` of a ``dataset_drift`` detection is the drift share;
``details`` may carry ``drift_share``, ``drifted_features`` (comma-separated) and
``performance_delta``) plus the subjects of the model's currently firing
``feature_drift`` alerts.

>>> trigger = RetrainTrigger(min_interval_ms=3_600_000, clock=lambda: 1_000)
>>> alert = {"alert_id": "a-1", "fingerprint": "a", "model": "churn", "model_version": "3",
...          "kind": "dataset_drift", "value": 0.6, "threshold": 0.5}
>>> req = trigger.consider(alert, details={}, drifted_features=["age"])
>>> req["drift_share"], req["drifted_features"]
(0.6, ['age'])
>>> trigger.consider(alert, details={}) is None   # rate-limited per model
True
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_DRIFT_SHARE_KINDS = {"dataset_drift"}
_PERFORMANCE_KINDS = {"performance_collapse", "concept_drift"}


def _float(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


class RetrainTrigger:
    """Builds RetrainRequest records; at most one per model per ``min_interval_ms``."""

    def __init__(self, min_interval_ms: int, clock: Callable[[], int]) -> None:
        self.min_interval_ms = min_interval_ms
        self.clock = clock
        self._last_ms: dict[str, int] = {}
        self.suppressed = 0

    def consider(self, alert: Mapping[str, Any], details: Mapping[str, str],
                 drifted_features: Iterable[str] = ()) -> dict[str, Any] | None:
        """A RetrainRequest record for a firing alert, or ``None`` while rate-limited."""
        now = self.clock()
        model = alert["model"]
        last = self._last_ms.get(model)
        if last is not None and now - last < self.min_interval_ms:
            self.suppressed += 1
            return None
        self._last_ms[model] = now
        kind = alert["kind"]
        drift_share = _float(details.get("drift_share"))
        if drift_share is None and kind in _DRIFT_SHARE_KINDS:
            drift_share = float(alert["value"])
        performance_delta = _float(details.get("performance_delta"))
        if performance_delta is None and kind == "performance_drop":
            performance_delta = float(alert["value"])  # already window - reference
        if performance_delta is None and kind in _PERFORMANCE_KINDS:
            performance_delta = float(alert["value"]) - float(alert["threshold"])
        features = set(drifted_features)
        features.update(f.strip() for f in details.get("drifted_features", "").split(",")
                        if f.strip())
        return {
            "request_id": uuid.uuid4().hex,
            "model": model,
            "model_version": alert.get("model_version", ""),
            "requested_at_ms": now,
            "reason": kind,
            "alert_id": alert["alert_id"],
            "fingerprint": alert["fingerprint"],
            "drift_share": drift_share,
            "drifted_features": sorted(features),
            "performance_delta": performance_delta,
            "details": {str(k): str(v) for k, v in details.items()},
        }
