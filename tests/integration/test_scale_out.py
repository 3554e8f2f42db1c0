"""Scale-out: three workers on six partitions give the answer one worker gives, a SIGKILL
included, labels on. Every closed drift window on window-stats carries exactly the events of
the input that belong to it, and every closed performance window exactly the labels that
belong to it (ground truth computed from the input); each appears once, and the verdicts
and metrics equal a single-worker run's on the same input.

The worker killed is the one merging the model's windows (the owner of its partials
partition), right after the first performance windows appear: the hardest moment, finals
on window-stats whose snapshot may not be stored yet (the restarted owner must not emit
them again)."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from producers.partitioner import partition_for
from schemas.kafka import read_to_end
from stream_jobs.performance.merger import decode_payload
from tests.support.groups import wait_group_done
from tests.support.processes import WorkerProcess, sample, wait_for
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


def _merge_owner(workers: list, topic: str, q: int) -> int:
    """Index of the worker whose latest assignment of ``topic`` holds partition ``q``."""
    pattern = re.compile(rf"assigned {re.escape(topic)} \[([\d, ]*)\]")
    owners = []
    for i, proc in enumerate(workers):
        found = pattern.findall(proc.log_path.read_text(errors="replace"))
        if found and q in {int(x) for x in found[-1].split(",") if x.strip()}:
            owners.append(i)
    assert len(owners) == 1, f"partials partition {q} owned by workers {owners}"
    return owners[0]


def _stats(bootstrap: str, topics, model: str) -> list[dict]:
    return read_topic(bootstrap, topics.window_stats, model, "WindowStats")


def _partials_report(bootstrap: str, topics, w: Workload, wrong: set[int]) -> str:
    """Performance partials of the windows in ``wrong``: joined labels per partition (every
    copy on the partials topic) against the partition's ground truth."""
    truth = w.label_truth_by_partition(PARTITIONS)
    lines = []
    for rec in read_topic(bootstrap, topics.window_partials, w.model, "WindowPartial"):
        if rec["kind"] != "performance" or not rec["payload"]:
            continue
        if rec["window_start_ms"] in wrong:
            win, _ = decode_payload(bytes(rec["payload"]))
            key = (rec["window_start_ms"], rec["partition"])
            lines.append(f"window {key[0]} partition {key[1]} offset {rec['input_offset']}: "
                         f"{win.n_joined} joined of {truth.get(key, 0)}")  # fmt: skip
    return "performance partials short of ground truth:\n" + "\n".join(sorted(lines))


def _split(stats: list[dict]) -> tuple[list[dict], list[dict]]:
    """(drift parts, performance parts) of window-stats records."""
    drift = [s for s in stats if s["features"]]
    perf = [s for s in stats if not s["features"] and s["performance"]]
    return drift, perf


