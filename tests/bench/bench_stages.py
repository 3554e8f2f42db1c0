"""The worker's stages in process, per CPU second: this tree against a baseline, one run.

What a worker does with each record once Kafka has delivered it — decode, validate, golden
signals, golden checks, drift windows and tests, online detectors, the label join — with
the stages built as ``modelwatch.wiring`` builds them (RocksDB label store, reference
published), fed bench_scale's payloads over 4 partitions, without Kafka or Faust: the figure
the join and drift optimisations move. Two workloads: predictions only (what bench_worker
and bench_scale send) and predictions with 90 % of them labelled one batch later (the label
join joining). Each is timed in a fresh subprocess of this tree and of ``BENCH_BASELINE_REF``
(default ``2731b21``, before the label-join vectorisation), alternating, best of
``rounds`` (the machine is shared). Run: ``make bench BENCH=bench_stages``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BASELINE_REF = os.environ.get("BENCH_BASELINE_REF", "2731b21")


def measure(n_events: int, labels: bool) -> dict:
    """Events (predictions) per CPU second of the stages in this process."""
    from prometheus_client import CollectorRegistry

    from schemas.codec import default_codec
    from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
    from schemas.topics import TopicNames
    from stream_jobs.drift.config import DriftConfig
    from stream_jobs.drift.engine import DriftEngine
    from stream_jobs.drift.metrics import DriftMetrics
    from stream_jobs.drift_stage import DriftStage
    from stream_jobs.golden import GoldenSignals
    from stream_jobs.golden_checks import GoldenChecks, GoldenChecksConfig
    from stream_jobs.handler import LabelHandler, PredictionHandler
    from stream_jobs.join.config import LabelConfig
    from stream_jobs.join.engine import LabelEngine
    from stream_jobs.join.store import RocksStore
    from stream_jobs.label_stage import LabelStage, LockedLabelMetrics
    from stream_jobs.outputs import DetectionSink, GoldenChecksStage
    from stream_jobs.performance.merger import PerformanceMerger
    from stream_jobs.pipeline_metrics import PipelineMetrics
    from stream_jobs.stage import as_stage
    from stream_jobs.state.metrics import StateMetrics
    from tests.bench.bench_scale import payloads
    from tests.bench.bench_worker import reference_profile

    codec, topics = default_codec(), TopicNames()
    batches = payloads(n_events)
    rng = np.random.default_rng(5)
    label_batches = []
    for p in batches if labels else []:
        c = PredictionColumns.from_record(codec.decode(p).record)
        keep = np.flatnonzero(rng.random(c.n) < 0.9)
        classes = CategoricalArray(["no", "yes"], rng.integers(0, 2, keep.size).astype("<i4"))
        lab = LabelColumns(c.model, [c.prediction_ids[i] for i in keep],
                           c.event_time_ms[keep] + 5000, label_class=classes)  # fmt: skip
        label_batches.append(codec.encode("LabelBatch", lab.to_record()))
    reg = CollectorRegistry()
    sink, sm = DetectionSink(codec, topics, reg), StateMetrics(reg)
    dc, lc = DriftConfig(), LabelConfig()
    golden = GoldenChecksStage(GoldenChecks(GoldenChecksConfig()), sink)
    drift = DriftStage(DriftEngine(dc), DriftMetrics(reg), sm, codec, topics)
    with tempfile.TemporaryDirectory() as tmp:
        engine = LabelEngine(lc, RocksStore(Path(tmp) / "join"), drift=dc)
        metrics = LockedLabelMetrics(reg, engine, merged=PerformanceMerger(lc, dc))
        label_stage = LabelStage(engine, metrics, sink, codec, topics, state_metrics=sm)
        metrics.lock = label_stage.lock
        profile = reference_profile()
        drift.set_reference(profile)
        label_stage.set_reference(profile)
        stages = [as_stage(s) for s in (golden, drift, label_stage)]
        for s in stages:
            for topic in (topics.predictions, topics.labels):
                s.on_assign(topic, [0, 1, 2, 3], {}, 4)
        pipe = PipelineMetrics(reg)
        handler = PredictionHandler(codec, topics, GoldenSignals(reg), pipe, stages)

        class FanOut:
            def observe_labels(self, p: int, o: int, lab: LabelColumns) -> list:
                return [x for s in stages for x in s.observe_labels(p, o, lab) or []]

        label_handler = LabelHandler(codec, topics, pipe, FanOut())
        now = time.time() + 3600
        cpu0 = time.process_time()
        for i, p in enumerate(batches):
            handler.handle(None, p, i % 4, i // 4, now)
            if label_batches and i >= 4:
                j = i - 4
                label_handler.handle(None, label_batches[j], j % 4, j // 4, now)
            if i % 20 == 0:
                for s in stages:
                    s.poll(now)
        cpu = time.process_time() - cpu0
        joined = engine.totals("bench")["joined"]
        engine.store.close()
    return {"events_per_cpu_s": len(batches) * 500 / cpu, "joined": joined}


def _child(cwd: Path, n_events: int, labels: bool) -> dict:
    """``measure`` in a fresh interpreter of the tree at ``cwd`` (its code, this harness)."""
    code = ("import importlib.util as u, json; "  # this file, loaded by path: the tree's code
            f"s = u.spec_from_file_location('bench_stages', {__file__!r}); "
            "m = u.module_from_spec(s); s.loader.exec_module(m); "
            f"print(json.dumps(m.measure({n_events}, {labels})))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main(n_events: int = 200_000, rounds: int = 2) -> dict:
    # imported here, not at module level: a child loads this file against the baseline's
    # tree, which may not have these modules
    from tests.bench.baseline import REPO, baseline_tree, print_result

    result: dict = {"events": n_events, "rounds": rounds, "baseline": BASELINE_REF}
    with tempfile.TemporaryDirectory() as t:
        base = baseline_tree(Path(t), BASELINE_REF)
        trees = ([("baseline", base)] if base is not None else []) + [("this", REPO)]
        best: dict[str, float] = {}
        for _ in range(rounds):
            for labels in (False, True):
                for name, cwd in trees:
                    got = _child(cwd, n_events, labels)
                    key = f"{name}_{'labelled' if labels else 'predictions'}"
                    print(f"  {key}: {got['events_per_cpu_s']:,.0f} events/CPU s "
                          f"({got['joined']:,} joined)", flush=True)  # fmt: skip
                    best[key] = max(best.get(key, 0.0), got["events_per_cpu_s"])
    result.update({f"{k}_events_per_cpu_s": v for k, v in best.items()})
    for w in ("predictions", "labelled"):
        if f"baseline_{w}" in best:
            result[f"{w}_this_vs_baseline"] = best[f"this_{w}"] / best[f"baseline_{w}"]
    print_result(f"worker stages in process (decode .. label join), events per CPU second, "
                 f"best of {rounds}, baseline = {BASELINE_REF}", result, decimals=2)  # fmt: skip
    return result


if __name__ == "__main__":
    main()
