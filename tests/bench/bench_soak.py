"""Soak: as many events as the time budget allows through the full worker, labels on, with a
hostile cardinality mix, measuring what must stay flat.

* RSS of the worker sampled every million processed events (flat is the goal);
* the longest event-loop stall: the longest gap between two runs of the worker's 1 s output
  timer, from ``/healthz`` (under a second over the timer's period is the goal), and the
  longest loop steps themselves, named, from the worker's loop watch
  (``MODELWATCH_SLOW_STEP_MS``, 250 by default here; under a second is the goal);
* where the memory is at each million (Python heap, C heap, RocksDB's memtables, block
  cache and index/filter readers), from the worker's ``MODELWATCH_MEMORY_REPORT_S`` lines;
* the series count of ``/metrics`` (producer-controlled strings must not blow it up);
* throughput, dead letters, and whether ``/healthz`` stayed 200.

The publisher stays at most a million predictions ahead of the worker (the embedded broker
keeps everything in memory), so the run measures the worker, not the broker's buffer.

Budget: ``MODELWATCH_SOAK_S`` seconds of publishing (default 600); ``MODELWATCH_SOAK_LOG``
keeps the worker's log at that path (with ``MODELWATCH_SLOW_STEP_MS`` it names every loop
step that held the event loop longer). Run:
``make bench BENCH=bench_soak`` (or ``MODELWATCH_SOAK_S=120 python -m tests.bench.bench_soak``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from modelwatch.baseline import publish_reference
from modelwatch.broker import EmbeddedBroker
from schemas.codec import default_codec
from schemas.columnar import CategoricalArray, LabelColumns
from stream_jobs.memory_report import PREFIX
from tests.bench.bench_worker import reference_profile
from tests.bench.workload import make_batch
from tests.support.processes import WorkerProcess, healthz, sample

BATCH = 500
LABELLED = 0.5  # share of predictions that get a label
HOSTILE_EVERY = 20  # one batch in 20 carries hostile label values (versions, error types)
STEP = re.compile(r"event loop held ([0-9.]+) s by (.*)")
AHEAD = 1_000_000  # the publisher stays at most this many predictions ahead of the worker
SAMPLE_S = 0.5  # the sampling period of /metrics and /healthz


class Publisher(threading.Thread):
    """Publishes prediction batches and, a little later, label batches for half of them."""

    def __init__(self, bootstrap: str, topics, seconds: float) -> None:
        super().__init__(daemon=True, name="soak-publisher")
        self.topics = topics
        self.seconds = seconds
        self.codec = default_codec()
        self.rng = np.random.default_rng(7)
        self.producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "zstd",
                                  "linger.ms": 20, "queue.buffering.max.messages": 200_000,
                                  "queue.buffering.max.kbytes": 1_048_576})
        self.predictions = 0
        self.labels = 0
        self.batches = 0
        self.processed = 0.0  # set by the sampler: the broker keeps everything in memory

    def _batch(self) -> tuple[bytes, bytes | None, bytes]:
        cols = make_batch(self.rng, BATCH)
        self.batches += 1
        if self.batches % HOSTILE_EVERY == 0:  # a hostile cardinality mix
            cols.model_version = f"v{self.rng.integers(0, 200)}"
            cols.status[:] = 1
            names = [f"Error{uuid.uuid4().hex[:8]}" for _ in range(10)]
            cols.error_type = CategoricalArray(
                names, self.rng.integers(0, 10, BATCH).astype("<i4"))
        value = self.codec.encode("PredictionBatch", cols.to_record())
        n = int(BATCH * LABELLED)
        labels = LabelColumns(
            model=cols.model, prediction_ids=cols.prediction_ids[:n],
            event_time_ms=cols.event_time_ms[:n] + 1000,
            label_class=CategoricalArray(["no", "yes"],
                                         self.rng.integers(0, 2, n).astype("<i4")),
        )
        key = cols.prediction_ids[0].encode()
        return key, self.codec.encode("LabelBatch", labels.to_record()), value

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            if self.predictions - self.processed > AHEAD:
                time.sleep(0.05)
                continue
            key, label_value, value = self._batch()
            while True:
                try:
                    self.producer.produce(self.topics.predictions, key=key, value=value)
                    self.producer.produce(self.topics.labels, key=key, value=label_value)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)
            self.predictions += BATCH
            self.labels += int(BATCH * LABELLED)
        self.producer.flush(120)


def _series(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return sum(1 for line in r.read().decode().splitlines()
                   if line and not line.startswith("#"))


def _longest_steps(log_path: Path, top: int = 5) -> list[tuple[float, str]]:
    """The longest event-loop steps the loop watch logged: (seconds, the task or callback)."""
    steps = []
    for line in log_path.read_text(errors="replace").splitlines():
        m = STEP.search(line)
        if m:
            what = re.sub(r"name='[^']*' |<Task pending |at 0x[0-9a-f]+", "", m.group(2))
            steps.append((float(m.group(1)), what[:400]))
    return sorted(steps, reverse=True)[:top]


def _last_memory_report(log_path: Path) -> dict:
    """The worker's latest ``memory report`` line (:mod:`stream_jobs.memory_report`)."""
    last = {}
    for line in log_path.read_text(errors="replace").splitlines():
        at = line.find(PREFIX)
        if at >= 0:
            try:
                last = json.loads(line[at + len(PREFIX):])
            except ValueError:  # a line cut by the worker's death
                continue
    return last


