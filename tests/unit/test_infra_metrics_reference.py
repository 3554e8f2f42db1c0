"""The metrics reference (infra/metrics_reference.py): one list, rendered as Markdown."""

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
    "modelwatch_drift_share": ("model",),
    "modelwatch_dataset_drift_detected": ("model",),
    "modelwatch_prediction_drift_score": ("model", "test"),
    "modelwatch_label_drift_score": ("model", "test"),
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
    "modelwatch_join_rate": ("model",),
    "modelwatch_detections_total": ("model", "kind", "severity"),
    "modelwatch_alerts_firing": ("model", "severity"),
    "modelwatch_notifications_total": ("sink", "outcome"),
    "modelwatch_notification_dead_letters_total": ("sink",),
}


def test_the_list_holds_the_contract() -> None:
    for name, labels in CONTRACT.items():
        assert name in ref.BY_NAME, name
        assert ref.BY_NAME[name].labels == labels, name
    assert len(ref.BY_NAME) == len(ref.METRICS), "duplicate names"


def test_prometheus_naming_conventions() -> None:
    for m in ref.METRICS:
        assert m.type in {"counter", "gauge", "histogram"}, m.name
        assert m.name.endswith("_total") == (m.type == "counter"), m.name
        if m.type == "histogram":
            assert m.name.endswith("_seconds"), m.name
            assert m.series_names == (f"{m.name}_bucket", f"{m.name}_sum", f"{m.name}_count")
        assert m.help.endswith("."), m.name
        assert "id" not in m.labels and "prediction_id" not in m.labels, m.name


def test_markdown_table() -> None:
    text = ref.render_markdown()
    lines = text.splitlines()
    assert lines[0].startswith("| metric | type | labels |")
    assert len(lines) == 2 + len(ref.METRICS)
    assert "| `modelwatch_consumer_lag` | gauge | `topic`, `partition` | worker (`:9108`) |" in text
    assert (
        "| `modelwatch_alerts_firing` | gauge | `model`, `severity` | alerting: `evaluate` / "
        "`notify` (`:9109`) |" in text
    )
    assert all(line.count("|") == 6 for line in lines)


def test_runs_as_a_script() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "metrics_reference.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert res.stdout == ref.render_markdown()
