"""The merge stage's cost per drift window, in process (no broker): what a backtest's drain
spends per window in ``MergeStage._merge`` — decode every partition's partial, merge,
judge against the reference, export the gauges, encode WindowStats and detections.

Two shapes: a backtest's (1,000 rows per 1-minute window, 5 numeric + 2 categorical
features) and ``bench_scale``'s (60,000 rows, 20 + 5), 4 input partitions each. CPU time
(``process_time``), so another process on the shared machine weighs less. A profile:
``python -m cProfile -s tottime -m tests.bench.bench_merge``.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.drift import DriftConfig, DriftEngine
from stream_jobs.drift.metrics import DriftMetrics
from stream_jobs.drift.synthetic import SyntheticStream
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.stage import MergeStage
from stream_jobs.outputs import DetectionSink
from stream_jobs.state.metrics import StateMetrics

CFG = DriftConfig(window_ms=60_000, allowed_lateness_ms=1_000, detectors=False)
PARTITIONS = 4
SHAPES = [(200, 1_000, 5, 2), (40, 60_000, 20, 5)]  # windows, rows per window, features


def run_one(windows: int, rows: int, n_numeric: int, n_categorical: int) -> dict[str, Any]:
    s = SyntheticStream(n_numeric=n_numeric, n_categorical=n_categorical,
                        rate_per_s=rows / 60, seed=1)  # fmt: skip
    engine = DriftEngine(CFG)
    engine.input_partitions = PARTITIONS
    engine.set_reference(s.reference())
    for w in range(windows + 1):
        for p in range(PARTITIONS):
            step = CFG.window_ms // PARTITIONS
            engine.observe(p, w, s.batch(w * CFG.window_ms + p * step, rows // PARTITIONS))
    codec, topics, registry = default_codec(), TopicNames(), CollectorRegistry()
    stage = MergeStage(CFG, DriftMetrics(registry), StateMetrics(registry),
                       DetectionSink(codec, topics, registry), codec, topics)  # fmt: skip
    stage.set_reference(s.reference())
    book = stage.books[0] = MergeBook(wait_s=1e9)
    stage.votes[0] = stage._combiner()
    for r in engine.drain_partials():
        book.add(r)
    ready = book.ready(0.0)
    started = time.process_time()
    records = sum(len(stage._merge(0, key, parts, complete)) for key, parts, complete in ready)
    cpu = time.process_time() - started
    return {
        "windows": len(ready), "rows": rows, "features": f"{n_numeric}+{n_categorical}",
        "records": records, "merge_cpu_ms_per_window": round(1e3 * cpu / len(ready), 2),
    }  # fmt: skip


def main() -> dict[str, Any]:
    out = {}
    for shape in SHAPES:
        r = run_one(*shape)
        print(r, flush=True)
        out[f"{r['rows']}rows_{r['features']}"] = r
    return out


if __name__ == "__main__":
    main()
