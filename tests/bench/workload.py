"""A synthetic workload for benchmarks: batches of 20 numeric + 5 categorical features."""

from __future__ import annotations

import time
import uuid

import numpy as np

from schemas.columnar import CategoricalArray, PredictionColumns

N_NUMERIC = 20
N_CATEGORICAL = 5


def make_batch(
    rng: np.random.Generator, n: int, model: str = "bench", shift: float = 0.0
) -> PredictionColumns:
    now = int(time.time() * 1000)
    base = uuid.uuid4().hex[:16]
    status = np.zeros(n, dtype="i1")
    status[rng.random(n) < 0.01] = 1
    return PredictionColumns(
        model=model,
        model_version="v1",
        prediction_ids=[f"{base}{i:06d}" for i in range(n)],
        event_time_ms=now - rng.integers(0, 1000, n).astype("<i8"),
        latency_ms=rng.lognormal(3.0, 0.4, n),
        status=status,
        numeric={f"num_{j}": rng.normal(shift, 1.0, n) for j in range(N_NUMERIC)},
        categorical={
            f"cat_{j}": CategoricalArray(
                ["a", "b", "c", "d", "e"], rng.integers(0, 5, n).astype("<i4")
            )
            for j in range(N_CATEGORICAL)
        },
        score=rng.random(n),
        predicted_class=CategoricalArray(["no", "yes"], rng.integers(0, 2, n).astype("<i4")),
        request_bytes=np.full(n, 512, dtype="<i4"),
        response_bytes=np.full(n, 64, dtype="<i4"),
    )
