"""Predictions of a binary classifier and slices of their labels, as the label-join tests
publish them (tests/integration/test_worker_labels.py, test_label_catchup.py)."""

from __future__ import annotations

import uuid

import numpy as np

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns


def classifier_predictions(rng: np.random.Generator, model: str, start_ms: int, n: int,
                           span_ms: int, features: list[str]) -> PredictionColumns:
    """``n`` predictions at random event times in ``[start_ms, start_ms + span_ms)``, in
    event-time order: uniform scores, class ``score > 0.5``, standard normal ``features``."""
    t = np.sort(start_ms + rng.integers(0, span_ms, n)).astype("<i8")
    score = rng.random(n)
    return PredictionColumns(
        model=model,
        model_version="v1",
        prediction_ids=[uuid.uuid4().hex for _ in range(n)],
        event_time_ms=t,
        latency_ms=rng.lognormal(3, 0.3, n),
        status=np.zeros(n, "i1"),
        numeric={f: rng.normal(size=n) for f in features},
        score=score,
        predicted_class=CategoricalArray(["0", "1"], (score > 0.5).astype("<i4")),
    )


def label_rows(labels: LabelColumns, rows: np.ndarray | slice) -> LabelColumns:
    """The labels at ``rows`` (an index array or a slice)."""
    index = np.arange(labels.n)[rows]
    return LabelColumns(
        model=labels.model,
        prediction_ids=[labels.prediction_ids[i] for i in index.tolist()],
        event_time_ms=labels.event_time_ms[index],
        label_value=None if labels.label_value is None else labels.label_value[index],
        label_class=None if labels.label_class is None else labels.label_class.take(index),
    )


def class_labels(ids: list[str], event_time_ms: int, truth: np.ndarray,
                 model: str = "m") -> LabelColumns:
    """0/1 class labels ``truth`` for the predictions ``ids``, all at ``event_time_ms``."""
    return LabelColumns(
        model=model,
        prediction_ids=ids,
        event_time_ms=np.full(len(ids), event_time_ms, dtype=np.int64),
        label_class=CategoricalArray(["0", "1"], truth.astype(np.int32)),
    )
