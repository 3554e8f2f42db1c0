"""Scale-out: three workers on six partitions give the answer one worker gives, a SIGKILL
included. Every closed drift window on window-stats carries exactly the events of the input
that belong to it (ground truth computed from the input), appears once, and its verdicts
equal a single-worker run's on the same input."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.support.processes import WorkerProcess, wait_for
from tests.support.scale import (
    Workload,
    make_workload,
    prepare_topics,
    publish,
    publish_reference_to,
    worker_env,
)
from tests.support.topics import read_topic

pytestmark = pytest.mark.integration
PARTITIONS = 6


def _worker(bootstrap: str, tmp: Path, prefix: str, group: str, i: int, w: Workload):
    env = worker_env(prefix, w, str(tmp / f"data-{group}-{i}"))
    proc = WorkerProcess(bootstrap, tmp, group, extra_env=env)
    proc.log_path = tmp / f"worker-{group}-{i}.log"
    return proc


def _stats(bootstrap: str, topics, model: str) -> list[dict]:
    return read_topic(bootstrap, topics.window_stats, model, "WindowStats")


def _run(bootstrap: str, tmp: Path, w: Workload, n_workers: int, kill: bool) -> list[dict]:
    prefix = f"t{uuid.uuid4().hex[:6]}."
    topics = prepare_topics(bootstrap, prefix, PARTITIONS)
    publish_reference_to(bootstrap, topics, w.model)
    group = f"scale-{n_workers}-{uuid.uuid4().hex[:6]}"
    workers = [_worker(bootstrap, tmp, prefix, group, i, w) for i in range(n_workers)]
    expected = w.closed(PARTITIONS)
    got: list[dict] = []
    try:
        for proc in workers:
            proc.start()
        for proc in workers:
            proc.wait_ready(60)
        time.sleep(3)  # the reference feed reads the references topic from the start
        first = len(w.batches) // 3
        publish(bootstrap, topics, w, w.batches[:first])
        if kill:
            wait_for(lambda: len(_stats(bootstrap, topics, w.model)) >= 2, 180, "first windows")
            workers[1].kill()  # SIGKILL: no flush, no commit
            publish(bootstrap, topics, w, w.batches[first : 2 * first])
            time.sleep(2)
            workers[1] = _worker(bootstrap, tmp, prefix, group, 1, w).start()  # same data dir
            workers[1].wait_ready(60)
            publish(bootstrap, topics, w, w.batches[2 * first :])
        else:
            publish(bootstrap, topics, w, w.batches[first:])

        def all_final() -> bool:
            got[:] = _stats(bootstrap, topics, w.model)
            return {s["window_start_ms"] for s in got} >= expected

        try:
            wait_for(all_final, 300, f"{len(expected)} final windows")
        except AssertionError as exc:
            logs = "\n".join(p.log_tail(30) for p in workers)
            seen = sorted(s["window_start_ms"] for s in got)
            raise AssertionError(f"{exc}\n{seen}\n{logs}") from exc
        time.sleep(3)  # anything emitted twice would show up now
        got[:] = _stats(bootstrap, topics, w.model)
    finally:
        for proc in workers:
            proc.stop()
    return got


def _verdicts(stats: list[dict]) -> dict[int, dict[str, bool]]:
    return {s["window_start_ms"]: {v["column"]: v["drifted"] for v in s["drift"]} for s in stats}


def test_three_workers_and_a_sigkill_give_one_workers_answer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    window_ms = 10_000
    start = (int(time.time() * 1000) // window_ms - 200) * window_ms
    w = make_workload(f"scale-{uuid.uuid4().hex[:6]}", start, window_ms=window_ms)
    truth = w.truth()
    expected = w.closed(PARTITIONS)
    assert len(expected) >= 10

    many = _run(kafka_bootstrap, tmp_path, w, n_workers=3, kill=True)
    starts = [s["window_start_ms"] for s in many]
    assert sorted(starts) == sorted(set(starts)), "a window was emitted more than once"
    assert set(starts) <= set(truth)
    assert expected <= set(starts)
    wrong = {s["window_start_ms"]: (s["count"], truth[s["window_start_ms"]]) for s in many
             if s["count"] != truth[s["window_start_ms"]]}  # fmt: skip
    assert not wrong, f"windows with counts != ground truth (got, truth): {wrong}"
    assert all(s["late_events"] == 0 for s in many)

    one = _run(kafka_bootstrap, tmp_path, w, n_workers=1, kill=False)
    assert {s["window_start_ms"]: s["count"] for s in one} == {
        s["window_start_ms"]: s["count"] for s in many
    }
    v_one, v_many = _verdicts(one), _verdicts(many)
    assert v_many == v_one
    shift = start + 6 * window_ms
    assert any(v.get("x0") for t, v in v_many.items() if t >= shift)  # the shift is seen
    assert not any(any(v.values()) for t, v in v_many.items() if t + window_ms <= shift)
