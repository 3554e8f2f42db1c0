"""Metrics of per-partition state: restores on assignment, snapshots written, merges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class StateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.restore_seconds = Histogram(
            "modelwatch_state_restore_seconds",
            "Time to restore the state of newly assigned partitions from the changelog.",
            ["stage"], registry=r, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )  # fmt: skip
        self.restored = Counter(
            "modelwatch_state_restored_partitions_total",
            "Partition states restored from the changelog on assignment, by stage.",
            ["stage"], registry=r,
        )  # fmt: skip
        self.changelog_records_read = Counter(
            "modelwatch_state_changelog_records_read_total",
            "Changelog records read while restoring (the whole topic is read to its end).",
            registry=r,
        )  # fmt: skip
        self.snapshots = Counter(
            "modelwatch_state_snapshots_total",
            "Partition-state snapshots written to the worker-state changelog, by stage.",
            ["stage"], registry=r,
        )  # fmt: skip
        self.snapshot_bytes = Counter(
            "modelwatch_state_snapshot_bytes_total",
            "Bytes of partition-state snapshots written to the worker-state changelog, by stage.",
            ["stage"], registry=r,
        )  # fmt: skip
        self.partials = Counter(
            "modelwatch_merge_partials_total",
            "Records read by the merge stage, by kind and outcome (applied, marker, duplicate, "
            "late = after its window was final: dropped, skipped = replayed offset).",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        self.merged = Counter(
            "modelwatch_merge_windows_total",
            "Windows merged and emitted as final, by kind and whether every input partition had "
            "reported (complete) or the wait ran out (incomplete).",
            ["kind", "complete"], registry=r,
        )  # fmt: skip
        self.merge_seconds = Counter(
            "modelwatch_merge_seconds_total",
            "Time the merge stage spent merging and judging windows, by kind.",
            ["kind"], registry=r,
        )  # fmt: skip
