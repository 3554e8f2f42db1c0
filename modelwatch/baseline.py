"""Reference profiles for the simulated model: its baseline (no phases) traffic, profiled.

The demo and the tests publish this so that the worker has something to compare against.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from producers.simulator.model import CLASS_NAMES, generate
from producers.simulator.scenario import Scenario
from schemas.columnar import PredictionColumns
from schemas.kafka import KafkaConfig
from schemas.topics import REFERENCE_MAX_BYTES, TopicNames
from stream_jobs.performance.reference import reference_performance
from stream_jobs.reference.io import encode_profile, profile_key
from stream_jobs.reference.profile import build_profile


def simulated_reference(
    scenario: Scenario, model: str, version: str = "", n_events: int = 50_000, seed: int = 12345
) -> dict[str, Any]:
    """Profile ``n_events`` of the scenario's model with every phase removed (normal traffic),
    with the model's performance on those events' labels."""
    baseline = dataclasses.replace(scenario, phases=[])
    batches: list[PredictionColumns] = []
    label_of: dict[str, str | None] = {}
    for preds, labels in generate(baseline, n_events, seed, model=model):
        if preds is not None:
            batches.append(preds)
        if labels is not None and labels.label_class is not None:
            label_of.update(zip(labels.prediction_ids, labels.label_class.values(), strict=True))
    numeric = {k: np.concatenate([b.numeric[k] for b in batches]) for k in batches[0].numeric}
    categorical = {
        k: [v for b in batches for v in b.categorical[k].values()] for k in batches[0].categorical
    }
    score = np.concatenate([b.score for b in batches if b.score is not None])
    ids = [pid for b in batches if b.score is not None for pid in b.prediction_ids]
    classes = list(batches[0].class_names or CLASS_NAMES)
    performance = reference_performance(
        [label_of.get(pid) for pid in ids],
        score,
        task="classification",
        positive=classes[1],
        negative=classes[0],
    )
    return build_profile(
        model,
        version,
        numeric=numeric,
        categorical=categorical,
        prediction=score,
        source=f"simulator baseline of scenario {scenario.name!r} ({n_events} events)",
        performance=performance,
    )


def publish_reference(
    kafka: str | KafkaConfig, profile: dict[str, Any], topics: TopicNames | None = None
) -> str:
    """Produce ``profile`` to the references topic keyed ``model/version``; returns the topic."""
    topic = (topics or TopicNames()).references
    errors: list[str] = []
    config = KafkaConfig.of(kafka)
    # a reference is one large record: the references topic is created to accept it
    producer = config.producer(**{"message.max.bytes": REFERENCE_MAX_BYTES})
    producer.produce(
        topic,
        key=profile_key(profile).encode(),
        value=encode_profile(profile),
        on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
    )
    if producer.flush(15.0) or errors:
        raise RuntimeError(
            f"publishing the reference of {profile['model']} to {topic} at {config} failed: "
            f"{errors or 'timed out'}"
        )
    return topic
