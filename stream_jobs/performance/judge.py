"""Judging one closed performance window: its document and the detections read off it.

Pure functions shared by the per-process label engine and the per-model merge stage
(:mod:`stream_jobs.performance.merger`), so one window gives the same verdict wherever it
is judged: the WindowStats performance document, ``performance_collapse`` (floors and
ceilings) and ``performance_drop`` against the reference profile's performance.
"""

from __future__ import annotations

from typing import Any

from schemas.detection import Detection, DetectionKind
from stream_jobs.join.config import LabelConfig
from stream_jobs.performance.reference import compare_with_reference, drop_bar, performance_drops
from stream_jobs.performance.window import CLASSIFICATION, REGRESSION, WindowPerformance
from stream_jobs.reference.view import ReferenceView


def window_doc(w: WindowPerformance, classes: list[str], *, closed: bool) -> dict[str, Any]:
    """The window's performance document (model, version, window, task, metrics, slices)."""
    regression = w.task == REGRESSION or w.reg.n > w.cls.n
    doc: dict[str, Any] = {
        "model": w.model,
        "model_version": w.model_version,
        "window_start_ms": w.start_ms,
        "window_end_ms": w.end_ms,
        "closed": closed,
        "task": REGRESSION if regression else CLASSIFICATION,
        "performance": w.summary(classes),
        "slices": w.slices.metrics(regression=regression),
    }
    if not regression:
        k = w.cls.confusion.shape[0]
        true_counts = w.cls.confusion.sum(axis=1)
        doc["label_counts"] = {classes[i]: int(true_counts[i]) for i in range(k) if true_counts[i]}
        if w.cls.auc_n:
            doc["auc_error_bound"] = w.cls.auc_error_bound()
    return doc


def collapse(config: LabelConfig, w: WindowPerformance, perf: dict[str, float]) -> list[Detection]:
    """``performance_collapse`` per configured floor / ceiling (enough labels only)."""
    c = config
    if perf.get("labels", 0.0) < c.min_labels_for_performance:
        return []
    dets = []
    checks = [(m, v, True) for m, v in c.performance_floors.items()]
    checks += [(m, v, False) for m, v in c.performance_ceilings.items()]
    for metric, bound, floor in checks:
        if metric not in perf:
            continue
        value = perf[metric]
        bad = value < bound if floor else value > bound
        dets.append(
            Detection(
                model=w.model,
                kind=DetectionKind.PERFORMANCE_COLLAPSE,
                subject=metric,
                detector="floor" if floor else "ceiling",
                value=value,
                threshold=bound,
                event_time_ms=w.end_ms,
                model_version=w.model_version,
                active=bad,
                window_start_ms=w.start_ms,
                window_end_ms=w.end_ms,
                details={"labels": str(int(perf["labels"]))},
            )
        )
    return dets


def versus_reference(
    config: LabelConfig, w: WindowPerformance, doc: dict[str, Any], ref: ReferenceView | None
) -> list[Detection]:
    """Window metrics minus the reference's (into ``doc``); a performance_drop per
    toleranced metric."""
    c = config
    perf = doc["performance"]
    n = perf.get("labels", 0.0)
    if ref is None or not ref.performance or n < c.min_labels_for_comparison:
        return []
    delta = compare_with_reference(perf, ref.performance)
    doc["performance_reference"] = {m: float(ref.performance[m]) for m in delta}
    doc["performance_delta"] = delta
    accuracy = perf.get("accuracy")
    sampling = {
        "accuracy": accuracy,
        "n": n,
        "reference_n": float(ref.performance.get("labels", 0.0)),
        "z": c.performance_z,
    }
    drops = performance_drops(delta, c.performance_tolerance, **sampling)
    return [
        Detection(
            model=w.model,
            kind=DetectionKind.PERFORMANCE_DROP,
            subject=metric,
            detector="vs_reference",
            value=delta[metric],
            threshold=drop_bar(metric, delta, bound, **sampling),
            event_time_ms=w.end_ms,
            model_version=w.model_version,
            active=metric in drops,
            window_start_ms=w.start_ms,
            window_end_ms=w.end_ms,
            details={
                "window": f"{perf[metric]:.6g}",
                "reference": f"{ref.performance[metric]:.6g}",
                "labels": str(int(n)),
                "reference_source": ref.source,
            },
        )
        for metric, bound in c.performance_tolerance.items()
        if metric in delta
    ]


def performance_part(doc: dict[str, Any]) -> dict[str, Any]:
    """A closed window's document as the *performance part* of a ``WindowStats`` record:
    same model/version/window as the distribution part, no ``features``, ``performance``
    and ``label`` filled."""
    performance = {k: float(v) for k, v in doc["performance"].items() if isinstance(v, int | float)}
    return {
        "model": doc["model"],
        "model_version": doc["model_version"],
        "window_start_ms": doc["window_start_ms"],
        "window_end_ms": doc["window_end_ms"],
        "count": int(performance.get("predictions", 0)),
        "errors": 0,
        "fallbacks": 0,
        "late_events": 0,
        "features": [],
        "prediction": None,
        "label": doc.get("label"),
        "performance": performance,
        "performance_reference": dict(doc.get("performance_reference") or {}),
        "drift": [],
        "drift_share": None,
        "dataset_drift": False,
    }
