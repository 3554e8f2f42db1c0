"""Label (target) drift: a window's label distribution against the reference's labels.

The window's labels are those joined to its predictions: class counts come from the
confusion matrix's row sums (no extra state), regression label values from a KLL
partial kept in the window. The test and threshold are chosen exactly as for features
(:func:`stream_jobs.drift.selection.choose_test`: chi-square / KS on small samples,
Jensen–Shannon / Wasserstein above), with the drift helper's test functions, so a label
verdict reads like a feature verdict.

>>> import numpy as np
>>> from stream_jobs.drift.config import DriftConfig
>>> from stream_jobs.reference.profile import build_profile
>>> from stream_jobs.reference.view import ReferenceView
>>> from stream_jobs.performance.window import WindowPerformance
>>> rng = np.random.default_rng(0)
>>> ref = ReferenceView(build_profile("m", "1", numeric={}, label=list(
...     rng.choice(["a", "b"], 5_000, p=[0.8, 0.2]))))
>>> w = WindowPerformance("m", "1", 0, 60_000)
>>> y = (rng.random(2_000) < 0.5).astype(int)   # b: 20% -> 50%
>>> w.cls.update(y, y)
>>> column, det = judge_label_drift(w, ["a", "b"], ref, DriftConfig())
>>> column["categories"], str(det.kind), det.active, det.detector
({'a': 981, 'b': 1019}, 'label_drift', True, 'jensenshannon')
"""

from __future__ import annotations

import numpy as np

from schemas.columnar import CategoricalArray
from schemas.detection import Detection, DetectionKind
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.evaluate import column_window
from stream_jobs.drift.selection import TESTS, choose_test
from stream_jobs.performance.window import WindowPerformance
from stream_jobs.reference.view import ReferenceView
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial


def label_partial(
    w: WindowPerformance, class_names: list[str]
) -> NumericPartial | CategoricalPartial | None:
    """The window's labels as a drift-test partial (``None`` without labels)."""
    if w.reg.n > w.cls.n:
        return w.label_values
    counts = w.cls.confusion.sum(axis=1)
    if counts.sum() == 0:
        return None
    part = CategoricalPartial()
    idx = np.flatnonzero(counts)
    names = [class_names[i] for i in idx.tolist()]
    part.update(CategoricalArray(names, np.repeat(np.arange(idx.size), counts[idx]).astype("<i4")))
    return part


def judge_label_drift(
    w: WindowPerformance,
    class_names: list[str],
    ref: ReferenceView | None,
    config: DriftConfig,
) -> tuple[dict | None, Detection | None]:
    """``(WindowStats label ColumnWindow, label-drift Detection or None)``.

    No detection without a reference label column or below ``config.min_sample`` labels.
    """
    cur = label_partial(w, class_names)
    if cur is None:
        return None, None
    column = column_window("label", cur)
    if ref is None or ref.label is None:
        return column, None
    col = ref.label
    n = cur.n if isinstance(cur, NumericPartial) else cur.count - cur.missing
    if n < config.min_sample:
        return column, None
    if isinstance(cur, CategoricalPartial) and col.kind != "categorical":
        return column, None
    test, threshold = choose_test(
        col.kind, col.unique, col.n, n, config, config.override(w.model, "label")
    )
    res = TESTS[test](col, cur)
    if res.p_value is not None:
        value, drifted = res.p_value, res.p_value < threshold
    else:
        value, drifted = res.statistic, res.statistic >= threshold
    det = Detection(
        model=w.model,
        kind=DetectionKind.LABEL_DRIFT,
        subject="label",
        detector=test,
        value=float(value),
        threshold=float(threshold),
        event_time_ms=w.end_ms,
        model_version=w.model_version,
        active=bool(drifted),
        window_start_ms=w.start_ms,
        window_end_ms=w.end_ms,
        details={"statistic": f"{res.statistic:.6g}", "labels": str(n)},
    )
    return column, det
