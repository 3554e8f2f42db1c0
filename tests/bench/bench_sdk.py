"""SDK, partitioner, simulator and replay throughput against a real embedded broker.

Run alone: ``.venv/bin/python -m tests.bench.bench_sdk`` (``make bench`` runs it too).
Figures, not assertions: the machine is shared.

* ``sdk_call_us``: cost of one ``publish_prediction`` call (20 numeric + 5 categorical
  features, dicts built beforehand), on the caller's thread, sender running.
* ``sdk_acked_eps``: predictions per second from the first call to the broker's last
  acknowledgement (``flush``) — what one process can push through the SDK row by row.
* ``sdk_columns_acked_eps``: the same through ``publish_columns`` (simulator/replay path).
* ``generate_eps``: simulator rows per second (predictions + labels), no Kafka.
* ``murmur2_scalar_us`` / ``murmur2_vector_us``: per uuid-hex key.
* ``replay_rows_per_s``: a 1M-row Parquet file replayed to the broker (bounded memory).
"""

from __future__ import annotations

import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.table import Table

from modelwatch.broker import EmbeddedBroker
from producers.partitioner import partition_for, partitions_for
from producers.replay import ReplaySpec, replay
from producers.sdk import ModelwatchPublisher
from producers.simulator.model import generate
from producers.simulator.scenario import Scenario
from schemas.topics import TopicNames


def _rows(n: int) -> list[tuple[dict[str, float], dict[str, str]]]:
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(n, 20))
    cats = ["a", "b", "c", "d"]
    return [
        (
            {f"num_{j}": float(vals[i, j]) for j in range(20)},
            {f"cat_{j}": cats[(i + j) % 4] for j in range(5)},
        )
        for i in range(n)
    ]


def bench_sdk_rows(bootstrap: str, topics: TopicNames, n: int) -> dict[str, float]:
    rows = _rows(n)
    with ModelwatchPublisher(
        bootstrap,
        "bench-sdk",
        "v1",
        topics=topics,
        registry=CollectorRegistry(),
        max_buffered_events=n + 1,
    ) as pub:
        t0 = time.perf_counter()
        for num, cat in rows:
            pub.publish_prediction(numeric=num, categorical=cat, score=0.5, latency_ms=12.0)
        calls = time.perf_counter() - t0
        left = pub.flush(120)
        acked = time.perf_counter() - t0
        published, dropped = pub.published.get("prediction", 0), sum(pub.dropped.values())
    return {
        "sdk_events": n,
        "sdk_call_us": calls / n * 1e6,
        "sdk_calls_eps": n / calls,
        "sdk_acked_eps": published / acked,
        "sdk_unacked": left,
        "sdk_dropped": dropped,
    }


def bench_sdk_columns(bootstrap: str, topics: TopicNames, n: int) -> dict[str, float]:
    batches = [p for p, _ in generate(Scenario(), n, 1, labels=False) if p is not None]
    with ModelwatchPublisher(
        bootstrap,
        "bench-cols",
        "v1",
        topics=topics,
        registry=CollectorRegistry(),
        max_buffered_events=n + 1,
    ) as pub:
        t0 = time.perf_counter()
        for b in batches:
            pub.publish_columns(b)
        pub.flush(120)
        acked = time.perf_counter() - t0
        published = pub.published.get("prediction", 0)
    return {"sdk_columns_acked_eps": published / acked, "sdk_columns_published": published}


def bench_generate(n: int) -> dict[str, float]:
    sc = Scenario.load("default")
    t0 = time.perf_counter()
    preds = labels = 0
    for p, lab in generate(sc, n, 0):
        preds += 0 if p is None else p.n
        labels += 0 if lab is None else lab.n
    dt = time.perf_counter() - t0
    return {"generate_eps": preds / dt, "generate_labels": labels}


def bench_murmur2(n: int = 200_000) -> dict[str, float]:
    keys = [uuid.uuid4().hex for _ in range(n)]
    t0 = time.perf_counter()
    for k in keys[:50_000]:
        partition_for(k, 4)
    scalar = (time.perf_counter() - t0) / 50_000
    t0 = time.perf_counter()
    partitions_for(keys, 4)
    vector = (time.perf_counter() - t0) / n
    return {"murmur2_scalar_us": scalar * 1e6, "murmur2_vector_us": vector * 1e6}


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def bench_replay(bootstrap: str, topics: TopicNames, n: int) -> dict[str, float]:
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.parquet"
        table = pa.table(
            {
                "id": pa.array(np.arange(n).astype(str)),
                "ts": 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 10,
                **{f"f{j}": rng.normal(size=n) for j in range(20)},
                **{f"c{j}": rng.choice(["x", "y", "z"], n) for j in range(5)},
                "score": rng.random(n),
                "label": rng.integers(0, 2, n),
            }
        )
        pq.write_table(table, path, row_group_size=100_000)
        del table
        spec = ReplaySpec(id_col="id", time_col="ts", prediction_col="score", label_col="label")
        rss0 = _rss_mb()
        peak = [rss0]
        with ModelwatchPublisher(
            bootstrap, "bench-replay", "v1", topics=topics, registry=CollectorRegistry()
        ) as pub:
            t0 = time.perf_counter()
            stats = replay(pub, path, spec, on_progress=lambda _s: peak.append(_rss_mb()))
            pub.flush(300)
            dt = time.perf_counter() - t0
            published = pub.published
    return {
        "replay_rows": stats.rows,
        "replay_rows_per_s": stats.rows / dt,
        "replay_published_predictions": published.get("prediction", 0),
        "replay_published_labels": published.get("label", 0),
        "replay_rss_growth_mb": max(peak) - rss0,
    }


def main(n_events: int = 200_000, replay_rows: int = 1_000_000) -> dict[str, Any]:
    results: dict[str, Any] = {}
    results.update(bench_murmur2())
    results.update(bench_generate(500_000))
    topics = TopicNames()
    with EmbeddedBroker(partitions=4, topics=topics) as broker:
        results.update(bench_sdk_rows(broker.bootstrap, topics, n_events))
        results.update(bench_sdk_columns(broker.bootstrap, topics, n_events))
        results.update(bench_replay(broker.bootstrap, topics, replay_rows))
    table = Table(title="producers: SDK / simulator / replay")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in results.items():
        table.add_row(k, f"{v:,.2f}" if isinstance(v, float) else f"{v:,}")
    Console().print(table)
    return results


if __name__ == "__main__":
    main()
