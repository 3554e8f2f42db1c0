"""Run a scenario against Kafka: generate batches, pace them to wall time, publish them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from producers.replay import publish_with_backpressure
from producers.sdk import ModelwatchPublisher
from producers.simulator.model import generate
from producers.simulator.scenario import Scenario


@dataclass
class RunStats:
    predictions: int = 0
    labels: int = 0
    wall_s: float = 0.0
    event_span_s: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)


def run_scenario(
    publisher: ModelwatchPublisher,
    scenario: Scenario,
    *,
    n_events: int | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
    speedup: float | None = None,
    seed: int = 0,
    labels: bool = True,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[RunStats], None] | None = None,
) -> RunStats:
    """Publish the scenario's traffic through ``publisher``; return what was sent.

    ``rate`` is events per wall-clock second (0 = as fast as possible; event time then
    still advances as if at the scenario's rate), ``speedup`` how much faster event time
    runs than wall time, ``duration_s`` a wall-clock limit. Event time starts now. When the
    publisher's buffer is full the runner waits (back-pressure) rather than drop.
    """
    rate = scenario.rate if rate is None else rate
    speedup = scenario.speedup if speedup is None else speedup
    paced = rate > 0
    nominal_rate = rate if paced else scenario.rate
    batch = int(min(10_000, max(50, nominal_rate * 0.05))) if paced else 10_000
    start_ms = int(time.time() * 1000)
    t0 = time.monotonic()
    event_limit = None if duration_s is None else duration_s * speedup if paced else None
    stats = RunStats()
    for preds, labs in generate(
        scenario,
        n_events,
        seed,
        batch_size=batch,
        start_ms=start_ms,
        model=publisher.model,
        version=publisher.model_version,
        labels=labels,
        rate=nominal_rate,
        speedup=speedup,
        duration_s=event_limit,
    ):
        if should_stop() or (duration_s is not None and time.monotonic() - t0 > duration_s):
            break
        last_ms = None
        if preds is not None:
            last_ms = int(preds.event_time_ms[-1])
        elif labs is not None and paced:
            last_ms = None  # the final drain: publish at once
        if paced and last_ms is not None:
            due = t0 + (last_ms - start_ms) / 1000.0 / speedup
            while not should_stop():
                wait = due - time.monotonic()
                if wait <= 0:
                    break
                time.sleep(min(wait, 0.2))
        if preds is not None:
            stats.predictions += publish_with_backpressure(publisher, preds, should_stop)
            stats.event_span_s = (int(preds.event_time_ms[-1]) - start_ms) / 1000.0
        if labs is not None:
            stats.labels += publish_with_backpressure(publisher, labs, should_stop)
        stats.wall_s = time.monotonic() - t0
        if on_batch is not None:
            on_batch(stats)
    stats.wall_s = time.monotonic() - t0
    stats.dropped = publisher.dropped
    return stats
