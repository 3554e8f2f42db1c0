"""Hostile records published to a running worker, evaluator and notifier.

Each process must be the same pid afterwards; every hostile record must be dead-lettered
or counted with a reason (never lost in between, never a ``processing`` dead letter that
means an exception was merely caught); then a clean replay is counted exactly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from modelwatch.broker import create_topics, free_port
from modelwatch.live_view import scrape
from schemas.codec import DecodeError, default_codec
from schemas.columnar import PredictionColumns
from schemas.kafka import read_to_end as read_topic
from schemas.topics import TopicNames
from stream_jobs.decode import RejectedRecord, decode_labels, decode_predictions
from tests.support.groups import wait_group_done
from tests.support.hostile import Hostile
from tests.support.processes import ModelwatchProcess, WorkerProcess, healthz, sample, wait_for

pytestmark = pytest.mark.integration
PER_TOPIC = 300
codec = default_codec()


def _publish(bootstrap: str, topic: str, values: list[bytes | None], keys: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, key=keys[i % len(keys)], value=value)
    assert producer.flush(30) == 0


def _accepts(decode: Callable[..., object], value: bytes | None) -> bool:
    try:
        decode(codec, value)
    except RejectedRecord:
        return False
    return True


def _dead_lettered(bootstrap: str, dead_letter_topic: str, source: str) -> set[tuple[int, int]]:
    out = set()
    for rec in read_topic(bootstrap, dead_letter_topic):
        dl = codec.decode(rec.value, expect=("DeadLetter",)).record
        if dl["source_topic"] == source:
            out.add((dl["source_partition"], dl["source_offset"]))
    return out


def _decodes(value: bytes | None, names: tuple[str, ...]) -> bool:
    try:
        codec.decode(value, expect=names)
    except DecodeError:
        return False
    return True


class Service(ModelwatchProcess):
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__([*args, "--metrics-port", str(self.port)], env, log)

    def metrics(self) -> dict:
        return scrape(f"http://127.0.0.1:{self.port}/metrics")


def test_hostile_records_never_stop_a_process_and_a_clean_replay_counts_exactly(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"h{uuid.uuid4().hex[:8]}."
    topics = TopicNames.with_prefix(prefix)
    create_topics(kafka_bootstrap, topics.specs(4))
    env = {"MODELWATCH_BOOTSTRAP": kafka_bootstrap, "MODELWATCH_TOPIC_PREFIX": prefix,
           "MODELWATCH_METRICS_HOST": "127.0.0.1", "MODELWATCH_DATA_DIR": str(tmp_path / "d")}
    worker = WorkerProcess(kafka_bootstrap, tmp_path, f"w-{uuid.uuid4().hex[:6]}",
                           {"MODELWATCH_TOPIC_PREFIX": prefix})
    evaluator = Service(["evaluate", "--group-id", f"e-{uuid.uuid4().hex[:6]}"], env,
                        tmp_path / "evaluator.log")
    notifier = Service(["notify", "--group-id", f"n-{uuid.uuid4().hex[:6]}",
                        "--state-dir", str(tmp_path / "notify")], env, tmp_path / "notifier.log")
    with worker, evaluator, notifier:
        worker.wait_ready(60)
        for svc in (evaluator, notifier):
            wait_for(lambda s=svc: s.metrics() is not None, 60, f"{svc.args[0]} /metrics")
        pids = {p.args[0]: p.proc.pid for p in (worker, evaluator, notifier)}  # type: ignore[union-attr]

        gen = Hostile(seed=4242, now_ms=int(time.time() * 1000))
        sent = {t: [gen.payload(t) for _ in range(PER_TOPIC)]
                for t in ("predictions", "labels", "references", "detections", "alerts")}
        silence_keys = [b"s1", b"\xff\xfe", b"s\r\n2", b"x" * 5000]
        sent["silences"] = [gen.payload("silences") for _ in range(PER_TOPIC)]
        keys = [b"k1", b"k2", b"\xff\xfe", b"x" * 2000]
        for name, values in sent.items():
            _publish(kafka_bootstrap, getattr(topics, name), values,
                     silence_keys if name == "silences" else keys)

        # the worker: every record of predictions and labels is either processed (counted)
        # or dead-lettered at its own position; nothing was only caught by the catch-all
        for name, decode in (("predictions", decode_predictions), ("labels", decode_labels)):
            topic = getattr(topics, name)
            records = read_topic(kafka_bootstrap, topic)
            assert len(records) == PER_TOPIC
            rejected = {(r.partition, r.offset) for r in records if not _accepts(decode, r.value)}
            wait_for(lambda t=topic, n=PER_TOPIC - len(rejected): sample(
                worker.scrape(), "modelwatch_batches_processed_total", topic=t) == n,
                120, f"{topic}: every decodable record processed")
            lettered = _dead_lettered(kafka_bootstrap, topics.dead_letter, topic)
            assert rejected <= lettered, sorted(rejected - lettered)[:5]
        m = worker.scrape()
        assert sample(m, "modelwatch_dead_letters_total", error_kind="processing") == 0
        assert sample(m, "modelwatch_dead_letters_total", error_kind="invalid") > 0
        references = sum(v is not None for v in sent["references"])
        wait_for(lambda: sample(worker.scrape(), "modelwatch_references_total") == references,
                 60, "every reference loaded or rejected")
        assert sample(worker.scrape(), "modelwatch_references_total", outcome="rejected") > 0

        # the evaluator: every detection ok or invalid (dead-lettered), none an error; the
        # worker publishes detections of its own, so "ok" counts at least the valid ones
        def detections(outcome: str) -> float:
            return sample(evaluator.metrics(), "modelwatch_evaluator_detections_total",
                          outcome=outcome)

        bad = sum(not _decodes(v, ("Detection",)) for v in sent["detections"])
        try:
            wait_for(lambda: detections("invalid") == bad
                     and detections("ok") >= PER_TOPIC - bad, 120, "every detection evaluated")
        except AssertionError:
            outcomes = {o: detections(o) for o in ("ok", "invalid", "error")}
            raise AssertionError(f"detections by outcome {outcomes}, {bad} of {PER_TOPIC} "
                                 f"undecodable\n{evaluator.log_tail()}") from None
        assert detections("error") == 0

        # the notifier: every undecodable alert dead-lettered with its reason
        bad_alerts = sum(not _decodes(v, ("AlertEvent",)) for v in sent["alerts"])
        wait_for(lambda: sample(notifier.metrics(), "modelwatch_notifier_rejected_total",
                                error_kind="decode") == bad_alerts, 120,
                 "every undecodable alert dead-lettered")

        # a clean replay is counted exactly
        model = f"clean-{uuid.uuid4().hex[:6]}"
        now = int(time.time() * 1000)
        clean = []
        for b in range(20):
            cols = PredictionColumns(
                model, "1", [f"{model}-{b}-{i}" for i in range(50)],
                np.full(50, now - 1000, dtype=np.int64), np.full(50, 5.0),
                np.zeros(50, dtype=np.int8),
                numeric={"x": np.random.default_rng(b).normal(size=50)},
            )
            clean.append(codec.encode("PredictionBatch", cols.to_record()))
        _publish(kafka_bootstrap, topics.predictions, clean, [b"c1", b"c2", b"c3", b"c4"])
        wait_for(lambda: sample(worker.scrape(), "modelwatch_predictions_total", model=model)
                 == 1000, 120, "the clean replay counted")
        # committed to the end: a record counted twice would have been counted by now
        wait_group_done(kafka_bootstrap, worker.group_id, [topics.predictions], 60,
                        "the clean replay")
        assert sample(worker.scrape(), "modelwatch_predictions_total", model=model) == 1000

        for proc in (worker, evaluator, notifier):
            assert proc.alive(), f"{proc.args[0]} died:\n{proc.log_tail()}"
            assert proc.proc.pid == pids[proc.args[0]]  # type: ignore[union-attr]
        assert healthz(worker.port)[0] == 200
