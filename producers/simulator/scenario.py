"""Scenarios: timed phases (event-time offsets) that change what the simulated model sees.

A scenario is YAML::

    name: default
    rate: 2000              # events per wall-clock second (``--rate`` overrides)
    speedup: 60             # event time runs this many times faster than wall time
    label_fraction: 0.9     # share of predictions that ever get a label
    label_delay: {median: 2m, sigma: 0.6}   # lognormal delay, event time
    phases:
      - {kind: normal, start: 0s, end: 10m}
      - {kind: feature_drift, start: 10m, feature: age, shift: 15}
      - {kind: concept_drift, start: 25m, coefficients: {utilization: -1.5}}

Phases may overlap; every active phase applies. A phase without ``start`` begins where the
previous one ends, so a list of ``duration``s reads as a timeline. The kind may also be
given as a nested key (``{name: spike, duration: 5m, latency_spike: {factor: 5}}``); a
phase with no kind is ``normal``. ``end`` (or ``duration``) is optional:
without it a phase lasts to the end. ``ramp`` makes a phase's strength grow linearly from
0 to 1 over that time. ``where: {region: eu}`` restricts a phase to rows whose categorical
feature or segment has that value.

Kinds and their parameters:

* ``normal`` — nothing changes (documents the baseline).
* ``feature_drift`` — ``feature`` (numeric or categorical); numeric: ``shift`` (added),
  ``scale`` (multiplies the deviation from the baseline mean), ``missing_rate``;
  categorical: ``new_category`` + ``new_category_rate``, ``weights`` (a new distribution),
  ``missing_rate``.
* ``prediction_drift`` — ``logit_shift`` added to the model's logit (the model misbehaves,
  inputs unchanged).
* ``concept_drift`` — ``coefficients`` replace the true concept's coefficients,
  ``intercept_shift`` moves its intercept: labels change, predictions do not.
* ``latency_spike`` — ``factor`` multiplies latency, ``add_ms`` adds to it.
* ``error_burst`` — ``error_rate``, ``error_type``.
* ``fallback_storm`` — ``fallback_rate``.
* ``outage`` — no traffic at all.

>>> s = Scenario.from_dict({"phases": [{"kind": "outage", "start": "1m", "duration": "30s"}]})
>>> s.phases[0].start_s, s.phases[0].end_s
(60.0, 90.0)
>>> seq = Scenario.from_dict({"phases": [{"name": "warm", "duration": "10m"},
...     {"duration": "5m", "error_burst": {"rate": 0.2}}]})
>>> [(p.kind, p.start_s, p.end_s, p.params) for p in seq.phases][1]
('error_burst', 600.0, 900.0, {'error_rate': 0.2})
>>> parse_duration("1h30m"), parse_duration(2.5), parse_duration("250ms")
(5400.0, 2.5, 0.25)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = (
    "normal",
    "feature_drift",
    "prediction_drift",
    "concept_drift",
    "latency_spike",
    "error_burst",
    "fallback_storm",
    "outage",
)
SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class ScenarioError(ValueError):
    """A scenario file that does not describe valid phases; the message says what."""


def parse_duration(value: str | float | int | None) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"250ms"``."""
    if value is None:
        raise ScenarioError("missing duration")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip().replace(" ", "")
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ScenarioError(f"cannot read duration {value!r} (use e.g. 30s, 15m, 1h30m)")
    return total


