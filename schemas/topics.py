"""Topic names and their shapes. Names are overridable through settings (``prefix``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Largest ReferenceProfile record (a training set's sketches of up to a few hundred
# features); producers of references and the references topic's max.message.bytes agree.
REFERENCE_MAX_BYTES = 8 * 1024 * 1024
# Largest worker-state snapshot (a merge partition's open partials, a partition's open
# windows): the worker's producer and the worker-state topic's max.message.bytes agree.
STATE_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    extra_config: Mapping[str, str] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, str]:
        """Topic configs to create it with."""
        base = {"cleanup.policy": "compact"} if self.compacted else {}
        return {**base, **self.extra_config}


@dataclass(frozen=True)
class TopicNames:
    predictions: str = "modelwatch.predictions"
    labels: str = "modelwatch.labels"
    references: str = "modelwatch.references"
    window_stats: str = "modelwatch.window-stats"
    detections: str = "modelwatch.detections"
    alerts: str = "modelwatch.alerts"
    dead_letter: str = "modelwatch.dead-letter"
    actions: str = "modelwatch.actions"
    silences: str = "modelwatch.silences"
    notify_dead_letter: str = "modelwatch.notify-dead-letter"
    window_partials: str = "modelwatch.window-partials"  # stage 1 -> merge stage, by model
    worker_state: str = "modelwatch.worker-state"  # per-partition state snapshots

    @classmethod
    def with_prefix(cls, prefix: str) -> TopicNames:
        if not prefix:
            return cls()
        return cls(**{k: prefix + v for k, v in cls().__dict__.items()})

    def specs(self, partitions: int) -> list[TopicSpec]:
        """Every topic with an explicit partition count (predictions and labels equal)."""
        return [
            TopicSpec(self.predictions, partitions),
            TopicSpec(self.labels, partitions),
            TopicSpec(
                self.references, 1, compacted=True,
                extra_config={"max.message.bytes": str(REFERENCE_MAX_BYTES)},
            ),
            TopicSpec(self.window_stats, 1),
            TopicSpec(self.detections, 1),
            TopicSpec(self.alerts, max(1, min(partitions, 4))),
            TopicSpec(self.dead_letter, 1),
            TopicSpec(self.actions, 1),
            TopicSpec(self.silences, 1, compacted=True),
            TopicSpec(self.notify_dead_letter, 1),
            TopicSpec(self.window_partials, partitions),
            TopicSpec(
                self.worker_state, 1, compacted=True,
                extra_config={"max.message.bytes": str(STATE_MAX_BYTES)},
            ),
        ]