def _run(bootstrap: str, tmp: Path, w: Workload, n_workers: int, kill: bool,
         reports: list[str]) -> list[dict]:  # fmt: skip
    """Window-stats records of the model; partitions' performance partials short of ground
    truth are described in ``reports``."""
    prefix = f"t{uuid.uuid4().hex[:6]}."
    label_truth = w.label_truth() if w.labels is not None else {}
    topics = prepare_topics(bootstrap, prefix, PARTITIONS)
    publish_reference_to(bootstrap, topics, w.model)
    group = f"scale-{n_workers}-{uuid.uuid4().hex[:6]}"
    workers = [_worker(bootstrap, tmp, prefix, group, i, w) for i in range(n_workers)]
    expected = w.closed(PARTITIONS)
    expected_perf = w.performance_closed(PARTITIONS)
    got: list[dict] = []
    try:
        for proc in workers:
            proc.start()
        for proc in workers:
            proc.wait_ready(60)
        # the reference feed reads the references topic from the start
        references = len(read_to_end(bootstrap, topics.references))
        for proc in workers:
            wait_for(lambda p=proc: sample(p.scrape(), "modelwatch_references_total")
                     >= references, 60, f"{references} references loaded")  # fmt: skip
        first = len(w.batches) // 3
        publish(bootstrap, topics, w, slice(0, first))
        if kill:

            def first_windows() -> bool:  # drift and performance windows under way
                drift, perf = _split(_stats(bootstrap, topics, w.model))
                return len(drift) >= 2 and len(perf) >= 1

            wait_for(first_windows, 180, "first windows")
            q = partition_for(w.model, PARTITIONS)  # partials are keyed by model
            k = _merge_owner(workers, topics.window_partials, q)
            workers[k].kill()  # SIGKILL: no flush, no commit
            publish(bootstrap, topics, w, slice(first, 2 * first))
            workers[k] = _worker(bootstrap, tmp, prefix, group, k, w).start()  # same data dir
            workers[k].wait_ready(60)
            publish(bootstrap, topics, w, slice(2 * first, None))
        else:
            publish(bootstrap, topics, w, slice(first, None))

        def all_final() -> bool:
            got[:] = _stats(bootstrap, topics, w.model)
            drift, perf = _split(got)
            return ({s["window_start_ms"] for s in drift} >= expected
                    and {s["window_start_ms"] for s in perf} >= expected_perf)  # fmt: skip

        try:
            wait_for(all_final, 300, f"{len(expected)} + {len(expected_perf)} final windows")
            # every input record committed (outputs are stored before their input is
            # committed): anything emitted twice would show up by now
            inputs = [topics.predictions, topics.labels, topics.window_partials]
            wait_group_done(bootstrap, group, inputs, 120, "every record")
            got[:] = _stats(bootstrap, topics, w.model)
            _, perf = _split(got)
            wrong = {s["window_start_ms"] for s in perf
                     if s["performance"]["labels_joined"] != label_truth[s["window_start_ms"]]}
            if wrong:  # which partitions' partials were short, and which worker sent them
                reports.append(_partials_report(bootstrap, topics, w, wrong))
        except AssertionError as exc:
            logs = "\n".join(p.log_tail(30) for p in workers)
            seen = [sorted(s["window_start_ms"] for s in half) for half in _split(got)]
            raise AssertionError(f"{exc}\n{seen}\n{logs}") from exc
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
    w = make_workload(f"scale-{uuid.uuid4().hex[:6]}", start, window_ms=window_ms, labels=True)
    truth = w.truth()
    expected = w.closed(PARTITIONS)
    assert len(expected) >= 10
    label_truth = w.label_truth()
    expected_perf = w.performance_closed(PARTITIONS)
    assert len(expected_perf) >= 10

    reports: list[str] = []
    stats_many = _run(kafka_bootstrap, tmp_path, w, n_workers=3, kill=True, reports=reports)
    many, perf_many = _split(stats_many)
    assert len(many) + len(perf_many) == len(stats_many)
    perf_wrong = _check_performance(perf_many, truth, label_truth, expected_perf)
    _assert_once(many, perf_many)
    starts = [s["window_start_ms"] for s in many]
    assert set(starts) <= set(truth)
    assert expected <= set(starts)
    wrong = {s["window_start_ms"]: (s["count"], truth[s["window_start_ms"]]) for s in many
             if s["count"] != truth[s["window_start_ms"]]}  # fmt: skip
    assert not wrong, f"windows with counts != ground truth (got, truth): {wrong}"
    assert all(s["late_events"] == 0 for s in many)

    one, perf_one = _split(_run(kafka_bootstrap, tmp_path, w, n_workers=1, kill=False,
                                reports=reports))  # fmt: skip
    assert {s["window_start_ms"]: s["count"] for s in one} == {
        s["window_start_ms"]: s["count"] for s in many
    }
    perf_wrong_one = _check_performance(perf_one, truth, label_truth, expected_perf)
    _assert_once(one, perf_one)
    v_one, v_many = _verdicts(one), _verdicts(many)
    assert v_many == v_one
    shift = start + 6 * window_ms
    assert any(v.get("x0") for t, v in v_many.items() if t >= shift)  # the shift is seen
    assert not any(any(v.values()) for t, v in v_many.items() if t + window_ms <= shift)
    assert not perf_wrong and not perf_wrong_one, (
        "performance windows whose joined labels or predictions differ from ground truth "
        f"(3 workers: {perf_wrong}; 1 worker: {perf_wrong_one})\n" + "\n".join(reports)
    )
    assert _performance(perf_one) == _performance(perf_many)


def _assert_once(drift: list[dict], perf: list[dict]) -> None:
    """Each window emitted once as final on window-stats, in each half."""
    twice = {(half, t): n for half, parts in (("drift", drift), ("performance", perf))
             for t, n in Counter(s["window_start_ms"] for s in parts).items() if n > 1}  # fmt: skip
    assert not twice, f"windows emitted more than once as final ((half, start): times): {twice}"


def _check_performance(
    perf: list[dict], truth: dict[int, int], label_truth: dict[int, int], expected: set[int]
) -> dict[int, tuple]:
    """Every closed performance window is there (asserted); the windows whose joined labels
    or predictions differ from ground truth (returned: start -> (got, truth))."""
    starts = [s["window_start_ms"] for s in perf]
    assert expected <= set(starts) <= set(label_truth)
    wrong: dict[int, tuple] = {}
    for s in perf:
        t, p = s["window_start_ms"], s["performance"]
        got, want = (p["labels_joined"], p["predictions"]), (label_truth[t], truth[t])
        if got != want:
            wrong[t] = (got, want)
    return wrong


def _performance(perf: list[dict]) -> dict[int, tuple[float, float]]:
    return {
        s["window_start_ms"]: (s["performance"]["labels_joined"],
                               round(s["performance"]["accuracy"], 12))
        for s in perf
    }  # fmt: skip
