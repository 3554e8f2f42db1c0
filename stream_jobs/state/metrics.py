"""Metrics of per-partition state: restores on assignment, snapshots written, merges
(built from :mod:`schemas.metrics_catalogue`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from schemas.metrics_catalogue import counter, histogram


class StateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.restore_seconds = histogram("modelwatch_state_restore_seconds", r)
        self.restored = counter("modelwatch_state_restored_partitions_total", r)
        self.changelog_records_read = counter("modelwatch_state_changelog_records_read_total", r)
        self.snapshots = counter("modelwatch_state_snapshots_total", r)
        self.snapshot_bytes = counter("modelwatch_state_snapshot_bytes_total", r)
        self.refused = counter("modelwatch_state_snapshots_refused_total", r)
        self.partials = counter("modelwatch_merge_partials_total", r)
        self.merged = counter("modelwatch_merge_windows_total", r)
        self.merge_seconds = counter("modelwatch_merge_seconds_total", r)
