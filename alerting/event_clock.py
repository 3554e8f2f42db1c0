"""The clocks the alert lifecycle runs on: each model's event time, or the wall clock.

Every detection carries the event time it describes. Per model, the freshest one is the
model's **watermark**, and its **lag** is how far the wall clock was ahead of it when it
arrived. A model is **live** while that lag is at most ``live_within``: its alerts then run
on the wall clock (exactly as a live monitor should: an outage stops event time, not the
wall clock). Otherwise the model's data is history — a replay or a backtest — and its
alerts run on event time: ``for``, ``keep_firing_for`` and ``stale_after`` count the
detections' event time per (model, kind), so a replay that takes seconds produces the
timeline those days would have produced live. Liveness rules (``no_traffic``) only apply
to live models: the end of a replay is not an outage.

The lag is measured when the watermark advances, so a live model that goes silent stays
live (its last lag was small): that is an outage, and ``no_traffic`` fires.

Clocks are per (model, kind) because one kind comes from one stage of the worker, in
event-time order (the windows of the drift stage, the golden checks, the label stage),
while different stages interleave in whatever order the wall clock gives them.
Each clock is monotonic.

>>> clocks = EventClocks(live_within_ms=600_000)
>>> day = 86_400_000
>>> clocks.advance("m", "feature_drift", 1 * day, wall_ms=20 * day)
>>> clocks.live("m"), clocks.now("m", "feature_drift", wall_ms=20 * day)
(False, 86400000)
>>> clocks.advance("m", "feature_drift", 20 * day - 5_000, wall_ms=20 * day)
>>> clocks.live("m"), clocks.now("m", "feature_drift", wall_ms=20 * day + 1)
(True, 1728000001)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Model:
    watermark_ms: int
    lag_ms: int
    kinds: dict[str, int] = field(default_factory=dict)  # kind -> watermark
    now_ms: dict[str, int] = field(default_factory=dict)  # kind -> monotonic clock


class EventClocks:
    def __init__(self, live_within_ms: int) -> None:
        self.live_within_ms = live_within_ms
        self._models: dict[str, _Model] = {}

    def advance(self, model: str, kind: str, event_time_ms: int, wall_ms: int) -> None:
        """Account for one detection of ``model``/``kind`` at ``event_time_ms``."""
        m = self._models.get(model)
        if m is None:
            m = self._models[model] = _Model(event_time_ms, wall_ms - event_time_ms)
        elif event_time_ms > m.watermark_ms:
            m.watermark_ms, m.lag_ms = event_time_ms, wall_ms - event_time_ms
        m.kinds[kind] = max(m.kinds.get(kind, event_time_ms), event_time_ms)

    def live(self, model: str) -> bool:
        """Whether the model's freshest event time was close to the wall clock."""
        m = self._models.get(model)
        return m is None or m.lag_ms <= self.live_within_ms

    def watermark(self, model: str) -> int | None:
        m = self._models.get(model)
        return None if m is None else m.watermark_ms

    def now(self, model: str, kind: str, wall_ms: int) -> int:
        """The time alerts of ``model``/``kind`` are at: the wall clock while the model is
        live, the kind's event-time watermark otherwise; never going backwards."""
        m = self._models.get(model)
        if m is None:
            return wall_ms
        t = wall_ms if self.live(model) else m.kinds.get(kind, m.watermark_ms)
        t = max(m.now_ms.get(kind, t), t)
        m.now_ms[kind] = t
        return t
