"""A closing step's progress counts only once all of its partials are read.

A partition that closes many windows in one step (a backlog, a replay: one input record
spans hours) sends one partial per window. When each of them carried the step's boundary,
the merge book learnt from the step's *first* partial that the partition had passed every
window of the step, and a merge poll between two of its records made the step's other
windows final without the partition's partials (measured in a backtest: 8 drift windows a
quarter short in 1 of 6 replays; the partials that came next were dropped as late)."""

from __future__ import annotations

import numpy as np

from schemas.columnar import PredictionColumns
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.engine import DriftEngine
from stream_jobs.merge.book import MergeBook
from stream_jobs.merge.protocol import PartialRecord

WINDOW_MS = 10_000


def batch(t0: int, n: int, step_ms: int = 100) -> PredictionColumns:
    t = t0 + np.arange(n, dtype=np.int64) * step_ms
    rng = np.random.default_rng(t0)
    return PredictionColumns("m", "1", [f"{t0}-{i}" for i in range(n)], t, np.full(n, 5.0),
                             np.zeros(n, np.int8), numeric={"x": rng.normal(size=n)})  # fmt: skip


def partials(partitions: int) -> list[PartialRecord]:
    """Each partition's first record spans 8 windows and closes 7 of them in one step (its
    clock passes their ends), a second record closes the 8th; the partitions' records in
    partition order, as one drain sends them."""
    engine = DriftEngine(DriftConfig(window_ms=WINDOW_MS, allowed_lateness_ms=1_000,
                                     detectors=False))  # fmt: skip
    engine.input_partitions = partitions
    for p in range(partitions):
        engine.observe(p, 0, batch(p * 7, 800))  # 0 .. 80 s
        engine.observe(p, 1, batch(100_000 + p, 1))
    return [r for r in engine.drain_partials() if r.kind == "drift"]


def test_a_step_says_how_far_its_partition_got_on_its_last_record_only() -> None:
    recs = [r for r in partials(1) if not r.is_marker]
    assert len(recs) == 8
    assert [r.progress_ms for r in recs] == [-1] * 6 + [70_000, 90_000]


def test_a_merge_poll_between_the_records_of_a_step_never_finalises_a_window_short() -> None:
    recs = partials(3)
    book = MergeBook(wait_s=1e9)  # no timeout: only completeness makes a window final
    finals = []
    for i, r in enumerate(recs):
        book.add(r, i)
        finals += book.ready(0.0)  # a poll after every record
    assert len(finals) == 8
    for key, parts, complete in finals:
        assert complete
        assert [p.partition for p in parts] == [0, 1, 2], key