def main(seconds: float | None = None) -> dict:
    seconds = float(seconds or os.environ.get("MODELWATCH_SOAK_S", 600))
    with EmbeddedBroker(partitions=4) as broker, tempfile.TemporaryDirectory() as tmp:
        publish_reference(broker.bootstrap, reference_profile(), broker.topics)
        slow_ms = os.environ.get("MODELWATCH_SLOW_STEP_MS", "250")
        report_s = os.environ.get("MODELWATCH_MEMORY_REPORT_S", "5")
        with WorkerProcess(broker.bootstrap, Path(tmp), "soak",
                           {"MODELWATCH_SLOW_STEP_MS": slow_ms,
                            "MODELWATCH_MEMORY_REPORT_S": report_s}) as worker:
            worker.wait_ready(60)
            pub = Publisher(broker.bootstrap, broker.topics, seconds)
            t0 = time.monotonic()
            pub.start()
            rss: list[tuple[int, float]] = []
            memory: list[tuple[int, dict]] = []
            unhealthy: list[str] = []
            next_mark = 1_000_000
            processed = 0.0
            scrape_failures = 0
            while pub.is_alive() or processed < pub.predictions:
                try:
                    m = worker.scrape()
                except OSError:  # a slow answer (e.g. under MODELWATCH_TRACEMALLOC_S)
                    scrape_failures += 1
                    time.sleep(SAMPLE_S)
                    continue
                processed = sample(m, "modelwatch_predictions_total")
                pub.processed = processed
                while processed >= next_mark:
                    rss.append((next_mark, sample(m, "process_resident_memory_bytes") / 2**20))
                    memory.append((next_mark, _last_memory_report(worker.log_path)))
                    next_mark += 1_000_000
                try:
                    status, body = healthz(worker.port)
                except OSError:
                    status, body = 0, {"problems": ["/healthz did not answer within 5 s"]}
                if status != 200:
                    unhealthy += body.get("problems", [])
                if not pub.is_alive() and time.monotonic() - t0 > seconds + 300:
                    break  # the worker could not drain within 5 minutes: report as is
                time.sleep(SAMPLE_S)
            elapsed = time.monotonic() - t0
            m = worker.scrape()
            _, health = healthz(worker.port)
            result = {
                "seconds_publishing": seconds,
                "predictions_published": pub.predictions,
                "labels_published": pub.labels,
                "predictions_processed": sample(m, "modelwatch_predictions_total"),
                "labels_processed": sample(m, "modelwatch_events_processed_total",
                                           topic=broker.topics.labels),
                "events_per_s": sample(m, "modelwatch_predictions_total") / elapsed,
                "rss_mib_per_million": rss,
                "rss_mib_end": sample(m, "process_resident_memory_bytes") / 2**20,
                "memory_per_million": memory,
                "memory_end": _last_memory_report(worker.log_path),
                "longest_output_timer_gap_s": health.get("beats", {})
                .get("output timer", {}).get("longest_gap_s"),
                "longest_output_tick_gap_s": health.get("beats", {})
                .get("output tick", {}).get("longest_gap_s"),
                "longest_loop_steps": _longest_steps(worker.log_path),
                "metrics_series": _series(worker.port),
                "dead_letters": sample(m, "modelwatch_dead_letters_total"),
                "healthz_problems_seen": sorted(set(unhealthy))[:10],
                "scrape_failures": scrape_failures,
                "worker_alive": worker.alive(),
            }
            keep = os.environ.get("MODELWATCH_SOAK_LOG")
            if keep:  # the worker's log (loop-watch warnings, slow polls) outlives the run
                shutil.copyfile(worker.log_path, keep)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