@dataclass
class Phase:
    kind: str
    start_s: float
    end_s: float = float("inf")
    ramp_s: float = 0.0
    name: str = ""
    where: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], default_start: float = 0.0) -> Phase:
        raw = dict(raw)
        kind = raw.pop("kind", None)
        if kind is None:  # nested form: {name: x, duration: 5m, error_burst: {error_rate: 0.2}}
            nested = [k for k in KINDS if isinstance(raw.get(k), dict)]
            if len(nested) > 1:
                raise ScenarioError(f"phase {raw.get('name')!r} has several kinds: {nested}")
            kind = nested[0] if nested else "normal"
            raw.update(raw.pop(kind) if nested else {})
        if kind not in KINDS:
            raise ScenarioError(f"phase kind {kind!r} is not one of {list(KINDS)}")
        if kind == "error_burst" and "rate" in raw:
            raw["error_rate"] = raw.pop("rate")
        if kind == "fallback_storm" and "rate" in raw:
            raw["fallback_rate"] = raw.pop("rate")
        start = parse_duration(raw.pop("start", default_start))
        end = raw.pop("end", None)
        duration = raw.pop("duration", None)
        if end is not None and duration is not None:
            raise ScenarioError(f"{kind} phase: give end or duration, not both")
        end_s = (
            parse_duration(end)
            if end is not None
            else start + parse_duration(duration)
            if duration is not None
            else float("inf")
        )
        if end_s <= start:
            raise ScenarioError(f"{kind} phase ends ({end_s}s) before it starts ({start}s)")
        phase = cls(
            kind=kind,
            start_s=start,
            end_s=end_s,
            ramp_s=parse_duration(raw.pop("ramp", 0)),
            name=str(raw.pop("name", kind)),
            where={str(k): str(v) for k, v in (raw.pop("where", None) or {}).items()},
            params=raw,
        )
        if kind == "feature_drift" and "feature" not in raw:
            raise ScenarioError("feature_drift phase needs a 'feature'")
        return phase


@dataclass
class Scenario:
    name: str = "baseline"
    rate: float = 2000.0
    speedup: float = 1.0
    label_fraction: float = 0.9
    label_delay_median_s: float = 120.0
    label_delay_sigma: float = 0.6
    model: str | None = None
    phases: list[Phase] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Scenario:
        raw = dict(raw or {})
        delay = raw.pop("label_delay", None) or {}
        known = {"name", "rate", "speedup", "label_fraction", "phases", "description", "model"}
        unknown = set(raw) - known
        if unknown:
            raise ScenarioError(f"unknown scenario keys: {sorted(unknown)}")
        fraction = float(raw.get("label_fraction", 0.9))
        if not 0.0 <= fraction <= 1.0:
            raise ScenarioError(f"label_fraction {fraction} outside [0, 1]")
        return cls(
            name=str(raw.get("name", "scenario")),
            rate=float(raw.get("rate", 2000.0)),
            speedup=float(raw.get("speedup", 1.0)),
            label_fraction=fraction,
            label_delay_median_s=parse_duration(delay.get("median", 120)),
            label_delay_sigma=float(delay.get("sigma", 0.6)),
            model=str(raw["model"]) if raw.get("model") else None,
            phases=_phases(raw.get("phases") or []),
        )

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Load a YAML scenario; a bare name (``drift``) means a shipped scenario."""
        p = Path(path)
        if not p.exists() and not p.suffix:
            p = SCENARIO_DIR / f"{path}.yaml"
        try:
            raw = yaml.safe_load(p.read_text())
        except FileNotFoundError:
            shipped = sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml"))
            raise ScenarioError(f"no scenario file {path} (shipped: {shipped})") from None
        if not isinstance(raw, dict):
            raise ScenarioError(f"{p}: a scenario is a YAML mapping")
        return cls.from_dict(raw)

    @property
    def end_s(self) -> float:
        """Event-time offset where the last finite phase ends (0 without phases)."""
        ends = [p.end_s for p in self.phases if p.end_s != float("inf")]
        return max(ends, default=0.0)

    def active(self, kind: str) -> list[Phase]:
        return [p for p in self.phases if p.kind == kind]


def _phases(raws: list[dict[str, Any]]) -> list[Phase]:
    """Phases in order; a phase without ``start`` begins where the previous one ended."""
    out: list[Phase] = []
    for i, raw in enumerate(raws):
        if not isinstance(raw, dict):
            raise ScenarioError(f"phase {i} is not a mapping: {raw!r}")
        previous_end = out[-1].end_s if out else 0.0
        if "start" not in raw and previous_end == float("inf"):
            raise ScenarioError(
                f"phase {i} ({raw.get('name', raw.get('kind'))}) has no start and follows an "
                "open-ended phase: give it a start, or give the previous phase a duration"
            )
        out.append(Phase.from_dict(raw, default_start=previous_end))
    return out
