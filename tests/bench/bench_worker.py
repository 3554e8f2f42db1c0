"""Worker throughput on a pre-filled topic vs a raw confluent-kafka consume of the same topic.

Also times the handler alone (decode + validate + golden signals, no Kafka) and profiles it,
to say where the time goes. Run: ``.venv/bin/python -m tests.bench.bench_worker``.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from modelwatch.baseline import publish_reference
from modelwatch.broker import EmbeddedBroker
from modelwatch.live_view import scrape
from schemas.codec import default_codec
from schemas.topics import TopicNames
from stream_jobs.golden import GoldenSignals
from stream_jobs.handler import PredictionHandler
from stream_jobs.pipeline_metrics import PipelineMetrics
from stream_jobs.reference.profile import build_profile
from tests.bench.workload import make_batch
from tests.support.processes import WorkerProcess, sample, wait_for

BATCH = 500
EVENTS = "modelwatch_predictions_total"



def payloads(n_events: int, seed: int = 1) -> list[bytes]:
    rng = np.random.default_rng(seed)
    codec = default_codec()
    return [
        codec.encode("PredictionBatch", make_batch(rng, BATCH).to_record())
        for _ in range(n_events // BATCH)
    ]


def handler_only(batches: list[bytes], observers: list | None = None) -> tuple[float, str]:
    reg = CollectorRegistry()
    handler = PredictionHandler(
        default_codec(), TopicNames(), GoldenSignals(reg), PipelineMetrics(reg), observers or []
    )
    now = time.time()
    t0 = time.perf_counter()
    prof = cProfile.Profile()
    prof.enable()
    for i, p in enumerate(batches):
        handler.handle(None, p, 0, i, now)
    prof.disable()
    elapsed = time.perf_counter() - t0
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(12)
    return len(batches) * BATCH / elapsed, out.getvalue()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reference_profile(n: int = 20_000) -> dict:
    """A reference for the bench model, so drift tests and online detectors run too."""
    cols = make_batch(np.random.default_rng(99), n)
    return build_profile(
        "bench",
        "",
        numeric=cols.numeric,
        categorical={k: v.values() for k, v in cols.categorical.items()},
        prediction=cols.score,
    )


def raw_consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 120) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 52428800,
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    n = 0
    t0 = time.perf_counter()
    while n < expected and time.perf_counter() - t0 < timeout_s:
        for m in consumer.consume(1000, 0.5):
            if not m.error():
                n += 1
    elapsed = time.perf_counter() - t0
    consumer.close()
    return n * BATCH / elapsed


def main(n_events: int = 500_000) -> dict:
    batches = payloads(n_events)
    handler_rate, profile = handler_only(batches)
    with EmbeddedBroker(partitions=4) as broker, tempfile.TemporaryDirectory() as tmp:
        topic = broker.topics.predictions
        producer = Producer(
            {
                "bootstrap.servers": broker.bootstrap,
                "compression.type": "zstd",
                "linger.ms": 20,
                "queue.buffering.max.messages": 100000,
            }
        )
        for i, p in enumerate(batches):
            producer.produce(topic, key=str(i).encode(), value=p)
            producer.poll(0)
        producer.flush(60)
        raw_rate = raw_consume(broker.bootstrap, topic, len(batches))
        publish_reference(broker.bootstrap, reference_profile(), broker.topics)
        with WorkerProcess(broker.bootstrap, Path(tmp), "bench-worker") as worker:
            worker.wait_ready()
            # polled often for a precise end: only two series, not the whole page (a full
            # scrape every 0.1 s costs the worker what Prometheus' every 15 s never would)
            url = worker.metrics_url + f"?name[]={EVENTS}"
            wait_for(lambda: sample(scrape(url), EVENTS) > 0, 60, "first", 0.05)
            t0 = time.perf_counter()
            start, cpu0 = scrape(url), cpu_seconds(worker.proc.pid)
            wait_for(lambda: sample(scrape(url), EVENTS) >= n_events, 600, "all events", 0.1)
            elapsed = time.perf_counter() - t0
            cpu_s = cpu_seconds(worker.proc.pid) - cpu0
            worker_rate = (n_events - sample(start, EVENTS)) / elapsed
            rss = sample(worker.scrape(), "process_resident_memory_bytes") / 2**20
    result = {
        "events": n_events,
        "handler_events_per_s": handler_rate,
        "worker_events_per_s": worker_rate,
        "raw_consume_events_per_s": raw_rate,
        "worker_vs_raw": worker_rate / raw_rate,
        "worker_vs_handler": worker_rate / handler_rate,
        # the worker's CPU time over the wall time (both of its threads): below 1 while it
        # waits for records; events per CPU second is the rate on an unshared core
        "worker_cpu_busy": cpu_s / elapsed,
        "worker_events_per_cpu_s": (n_events - sample(start, EVENTS)) / cpu_s,
        "worker_rss_mib": rss,
    }
    print("\n== worker throughput: 20 numeric + 5 categorical features, batches of 500;")
    print("   worker = decode + golden signals + SLO checks + windows + drift tests + online")
    print(
        "   detectors (reference published) + label-join store; handler = decode + golden only =="
    )
    for k, v in result.items():
        print(f"{k:28s} {v:,.2f}")
    print("\n-- handler profile (cumulative) --\n" + profile)
    return result


if __name__ == "__main__":
    main()
