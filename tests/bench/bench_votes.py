"""Votes bench: what deciding online-detector votes in event time costs in delay.

Run: ``python -m tests.bench.run_all bench_votes`` (``main()`` returns the figures; about a
minute). Figures only, no timing asserts.

Protocol: the Gaussian scenarios of :mod:`tests.bench.bench_drift` (``PRE`` undisturbed
events then ``POST`` shifted ones on ``f2``, 1,000 events/s of event time, spread at random
over 8 partitions) fed round by round to a :class:`~stream_jobs.drift.engine.DriftEngine`
with default settings (one-minute windows, 10 s allowed lateness, majority quorum); after
every round the in-process merge is polled for online detections, as a worker's merge stage
polls. Per detection on the changed column at or after the change:

- ``stamped``: events from the change to the detection's event time (what it reports);
- ``emitted``: events from the change to the newest event time fed when the detection came
  out (when it is known) — the quorum waits for every partition's window progress.

Median over ``RUNS`` seeds. The same module runs against an older tree (it only uses
``DriftEngine.poll_detector_firings``) to compare with the arrival-order quorum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stream_jobs.drift import DriftConfig, DriftEngine
from tests.bench.bench_drift import PARTITIONS, PRE, RATE, RUNS, scenarios, split

CHANGE_MS = PRE * 1000 // RATE


def run_one(make: Any, subject: str, seed: int) -> dict[str, Any]:
    ref, batches = make(seed)
    engine = DriftEngine(DriftConfig())
    engine.set_reference(ref)
    rng = np.random.default_rng(seed)
    offsets = [0] * PARTITIONS
    fed_ms = -1
    hits: list[tuple[int, int]] = []  # (detection event time, newest event time fed)
    false_alarms = 0
    for cols in batches:
        part = rng.integers(0, PARTITIONS, cols.n)
        for p in range(PARTITIONS):
            engine.observe(p, offsets[p], split(cols, part, p))
            offsets[p] += 1
        fed_ms = max(fed_ms, int(cols.event_time_ms.max()))
        engine.poll_closed()
        for d in engine.poll_detector_firings():
            if d.subject == subject and d.event_time_ms >= CHANGE_MS:
                hits.append((d.event_time_ms, fed_ms))
            else:
                false_alarms += 1
    engine.flush()
    for d in engine.poll_detector_firings():
        if d.subject == subject and d.event_time_ms >= CHANGE_MS:
            hits.append((d.event_time_ms, fed_ms))
    if not hits:
        return {"stamped": None, "emitted": None, "false_alarms": false_alarms}
    t, fed = hits[0]
    return {
        "stamped": (t - CHANGE_MS) * RATE // 1000,
        "emitted": (fed - CHANGE_MS) * RATE // 1000,
        "false_alarms": false_alarms,
    }


def main() -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(f"online votes, {PARTITIONS} partitions, majority quorum, {RUNS} seeds "
          "(delay in events from the change, median)")  # fmt: skip
    print(f"{'scenario':<22} {'stamped':>9} {'emitted':>9} {'misses':>7} {'false al.':>9}")
    for sc in scenarios()[1:5]:
        runs = [run_one(sc.make, sc.subject, seed) for seed in range(RUNS)]
        got = [r for r in runs if r["stamped"] is not None]
        row = {
            "stamped_median": float(np.median([r["stamped"] for r in got])) if got else None,
            "emitted_median": float(np.median([r["emitted"] for r in got])) if got else None,
            "misses": len(runs) - len(got),
            "false_alarms": sum(r["false_alarms"] for r in runs),
        }
        out[sc.name] = row
        print(f"{sc.name:<22} {row['stamped_median']!s:>9} {row['emitted_median']!s:>9} "
              f"{row['misses']:>7} {row['false_alarms']:>9}")  # fmt: skip
    return out


if __name__ == "__main__":
    main()
