"""The backtest's drain conditions, on scraped metric samples."""

from __future__ import annotations

from modelwatch.backtest import inputs_processed, output_signature
from schemas.topics import TopicNames

T = TopicNames()


def s(name: str, value: float, **labels: str) -> dict:
    return {(name, tuple(sorted(labels.items()))): value}


def test_inputs_are_processed_once_events_and_dead_letters_cover_what_was_published() -> None:
    samples = {**s("modelwatch_events_processed_total", 90, topic=T.predictions),
               **s("modelwatch_events_processed_total", 50, topic=T.labels)}
    assert not inputs_processed(samples, T, predictions=100, labels=50)
    samples.update(s("modelwatch_dead_letters_total", 10, topic=T.predictions,
                     error_kind="decode"))
    assert inputs_processed(samples, T, predictions=100, labels=50)
    assert not inputs_processed(samples, T, predictions=100, labels=51)


def test_output_signature_waits_for_acknowledgements_and_ignores_liveness() -> None:
    base = {**s("modelwatch_windows_closed_total", 7, model="m"),
            **s("modelwatch_detections_total", 3, model="m", kind="feature_drift"),
            **s("modelwatch_outputs_pending", 0)}
    sig = output_signature(base, "m")
    assert sig == (7, 3)
    # the golden checks keep reporting no_traffic after the end: that is not output to wait for
    more = {**base, **s("modelwatch_detections_total", 9, model="m", kind="no_traffic")}
    assert output_signature(more, "m") == sig
    assert output_signature({**base, **s("modelwatch_outputs_pending", 12)}, "m") is None
    assert output_signature({**base, **s("modelwatch_windows_closed_total", 8, model="m")},
                            "m") != sig
