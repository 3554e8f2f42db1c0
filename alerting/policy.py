"""The alert policy: which severity a detection kind gets, and its timing.

The shipped defaults live in ``default_policy.yaml`` beside this module; a user file is
merged over them rule by rule (only the keys it sets change). Every problem — a kind the
worker never emits, a severity that does not exist, a key that means nothing, a duration
that does not parse — is an error at load time, never at 3 a.m.

>>> policy = load_policy()
>>> policy.rule("error_rate").severity, policy.rule("error_rate").min_value
('critical', 0.05)
>>> policy.rule("feature_drift").severity
'minor'
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerting.durations import parse_duration_ms
from schemas.detection import DetectionKind

DEFAULT_POLICY_FILE = Path(__file__).parent / "default_policy.yaml"
SEVERITIES = ("critical", "major", "minor")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}  # 0 = most severe
ACTIONS = ("retrain",)

_RULE_KEYS = {
    "severity", "for", "keep_firing_for", "stale_after", "min_value", "labels",
    "runbook_url", "action", "enabled", "summary", "liveness",
}
_DEFAULT_KEYS = {"for", "keep_firing_for", "stale_after", "retrain_min_interval", "live_within"}


class PolicyError(ValueError):
    """An invalid policy file; the message says which file, rule and key."""


@dataclass(frozen=True)
class Rule:
    """How detections of one kind become alerts."""

    kind: str
    severity: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    stale_after_ms: int = 15 * 60_000
    min_value: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook_url: str | None = None
    action: str | None = None
    summary: str | None = None
    liveness: bool = False  # judged on the wall clock: only while the model is live

    def is_active(self, active: bool, value: float) -> bool:
        """Whether an observation counts as the condition holding under this rule."""
        if not active:
            return False
        return self.min_value is None or value >= self.min_value


@dataclass(frozen=True)
class Policy:
    """Rules by detection kind, plus policy-wide settings."""

    rules: Mapping[str, Rule]
    retrain_min_interval_ms: int = 6 * 3_600_000
    live_within_ms: int = 10 * 60_000  # event time this close to the wall clock: live

    def rule(self, kind: str) -> Rule | None:
        """The rule for ``kind``; ``None`` when the kind is disabled or unknown."""
        return self.rules.get(str(kind))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: top level must be a mapping with 'defaults' and 'rules'")
    unknown = set(data) - {"defaults", "rules"}
    if unknown:
        raise PolicyError(f"{path}: unknown top-level keys {sorted(unknown)}")
    return data


def merge_policy_data(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` over ``base``: defaults key by key, rules key by key per kind."""
    out = copy.deepcopy(base)
    out.setdefault("defaults", {}).update(override.get("defaults") or {})
    rules = out.setdefault("rules", {})
    for kind, fields in (override.get("rules") or {}).items():
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            raise PolicyError(f"rule {kind!r}: must be a mapping, got {type(fields).__name__}")
        rules.setdefault(kind, {}).update(fields)
    return out


def _duration(source: str, where: str, value: Any) -> int:
    try:
        return parse_duration_ms(value)
    except ValueError as exc:
        raise PolicyError(f"{source}: {where}: {exc}") from None


def build_policy(data: dict[str, Any], source: str = "<policy>") -> Policy:
    """Validate merged policy data and build a :class:`Policy`."""
    known_kinds = {k.value for k in DetectionKind}
    defaults = data.get("defaults") or {}
    bad = set(defaults) - _DEFAULT_KEYS
    if bad:
        raise PolicyError(f"{source}: defaults: unknown keys {sorted(bad)}; "
                          f"allowed: {sorted(_DEFAULT_KEYS)}")
    d_for = _duration(source, "defaults.for", defaults.get("for", 0))
    d_keep = _duration(source, "defaults.keep_firing_for", defaults.get("keep_firing_for", 0))
    d_stale = _duration(source, "defaults.stale_after", defaults.get("stale_after", "15m"))
    retrain_every = _duration(source, "defaults.retrain_min_interval",
                              defaults.get("retrain_min_interval", "6h"))
    live_within = _duration(source, "defaults.live_within", defaults.get("live_within", "10m"))
    rules: dict[str, Rule] = {}
    for kind, fields in (data.get("rules") or {}).items():
        where = f"rule {kind!r}"
        if kind not in known_kinds:
            raise PolicyError(f"{source}: {where}: unknown detection kind; "
                              f"known kinds: {sorted(known_kinds)}")
        fields = fields or {}
        bad = set(fields) - _RULE_KEYS
        if bad:
            raise PolicyError(f"{source}: {where}: unknown keys {sorted(bad)}; "
                              f"allowed: {sorted(_RULE_KEYS)}")
        if not fields.get("enabled", True):
            continue
        severity = fields.get("severity")
        if severity not in SEVERITIES:
            raise PolicyError(f"{source}: {where}: severity must be one of {list(SEVERITIES)}, "
                              f"got {severity!r}")
        action = fields.get("action")
        if action is not None and action not in ACTIONS:
            raise PolicyError(f"{source}: {where}: action must be one of {list(ACTIONS)}, "
                              f"got {action!r}")
        labels = fields.get("labels") or {}
        if not isinstance(labels, dict):
            raise PolicyError(f"{source}: {where}: labels must be a mapping")
        liveness = fields.get("liveness", False)
        if not isinstance(liveness, bool):
            raise PolicyError(f"{source}: {where}: liveness must be true or false, "
                              f"got {liveness!r}")
        min_value = fields.get("min_value")
        if min_value is not None:
            try:
                min_value = float(min_value)
            except (TypeError, ValueError):
                raise PolicyError(f"{source}: {where}: min_value must be a number, "
                                  f"got {min_value!r}") from None
        rules[kind] = Rule(
            kind=kind,
            severity=severity,
            for_ms=_duration(source, f"{where}.for", fields["for"]) if "for" in fields
            else d_for,
            keep_firing_for_ms=_duration(source, f"{where}.keep_firing_for",
                                         fields["keep_firing_for"])
            if "keep_firing_for" in fields else d_keep,
            stale_after_ms=_duration(source, f"{where}.stale_after", fields["stale_after"])
            if "stale_after" in fields else d_stale,
            min_value=min_value,
            labels={str(k): str(v) for k, v in labels.items()},
            runbook_url=fields.get("runbook_url"),
            action=action,
            summary=fields.get("summary"),
            liveness=liveness,
        )
    return Policy(rules=rules, retrain_min_interval_ms=retrain_every, live_within_ms=live_within)


def load_policy(override: Path | str | None = None,
                defaults_file: Path = DEFAULT_POLICY_FILE) -> Policy:
    """Load the shipped defaults, merge the optional user file over them, validate."""
    data = _read_yaml(defaults_file)
    source = str(defaults_file)
    if override is not None:
        path = Path(override)
        if not path.exists():
            raise PolicyError(f"{path}: policy file does not exist")
        data = merge_policy_data(data, _read_yaml(path))
        source = str(path)
    return build_policy(data, source)
