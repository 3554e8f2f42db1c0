"""One test per crash path of issue 10 that the fuzz test found or the issue measured."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from rich.console import Console

from alerting.grouping import Notification
from alerting.routes import RetryPolicy, Route, RoutesConfig
from alerting.sinks.base import post_json
from alerting.sinks.email import EmailSink
from alerting.sinks.log import LogSink
from alerting.sinks.slack import slack_payload
from schemas.codec import default_codec
from schemas.columnar import PredictionColumns
from stream_jobs.reference.profile import build_profile
from stream_jobs.reference_feed import ReferenceStage, check_reference
from tests.unit.test_fuzz_handlers import NOW_MS, Producer, Worker, evaluator  # noqa: F401

codec = default_codec()


def _prediction(**over: Any) -> dict[str, Any]:
    return {"prediction_id": "p1", "model": "m", "model_version": "1",
            "event_time_ms": NOW_MS - 1000, "numeric_features": {"x": 0.5},
            "categorical_features": {}, "score": 0.5, "predicted_class": None,
            "class_probabilities": None, "latency_ms": 5.0, "status": "ok",
            "error_type": None, "request_bytes": 100, "response_bytes": 10,
            "segments": {}, **over}


def _sample(reg: CollectorRegistry, name: str) -> float:
    return sum(s.value for m in reg.collect() for s in m.samples if s.name == name)


def test_request_bytes_minus_one_means_unknown_and_is_counted() -> None:
    worker = Worker()
    value = codec.encode("PredictionEvent", _prediction(request_bytes=-1, response_bytes=-1))
    assert worker.predictions.handle(b"p1", value, 0, 0, NOW_MS / 1000) == []
    assert _sample(worker.registry, "modelwatch_predictions_total") == 1
    assert _sample(worker.registry, "modelwatch_request_bytes_total") == 0


def test_a_prediction_far_ahead_is_dead_lettered_and_does_not_move_the_clock() -> None:
    worker = Worker()
    ahead = codec.encode("PredictionEvent", _prediction(event_time_ms=NOW_MS + 20 * 3_600_000))
    (dead,) = worker.predictions.handle(b"p1", ahead, 0, 0, NOW_MS / 1000)
    rec = codec.decode(dead.value).record
    assert rec["error_kind"] == "invalid" and "ahead of the worker clock" in rec["reason"]
    assert (rec["source_partition"], rec["source_offset"]) == (0, 0)
    assert _sample(worker.registry, "modelwatch_last_event_timestamp_seconds") == 0
    worker.poll(NOW_MS / 1000)
    # later, on-time events are on time: nothing counted late
    for i in range(1, 50):
        value = codec.encode("PredictionEvent", _prediction(event_time_ms=NOW_MS - 1000 + i))
        assert worker.predictions.handle(b"p", value, 0, i, NOW_MS / 1000) == []
    late = _sample(worker.registry, "modelwatch_late_events_total")
    assert late == 0


def test_history_replays_are_not_skew() -> None:
    worker = Worker()
    year_ago = NOW_MS - 365 * 86_400_000
    value = codec.encode("PredictionEvent", _prediction(event_time_ms=year_ago))
    assert worker.predictions.handle(b"p1", value, 0, 0, NOW_MS / 1000) == []


def test_a_label_at_the_end_of_time_is_rejected_before_any_state_changes() -> None:
    worker = Worker()
    label = {"prediction_id": "p1", "model": "m", "event_time_ms": 2**63 - 1,
             "label_value": None, "label_class": "1"}
    before = dict(worker.labels.engine.store.data)
    out = worker.label_handler.handle(b"p1", codec.encode("LabelEvent", label), 0, 0,
                                      NOW_MS / 1000)
    (dead,) = out
    assert codec.decode(dead.value).record["error_kind"] == "invalid"
    assert worker.labels.engine.store.data == before


def test_a_corrupt_reference_is_rejected_and_the_previous_stays_in_force() -> None:
    worker = Worker()
    rng = np.random.default_rng(0)
    good = build_profile("m", "", numeric={"x": rng.normal(size=2000)})
    bad = build_profile("m", "", numeric={"x": rng.normal(5, 1, size=2000)})
    raw = bytearray(bad["features"][0]["kll_sketch"])
    raw[20:24] = b"\xff\xff\xff\x7f"  # a level boundary far outside the sketch
    bad["features"][0]["kll_sketch"] = bytes(raw)

    class Feed:
        topic = "modelwatch.references"
        codec = default_codec()
        pending = [check_reference(codec, b"m/", codec.encode("ReferenceProfile", good), 0, 0),
                   check_reference(codec, b"m/", codec.encode("ReferenceProfile", bad), 0, 1)]

        def drain(self) -> list:
            out, self.pending = self.pending, []
            return out

        def alive(self) -> bool:
            return True

    reg = CollectorRegistry()
    stage = ReferenceStage(Feed(), [worker.drift.set_reference, worker.labels.set_reference],  # type: ignore[arg-type]
                           registry=reg)
    (dead,) = stage.poll(NOW_MS / 1000)
    rec = codec.decode(dead.value).record
    assert rec["source_offset"] == 1 and "reference rejected" in rec["reason"]
    ref = worker.drift.engine.reference("m", "1")
    assert ref is not None and abs(float(ref.columns["x"].mean)) < 0.2  # the good one
    assert reg.get_sample_value("modelwatch_references_total", {"outcome": "rejected"}) == 1
    assert reg.get_sample_value("modelwatch_references_total", {"outcome": "loaded"}) == 1


def _alert(**over: Any) -> dict[str, Any]:
    return {"alert_id": "a1", "fingerprint": "fp1", "model": "churn\r\nBcc: victim@example.com",
            "model_version": "1", "severity": "major", "status": "firing",
            "kind": "latency_slo", "subject": "[bold red]p99[/bold red] <!channel>",
            "detector": "p99", "value": float("inf"), "threshold": float("nan"),
            "window_start_ms": 0, "window_end_ms": 2**63 - 1, "detected_at_ms": 0,
            "fired_at_ms": 0, "resolved_at_ms": None, "summary": "<https://evil|click> &",
            "runbook_url": "javascript:alert(1)", "labels": {}, **over}


def _notification(route: Route | None = None) -> Notification:
    route = route or Route(name="r", sinks=("x",))
    a = _alert()
    return Notification(route, "r{}", {"model": a["model"]}, [a], [], {"fp1/firing": "k"}, 0)


def test_inf_and_nan_reach_a_webhook_as_json() -> None:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    post_json(client, "hook", "http://hook.example/x", {"value": float("inf"), "t": [np.nan]})
    assert seen == [{"value": "inf", "t": ["nan"]}]


def test_slack_text_is_escaped() -> None:
    body = json.dumps(slack_payload(_notification()))
    assert "<!channel>" not in body and "<https://evil" not in body
    assert "&lt;!channel&gt;" in body and "javascript:" not in body


def test_cr_lf_in_a_model_name_cannot_add_an_email_header() -> None:
    sink = EmailSink("mail", "127.0.0.1", 25, "mw@example.com", ["ops@example.com"])
    head = sink.message(_notification(Route(name="r\nX-Evil: 1", sinks=("x",)))).as_bytes()
    head = head.split(b"\n\n")[0]
    assert b"\nBcc:" not in head and b"\nX-Evil" not in head


def test_rich_markup_in_a_feature_name_prints_as_written() -> None:
    out = io.StringIO()
    LogSink("log", Console(file=out, width=200, color_system=None)).send(_notification())
    assert "[bold red]p99[/bold red]" in out.getvalue()


def test_a_sink_that_raises_is_dead_lettered_and_releases_the_offset(tmp_path) -> None:
    from alerting.notifier import Notifier
    from tests.support.ports import closed_port

    class Broken:
        name = "broken"

        def send(self, n: Notification) -> None:
            raise ValueError("Out of range float values are not JSON compliant")

    route = Route(name="r", sinks=("broken",), group_wait_ms=0)
    routes = RoutesConfig(routes=(route,), sinks={"broken": {"type": "log"}},
                          retry=RetryPolicy(max_attempts=2, base_s=0.0, jitter=0.0))
    notifier = Notifier(closed_port(), routes, {"broken": Broken()}, tmp_path,
                        clock=lambda: NOW_MS, registry=CollectorRegistry())
    notifier.producer = Producer()  # type: ignore[assignment]
    assert notifier._deliver("broken", _notification(route)) == "dead_lettered"  # noqa: SLF001
    (sent,) = notifier.producer.sent
    rec = codec.decode(sent[2]).record
    assert rec["error_kind"] == "delivery" and "ValueError" in rec["reason"]


def test_a_silence_key_that_is_not_utf8_is_applied(evaluator) -> None:  # noqa: F811
    from tests.support.hostile import Hostile

    silence = Hostile(1, NOW_MS).record("Silence")
    assert evaluator._apply_silence(b"\xff\xfe", codec.encode("Silence", silence))  # noqa: SLF001
    assert evaluator._apply_silence(b"\xff\xfe", None)  # noqa: SLF001 - tombstone removes
    assert evaluator.silences.all() == []


@pytest.mark.parametrize("payload", [b"", b"\x00\x00\x00\x00\x07garbage", None])
def test_undecodable_references_are_rejected_not_raised(payload) -> None:
    up = check_reference(codec, b"k", payload, 3, 9)
    assert up.profile is None and up.error_kind == "decode" and (up.partition, up.offset) == (3, 9)


def test_predictions_of_a_batch_split_good_from_bad() -> None:
    worker = Worker()
    events = [_prediction(prediction_id=f"p{i}") for i in range(4)]
    events[2]["event_time_ms"] = NOW_MS + 86_000_000
    value = codec.encode("PredictionBatch", PredictionColumns.from_events(events).to_record())
    (dead,) = worker.predictions.handle(b"k", value, 0, 5, NOW_MS / 1000)
    assert "rows [2]" in codec.decode(dead.value).record["reason"]
    assert _sample(worker.registry, "modelwatch_predictions_total") == 3
