"""The detection bench's concept-change stream as a test: the pipeline's concept_drift
fires within twice the delay of river's best detector on the same error stream, and
nothing fires before the change (``make bench BENCH=bench_detection`` prints the figures)."""

from __future__ import annotations

import pytest

from stream_jobs.join.config import LabelConfig
from tests.bench.bench_detection import (
    _reference,
    concept_10_21,
    pipeline_labels,
    river_direct,
    score,
)


@pytest.mark.parametrize("seed", [0, 1])
def test_concept_change_is_caught_as_quickly_as_rivers_best(seed: int) -> None:
    s = concept_10_21(seed=seed)
    errors = (s.pred != s.label).astype(float)
    assert 0.08 < errors[: s.change].mean() < 0.12 and 0.19 < errors[s.change :].mean() < 0.23
    got = pipeline_labels(s, _reference(s), LabelConfig())
    ours = score(got["concept_drift"], s.change, s.n)
    river = [score(a, s.change, s.n) for a in river_direct(errors).values()]
    best = min(r["delay"] for r in river if r["delay"] is not None and not r["false_per_10k"])
    assert ours["false_per_10k"] == 0 and not ours["missed"]
    assert ours["delay"] <= 2 * best, (ours, best)
    # the window of 1,000 labels after the change also shows the accuracy drop
    drop = score(got["performance_drop"], s.change, s.n)
    assert drop["false_per_10k"] == 0 and drop["delay"] == 1_000
