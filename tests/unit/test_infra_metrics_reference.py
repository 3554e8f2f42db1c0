"""The metrics reference (infra/metrics_reference.py): the catalogue, rendered as Markdown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]

ref = infra.metrics_reference()

# the stable contract of issue 6 (worker :9108; evaluator and notifier :9109)
CONTRACT = {
    "modelwatch_predictions_total": ("model", "version", "status"),
    "modelwatch_prediction_errors_total": ("model", "version", "error_type"),
    "modelwatch_prediction_latency_seconds": ("model", "version"),
    "modelwatch_processing_delay_seconds": ("model",),
    "modelwatch_last_event_timestamp_seconds": ("model", "version"),
    "modelwatch_consumer_lag": ("topic", "partition"),
    "modelwatch_dead_letters_total": ("topic", "error_kind"),
    "modelwatch_events_processed_total": ("topic",),
    "modelwatch_batches_processed_total": ("topic",),
    "modelwatch_rebalances_total": (),
    "modelwatch_feature_drift_score": ("model", "feature", "test"),
    "modelwatch_feature_drift_detected": ("model", "feature"),
    "modelwatch_drift_share_ratio": ("model",),
    "modelwatch_dataset_drift_detected": ("model",),
    "modelwatch_prediction_drift_score": ("model", "test"),
    "modelwatch_detector_detections_total": ("model", "feature", "detector"),
    "modelwatch_feature_missing_ratio": ("model", "feature"),
    "modelwatch_feature_out_of_range_ratio": ("model", "feature"),
    "modelwatch_unseen_categories_total": ("model", "feature"),
    "modelwatch_window_events": ("model",),
    "modelwatch_late_events_total": ("model",),
    "modelwatch_windows_closed_total": ("model",),
    "modelwatch_labels_joined_total": ("model",),
    "modelwatch_model_performance": ("model", "version", "metric"),
    "modelwatch_label_delay_seconds": ("model",),
    "modelwatch_label_join_ratio": ("model",),
    "modelwatch_detections_total": ("model", "kind"),
    "modelwatch_build_info": ("version", "python_version"),
    "modelwatch_alerts_firing": ("model", "severity"),
    "modelwatch_notifications_total": ("sink", "outcome"),
    "modelwatch_notification_dead_letters_total": ("sink",),
}


def test_the_catalogue_holds_the_contract() -> None:
    by_name = {m.name: m for m in ref.CATALOGUE}
    for name, labels in CONTRACT.items():
        assert name in by_name, name
        assert by_name[name].labels == labels, name


def test_markdown_table() -> None:
    text = ref.render_markdown()
    lines = text.splitlines()
    assert lines[0].startswith("| metric | type | labels |")
    assert len(lines) == 2 + len(ref.CATALOGUE)
    lag = "| `modelwatch_consumer_lag` | gauge | `topic`, `partition` | — | worker (`:9108`) |"
    assert lag in text
    firing = "| `modelwatch_alerts_firing` | gauge | `model`, `severity` | — | `evaluate` (`:9109`)"
    assert firing in text
    assert "| `modelwatch_drift_share_ratio` | gauge | `model` | ratio |" in text
    assert all(line.count("|") == 7 for line in lines)


def test_runs_as_a_script() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "metrics_reference.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert res.stdout == ref.render_markdown()
