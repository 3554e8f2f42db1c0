"""What a producer may claim: the bounds on event time and sizes the worker accepts.

A producer cannot move a clock far: an event time more than ``max_ahead_s`` ahead of the
worker's wall clock, or before ``min_event_time_ms``, is dead-lettered with its position,
so one outlier never drags a model's watermark (windows, alert lifecycle). History replays
keep working: the bound on the past side is only for absurd values (before 2000-01-01 by
default), not for old ones.

| rule | default | why |
| --- | --- | --- |
| ``max_ahead_s`` | 900 (15 min) | server clocks drift by seconds; a 20 h lead once made |
| | | 38,500 of 42,000 later events late |
| ``min_event_time_ms`` | 946684800000 (2000) | 0 / -1 / "unset" times are bugs, not history |
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class InputRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_ahead_s: float = Field(
        900.0, gt=0, description="event times further ahead of the worker clock are rejected"
    )
    min_event_time_ms: int = Field(
        946_684_800_000, description="event times before this (ms since epoch) are rejected"
    )

    @property
    def max_ahead_ms(self) -> int:
        return int(self.max_ahead_s * 1000)
