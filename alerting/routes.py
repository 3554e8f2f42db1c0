"""Notification routes: which alerts go to which sinks, and how they are grouped.

A routes file (``default_routes.yaml`` beside this module is the shipped default: the log
sink for everything) has three sections::

    sinks:            # name -> {type: log|webhook|slack|email|alertmanager, ...}
    routes:           # list; an alert goes to EVERY route whose match it meets
      - name: critical
        match: {severity: [critical], model: [...], kind: [...]}   # all optional
        sinks: [console]
        group_by: [model]          # labels: model, severity, kind, subject, model_version,
                                   # fingerprint, or any alert label; [] = one group
        group_wait: 10s            # wait before the first notification of a new group
        group_interval: 1m         # wait before notifying changes of a group
        repeat_interval: 5m        # re-send while firing
        send_resolved: true
    retry: {base: 0.5s, factor: 2, max_delay: 30s, jitter: 1.0, max_attempts: 6, budget: 2m}

Secrets are never written in this file: sinks name the environment variable that holds
them (``url_env``, ``password_env``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerting.durations import parse_duration_ms
from alerting.policy import SEVERITIES
from alerting.retry import RetryPolicy

DEFAULT_ROUTES_FILE = Path(__file__).parent / "default_routes.yaml"
SINK_TYPES = ("log", "webhook", "slack", "email", "alertmanager")
_ROUTE_KEYS = {"name", "match", "sinks", "group_by", "group_wait", "group_interval",
               "repeat_interval", "send_resolved"}
_MATCH_KEYS = {"severity", "model", "kind"}
_RETRY_KEYS = {"base", "factor", "max_delay", "jitter", "max_attempts", "budget"}

# defaults per severity when a route matches exactly one severity and sets no timing
SEVERITY_TIMING = {
    "critical": {"group_wait": "10s", "group_interval": "1m", "repeat_interval": "5m"},
    "major": {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "1h"},
    "minor": {"group_wait": "5m", "group_interval": "30m", "repeat_interval": "24h"},
}


class RoutesError(ValueError):
    """An invalid routes file; the message says where."""


@dataclass(frozen=True)
class Route:
    name: str
    sinks: tuple[str, ...]
    severities: frozenset[str] = frozenset(SEVERITIES)
    models: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    group_by: tuple[str, ...] = ("model",)
    group_wait_ms: int = 30_000
    group_interval_ms: int = 300_000
    repeat_interval_ms: int = 3_600_000
    send_resolved: bool = True

    def matches(self, alert: Mapping[str, Any]) -> bool:
        if alert["severity"] not in self.severities:
            return False
        if self.models is not None and alert["model"] not in self.models:
            return False
        return self.kinds is None or alert["kind"] in self.kinds


@dataclass(frozen=True)
class RoutesConfig:
    routes: tuple[Route, ...]
    sinks: Mapping[str, Mapping[str, Any]]
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _dur(where: str, value: Any) -> int:
    try:
        return parse_duration_ms(value)
    except ValueError as exc:
        raise RoutesError(f"{where}: {exc}") from None


def _set(where: str, value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RoutesError(f"{where}: must be a list")
    return frozenset(str(v) for v in value)


def build_routes(data: Mapping[str, Any], source: str = "<routes>") -> RoutesConfig:
    """Validate routes data and build a :class:`RoutesConfig`."""
    unknown = set(data) - {"sinks", "routes", "retry"}
    if unknown:
        raise RoutesError(f"{source}: unknown top-level keys {sorted(unknown)}")
    sinks = data.get("sinks") or {}
    for name, conf in sinks.items():
        if not isinstance(conf, dict) or conf.get("type") not in SINK_TYPES:
            raise RoutesError(f"{source}: sink {name!r}: type must be one of {list(SINK_TYPES)}")
    routes = []
    names = set()
    for i, raw in enumerate(data.get("routes") or []):
        where = f"{source}: routes[{i}]"
        if not isinstance(raw, dict):
            raise RoutesError(f"{where}: must be a mapping")
        bad = set(raw) - _ROUTE_KEYS
        if bad:
            raise RoutesError(f"{where}: unknown keys {sorted(bad)}")
        name = str(raw.get("name") or f"route{i}")
        if name in names:
            raise RoutesError(f"{where}: duplicate route name {name!r}")
        names.add(name)
        match = raw.get("match") or {}
        bad = set(match) - _MATCH_KEYS
        if bad:
            raise RoutesError(f"{where}.match: unknown keys {sorted(bad)}")
        severities = _set(f"{where}.match.severity", match.get("severity")) or frozenset(SEVERITIES)
        unknown_sev = severities - set(SEVERITIES)
        if unknown_sev:
            raise RoutesError(f"{where}.match.severity: unknown {sorted(unknown_sev)}")
        route_sinks = tuple(raw.get("sinks") or ())
        if not route_sinks:
            raise RoutesError(f"{where}: needs at least one sink")
        missing = [s for s in route_sinks if s not in sinks]
        if missing:
            raise RoutesError(f"{where}: unknown sinks {missing}; defined: {sorted(sinks)}")
        timing = dict(SEVERITY_TIMING["minor" if severities == {"minor"} else
                                      "critical" if severities == {"critical"} else "major"])
        group_by = raw.get("group_by", ["model"])
        if not isinstance(group_by, list):
            raise RoutesError(f"{where}.group_by: must be a list")
        routes.append(Route(
            name=name,
            sinks=route_sinks,
            severities=severities,
            models=_set(f"{where}.match.model", match.get("model")),
            kinds=_set(f"{where}.match.kind", match.get("kind")),
            group_by=tuple(str(g) for g in group_by),
            group_wait_ms=_dur(f"{where}.group_wait", raw.get("group_wait", timing["group_wait"])),
            group_interval_ms=_dur(f"{where}.group_interval",
                                   raw.get("group_interval", timing["group_interval"])),
            repeat_interval_ms=_dur(f"{where}.repeat_interval",
                                    raw.get("repeat_interval", timing["repeat_interval"])),
            send_resolved=bool(raw.get("send_resolved", True)),
        ))
        if routes[-1].repeat_interval_ms <= 0 or routes[-1].group_interval_ms <= 0:
            raise RoutesError(f"{where}: group_interval and repeat_interval must be positive")
    retry_raw = data.get("retry") or {}
    bad = set(retry_raw) - _RETRY_KEYS
    if bad:
        raise RoutesError(f"{source}: retry: unknown keys {sorted(bad)}")
    defaults = RetryPolicy()
    retry = RetryPolicy(
        base_s=_dur(f"{source}: retry.base", retry_raw.get("base", defaults.base_s)) / 1000,
        factor=float(retry_raw.get("factor", defaults.factor)),
        max_delay_s=_dur(f"{source}: retry.max_delay",
                         retry_raw.get("max_delay", defaults.max_delay_s)) / 1000,
        jitter=float(retry_raw.get("jitter", defaults.jitter)),
        max_attempts=int(retry_raw.get("max_attempts", defaults.max_attempts)),
        budget_s=_dur(f"{source}: retry.budget", retry_raw.get("budget", defaults.budget_s)) / 1000,
    )
    return RoutesConfig(routes=tuple(routes), sinks=sinks, retry=retry)


def load_routes(path: Path | str | None = None) -> RoutesConfig:
    """Load a routes file (default: the shipped one: log sink for everything)."""
    path = Path(path) if path is not None else DEFAULT_ROUTES_FILE
    if not path.exists():
        raise RoutesError(f"{path}: routes file does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RoutesError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RoutesError(f"{path}: top level must be a mapping")
    return build_routes(data, str(path))
