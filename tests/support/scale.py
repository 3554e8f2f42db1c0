"""A replayable drift workload with known windows, for scale-out tests and benches.

Rows are in event-time order with random prediction ids (so the SDK's murmur2 partitioner
spreads every window over every partition); feature ``x0`` shifts from ``shift_window`` on,
so windows before it are not drifted and windows after it are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from modelwatch.baseline import publish_reference
from modelwatch.broker import create_topics
from producers.partitioner import partitions_for
from producers.sdk import ModelwatchPublisher
from schemas.columnar import PredictionColumns
from schemas.topics import TopicNames
from stream_jobs.reference.profile import build_profile

FEATURES = 5


@dataclass
class Workload:
    model: str
    start_ms: int
    window_ms: int
    lateness_ms: int
    batches: list[PredictionColumns]

    @property
    def events(self) -> int:
        return sum(b.n for b in self.batches)

    def truth(self) -> dict[int, int]:
        """Events per window start."""
        c: Counter[int] = Counter()
        for b in self.batches:
            starts, counts = np.unique(
                (b.event_time_ms // self.window_ms) * self.window_ms, return_counts=True
            )
            c.update(dict(zip(starts.tolist(), counts.tolist(), strict=True)))
        return dict(c)

    def closed(self, partitions: int) -> set[int]:
        """Window starts every partition has closed: ``end + lateness`` at or below the
        partition's maximum event time, for every partition."""
        clock = [-(2**62)] * partitions
        for b in self.batches:
            parts = partitions_for(b.prediction_ids, partitions)
            for p in range(partitions):
                sel = b.event_time_ms[parts == p]
                if sel.size:
                    clock[p] = max(clock[p], int(sel.max()))
        limit = min(clock) - self.lateness_ms
        return {s for s in self.truth() if s + self.window_ms <= limit}


def make_workload(
    model: str,
    start_ms: int,
    windows: int = 12,
    per_window: int = 8_000,
    window_ms: int = 10_000,
    lateness_ms: int = 2_000,
    shift_window: int = 6,
    batch: int = 2_000,
    seed: int = 7,
) -> Workload:
    rng = np.random.default_rng(seed)
    n = windows * per_window
    t = start_ms + np.sort(rng.integers(0, windows * window_ms, n))
    x = {f"x{i}": rng.normal(0.0, 1.0, n) for i in range(FEATURES)}
    x["x0"] = x["x0"] + np.where(t >= start_ms + shift_window * window_ms, 1.5, 0.0)
    score = rng.random(n)
    ids = [f"{model}-{i}-{rng.integers(1 << 62)}" for i in range(n)]
    batches = []
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        batches.append(
            PredictionColumns(
                model, "v1", ids[lo:hi], t[lo:hi].astype(np.int64),
                np.full(hi - lo, 5.0), np.zeros(hi - lo, np.int8),
                numeric={k: v[lo:hi] for k, v in x.items()}, score=score[lo:hi],
            )
        )  # fmt: skip
    return Workload(model, start_ms, window_ms, lateness_ms, batches)


def one_id_per_partition(prefix: str, partitions: int) -> list[str]:
    """Prediction ids, the i-th of which the SDK's partitioner sends to partition i."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        key = f"{prefix}-{i}"
        found.setdefault(int(partitions_for([key], partitions)[0]), key)
        i += 1
    return [found[p] for p in range(partitions)]


def reference_for(model: str, n: int = 20_000, seed: int = 99) -> dict:
    rng = np.random.default_rng(seed)
    return build_profile(
        model, "", numeric={f"x{i}": rng.normal(0.0, 1.0, n) for i in range(FEATURES)},
        prediction=rng.random(n),
    )  # fmt: skip


def prepare_topics(bootstrap: str, prefix: str, partitions: int) -> TopicNames:
    topics = TopicNames.with_prefix(prefix)
    create_topics(bootstrap, topics.specs(partitions))
    return topics


def publish(bootstrap: str, topics: TopicNames, w: Workload, batches: list | None = None) -> None:
    with ModelwatchPublisher(bootstrap, w.model, "v1", topics=topics, linger_ms=20) as sdk:
        for b in w.batches if batches is None else batches:
            assert sdk.wait_for_room(b.n, timeout=60)
            assert sdk.publish_columns(b) == b.n
        assert sdk.flush(60) == 0


def publish_reference_to(bootstrap: str, topics: TopicNames, model: str) -> None:
    publish_reference(bootstrap, reference_for(model), topics)


def worker_env(prefix: str, w: Workload, data_dir: str) -> dict[str, str]:
    return {
        "MODELWATCH_TOPIC_PREFIX": prefix,
        "MODELWATCH_DATA_DIR": data_dir,
        "MODELWATCH_DRIFT__WINDOW_MS": str(w.window_ms),
        "MODELWATCH_DRIFT__ALLOWED_LATENESS_MS": str(w.lateness_ms),
        "MODELWATCH_DRIFT__IDLE_PARTITION_S": "300",
        "MODELWATCH_DRIFT__KSWIN": "false",
    }
