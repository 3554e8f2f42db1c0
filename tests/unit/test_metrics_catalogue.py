"""The metric catalogue (schemas/metrics_catalogue.py) against the collectors built from it.

The worker's and the alerting processes' collectors are assembled on one registry each, the
way the composition root does, exercised so every labelled family has samples, and their
``/metrics`` text is compared with the catalogue in both directions
(``tests/support/catalogue_check.py``; the integration twin runs it against a real worker).
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from alerting.evaluator import EvaluatorMetrics
from alerting.kafka import process_registry
from alerting.notifier import NotifierMetrics
from producers.metrics import sdk_metrics
from schemas import metrics_catalogue as catalogue
from schemas.codec import default_codec
from schemas.columnar import PredictionColumns
from schemas.detection import Detection, DetectionKind
from schemas.topics import TopicNames
from stream_jobs.drift.evaluate import ClosedWindow
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.golden import GoldenSignals
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import JoinResult, LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.label_pacing import LabelPacer
from stream_jobs.label_restore import LabelRestore
from stream_jobs.outputs import DetectionSink
from stream_jobs.performance.metrics import LabelMetrics
from stream_jobs.pipeline_metrics import PipelineMetrics
from stream_jobs.reference_feed import ReferenceMetrics
from stream_jobs.sender import SenderMetrics
from stream_jobs.state.metrics import StateMetrics
from tests.support.catalogue_check import disagreements

WORKER = {catalogue.WORKER, catalogue.PROCESS}


def _batch(model: str = "m", version: str = "1", error_type: str = "Timeout", n: int = 4):
    return PredictionColumns.from_events([
        {"prediction_id": f"{model}-{i}", "model": model, "model_version": version,
         "event_time_ms": 60_000 + i, "latency_ms": 12.0, "status": "error" if i % 2 else "ok",
         "error_type": error_type if i % 2 else None, "request_bytes": 100, "response_bytes": 10}
        for i in range(n)
    ])  # fmt: skip


def _window(model: str = "m") -> ClosedWindow:
    stats = {
        "count": 10, "late_events": 0, "drift_share": 0.5, "dataset_drift": True,
        "features": [{"name": "x", "kind": "numeric", "count": 10, "missing": 1,
                      "out_of_range": 2, "unseen_categories": 0},
                     {"name": "c", "kind": "categorical", "count": 10, "missing": 0,
                      "out_of_range": 0, "unseen_categories": 3}],
        "drift": [{"column": "x", "test": "wasserstein", "p_value": None, "statistic": 0.3,
                   "drifted": True},
                  {"column": "__prediction__", "test": "psi", "p_value": None,
                   "statistic": 0.1, "drifted": False}],
    }  # fmt: skip
    return ClosedWindow(model, "1", 0, 60_000, stats)


def worker_registry() -> tuple[CollectorRegistry, dict[str, object]]:
    """The worker's collectors on one registry (as modelwatch/wiring.py and app.py build them),
    each exercised once."""
    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    pipeline = PipelineMetrics(reg)
    golden = GoldenSignals(reg)
    sink = DetectionSink(default_codec(), TopicNames(), reg)
    drift = DriftMetrics(reg)
    engine = LabelEngine(LabelConfig(), MemoryStore())
    engine._bump("m", "joined", 5, set())  # noqa: SLF001 - a counter to scrape
    labels = LabelMetrics(reg, engine)
    LabelPacer(TopicNames(), reg)  # label partitions read in step with their predictions
    LabelRestore(None, "", TopicNames(), default_codec(), reg).seconds.observe(1.0)
    engine.latest_closed[("m", "1")] = {
        "window_end_ms": 60_000, "performance": {"accuracy": 0.9, "join_rate": 0.8},
        "performance_delta": {"accuracy": -0.05},
    }  # fmt: skip
    pipeline.events.labels("t").inc()
    pipeline.batches.labels("t").inc()
    pipeline.dead_letters.labels("t", "decode").inc()
    pipeline.lag.labels("t", "0").set(3)
    pipeline.rebalances.inc()
    golden.observe(_batch(), now_s=61.0)
    sink.encode([Detection("m", DetectionKind.FEATURE_DRIFT, "x", "ks", 0.01, 0.05, 60_000)])
    drift.record_window(_window())
    drift.record_late("m", 2)
    drift.record_detection(Detection("m", "feature_drift", "x", "adwin", 1.0, 1.0, 60_000))
    labels.observe_join(JoinResult(joined=1, delays_s={"m": np.array([3.0])}))
    state = StateMetrics(reg)  # partition state and the merge stage
    state.restore_seconds.labels("drift").observe(0.1)
    for c in (state.restored, state.snapshots, state.snapshot_bytes, state.merge_seconds):
        c.labels("drift").inc()
    state.changelog_records_read.inc()
    state.partials.labels("drift", "applied").inc()
    state.merged.labels("drift", "true").inc()
    sender = SenderMetrics(reg)
    sender.dead_lettered.labels("t").inc()
    sender.retries.labels("t").inc()
    references = ReferenceMetrics(reg)
    references.references.labels("loaded").inc()
    references.feed_up.set(1)
    caps = golden.caps
    caps.forget("ghost")
    for i in range(caps.config.error_types + 1):  # one past the cap: the capped counter
        caps.error_type("m", "1", f"e{i}")
    return reg, {"golden": golden, "drift": drift, "labels": labels, "sink": sink}


def test_worker_collectors_and_catalogue_agree_both_ways() -> None:
    reg, _ = worker_registry()
    text = generate_latest(reg).decode()
    assert disagreements(text, WORKER) == []


def test_alerting_collectors_and_catalogue_agree_both_ways() -> None:
    ev_reg = process_registry()
    ev = EvaluatorMetrics(ev_reg)
    ev.set_firing([{"model": "m", "severity": "major"}])
    ev.detections.labels("fired").inc()
    ev.events.labels("firing", "major").inc()
    ev.retrains.labels("m").inc()
    ev.silences.labels("ok").inc()
    ev.tick_errors.inc()
    text = generate_latest(ev_reg).decode()
    assert disagreements(text, {catalogue.EVALUATOR, catalogue.PROCESS}) == []
    no_reg = process_registry()
    nm = NotifierMetrics(no_reg)
    nm.notifications.labels("log", "delivered").inc()
    nm.dead_letters.labels("log").inc()
    nm.attempts.labels("log").inc()
    nm.rejected.labels("decode").inc()
    text = generate_latest(no_reg).decode()
    assert disagreements(text, {catalogue.NOTIFIER, catalogue.PROCESS}) == []


def test_sdk_collectors_and_catalogue_agree_both_ways() -> None:
    reg = CollectorRegistry()
    m = sdk_metrics(reg)
    m.published.labels("m", "prediction").inc()
    m.dropped.labels("m", "prediction", "overflow").inc()
    m.send_latency.labels("m").observe(0.01)
    m.buffered.labels("m").set(1)
    assert disagreements(generate_latest(reg).decode(), {catalogue.SDK}) == []


def test_the_check_fails_in_either_direction() -> None:
    reg, _ = worker_registry()
    text = generate_latest(reg).decode()
    # a collector exporting a metric the catalogue does not list
    extra = CollectorRegistry()
    from prometheus_client import Gauge

    Gauge("modelwatch_unlisted", "x", registry=extra).set(1)
    assert any("modelwatch_unlisted: exported" in d
               for d in disagreements(text + generate_latest(extra).decode(), WORKER))
    # a catalogue entry no collector exports
    without = "\n".join(line for line in text.splitlines()
                        if "modelwatch_window_events" not in line) + "\n"
    assert disagreements(without, WORKER) == [
        "modelwatch_window_events: in the catalogue for ['process', 'worker'], not exported"
    ]
    # a label the catalogue does not list, and one it lists but the collector lacks
    relabelled = text.replace('modelwatch_drift_share_ratio{model="m"}',
                              'modelwatch_drift_share_ratio{model="m",severity="x"}')
    assert any("severity" in d for d in disagreements(relabelled, WORKER))
    dropped = text.replace('modelwatch_window_events{model="m"}', "modelwatch_window_events")
    assert any("modelwatch_window_events" in d for d in disagreements(dropped, WORKER))


def test_naming_conventions() -> None:
    assert len(catalogue.BY_NAME) == len(catalogue.CATALOGUE), "duplicate names"
    for m in catalogue.CATALOGUE:
        assert m.name.endswith("_total") == (m.type == "counter"), m.name
        stem = m.name.removesuffix("_total")
        if m.unit:
            assert stem.endswith(f"_{m.unit}"), m.name  # base unit as the suffix
        for unit in ("seconds", "bytes", "ratio"):
            if stem.endswith(f"_{unit}") and not m.name.endswith("_timestamp_seconds"):
                assert m.unit == unit, m.name
        assert not stem.endswith(("_milliseconds", "_ms", "_percent", "_rate")), m.name
        assert (m.type == "histogram") == bool(m.buckets), m.name
        assert m.help.endswith("."), m.name
        assert "id" not in m.labels and "prediction_id" not in m.labels, m.name
        assert m.exported_by and m.group, m.name
    assert catalogue.spec("modelwatch_build_info").labels[0] == "version"


def test_builders_refuse_a_wrong_type_or_an_unknown_name() -> None:
    reg = CollectorRegistry()
    with pytest.raises(TypeError):
        catalogue.gauge("modelwatch_predictions_total", reg)
    with pytest.raises(KeyError, match="not in schemas/metrics_catalogue.py"):
        catalogue.counter("modelwatch_nope_total", reg)


def test_build_info_says_the_version() -> None:
    reg = CollectorRegistry()
    catalogue.build_info(reg)
    text = generate_latest(reg).decode()
    assert f'version="{catalogue.modelwatch_version()}"' in text


def test_every_metric_name_the_code_reads_is_in_the_catalogue() -> None:
    """Code that scrapes or builds metrics by name (the live view, the demo, collectors)
    uses catalogue names only, so a rename cannot leave a reader behind."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    known = catalogue.known_series_names() | {m.name for m in catalogue.CATALOGUE}
    literal = re.compile(r"[\"'](modelwatch_[a-z_]+)[\"']")
    unknown = {}
    for package in ("modelwatch", "stream_jobs", "alerting", "producers", "schemas"):
        for path in (root / package).rglob("*.py"):
            for name in literal.findall(path.read_text()):
                if name not in known:
                    unknown[name] = str(path.relative_to(root))
    assert unknown == {}
