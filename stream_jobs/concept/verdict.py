"""One ``concept_drift`` detection from a concept test's current verdict, whoever runs the
test: the label engine (per-partition monitors and their :class:`VoteBox` quorum) or the
merge stage (the pooled test, :mod:`stream_jobs.concept.pool`).

A detection is made on every change of the verdict (``window`` None: stamped at the
latest alarm, or the test's clock) and once per closed window of the model (``window``:
that window's observation, so an alert resolves when the test is quiet).

>>> from stream_jobs.concept.pooled import PooledErrorTest
>>> from stream_jobs.join.config import LabelConfig
>>> d = concept_detection("m", "1", PooledErrorTest(), LabelConfig(), (0, 60_000, False))
>>> d.kind.value, d.active, d.window_end_ms, d.detector
('concept_drift', False, 60000, 'cusum/pooled')
"""

from __future__ import annotations

import math

from schemas.detection import Detection, DetectionKind
from stream_jobs.concept.pooled import PooledErrorTest
from stream_jobs.concept.quorum import VoteBox
from stream_jobs.join.config import LabelConfig

Window = tuple[int, int, bool]  # start, end, mostly regression labels


def concept_detection(
    model: str,
    version: str,
    box: VoteBox | PooledErrorTest,
    config: LabelConfig,
    window: Window | None = None,
    at_ms: int | None = None,
) -> Detection:
    """The concept verdict of ``box`` now (``at_ms``: at that event time of its clock);
    with ``window``: as that window's observation."""
    met, votes = box.evaluate(at_ms)
    regression = config.task_for(model) == "regression" or (window is not None and window[2])
    n_b = sum(f.n_before for _, f in votes)
    n_a = sum(f.n_after for _, f in votes)
    before = sum(f.before * f.n_before for _, f in votes) / n_b if n_b else math.nan
    after = sum(f.after * f.n_after for _, f in votes) / n_a if n_a else math.nan
    t = max((f.event_time_ms for _, f in votes), default=box.clock_ms)
    if window is not None:
        ws, we = window[0], window[1]
    else:
        ws = (t // config.window_ms) * config.window_ms
        we = ws + config.window_ms
    detector = config.regression_detector if regression else config.detector
    return Detection(
        model=model,
        kind=DetectionKind.CONCEPT_DRIFT,
        subject="mean_absolute_error" if regression else "error_rate",
        detector=box.name if isinstance(box, PooledErrorTest) else f"{detector}/quorum",
        value=0.0 if math.isnan(after) else after,
        threshold=0.0 if math.isnan(before) else before,
        event_time_ms=int((t if at_ms is None else at_ms) if window is None else we),
        model_version=version,
        active=bool(met and (box.active or window is not None)),
        window_start_ms=ws,
        window_end_ms=we,
        details={
            "before": f"{before:.6g}",
            "after": f"{after:.6g}",
            "votes": str(len(votes)),
            "required": str(box.required()),
            "partitions": ",".join(str(p) for p, _ in votes),
            "fired_at_ms": ",".join(str(f.event_time_ms) for _, f in votes),
        },
    )


def transition(
    model: str, version: str, box: VoteBox | PooledErrorTest, config: LabelConfig
) -> Detection | None:
    """The detection of a change of ``box``'s verdict since it was last reported (and the
    verdict recorded as reported), or None."""
    met, _ = box.evaluate()
    if met == box.active:
        return None
    box.active = met
    if met:
        box.active_since_ms = box.clock_ms
    return concept_detection(model, version, box, config)
