"""Grouping, repeat and resolve timing on the notification side (Alertmanager-like).

AlertEvents (from ``modelwatch.alerts``) are ingested into groups per route (the route's
``group_by`` labels). A new group is flushed ``group_wait`` after it appears, then every
``group_interval``. A flush yields a :class:`Notification` when something in it has not
been notified yet:

* every alert carries an **idempotency key** ``route|fingerprint|alert_id|status|epoch``;
  for firing alerts the *group epoch* is the number of whole ``repeat_interval`` periods
  since the group's earliest firing alert fired (its ``fired_at_ms``, carried by the
  event, so the key is the same after a restart); resolved alerts use epoch 0. A flush
  sends when any alert's key is new: a new alert, a resolution (``send_resolved``), or
  the start of the next repeat period — so critical alerts repeat every 5 minutes until
  they resolve, with the defaults.
* whether a key was already delivered is asked of ``is_done`` (the notifier's persistent
  sent-key store), so a restarted notifier does not send what it already sent.

A firing critical alert on a model keeps that model's major/minor alerts out of
notifications (inhibition on the notifier side, for alerts published before the critical).

Each ingested event carries an opaque ``token`` (its topic offset); a flush returns the
tokens it consumed so the notifier commits offsets only after delivery.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alerting.routes import Route

EMITTED_TTL_MS = 24 * 3_600_000


@dataclass
class Notification:
    """One message for the sinks of one route: a group's firing and resolved alerts."""

    route: Route
    group_key: str
    group_labels: dict[str, str]
    firing: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    keys: dict[str, str]  # idempotency key per "fingerprint/status"
    epoch: int
    tokens: list[Hashable] = field(default_factory=list)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return self.firing + self.resolved

    @property
    def is_digest(self) -> bool:
        return len(self.alerts) > 1

    def key_of(self, alert: Mapping[str, Any]) -> str:
        return self.keys[f"{alert['fingerprint']}/{alert['status']}"]


@dataclass
class _Group:
    route: Route
    key: str
    labels: dict[str, str]
    next_flush_ms: int
    firing: dict[str, dict[str, Any]] = field(default_factory=dict)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: list[Hashable] = field(default_factory=list)


def label_value(alert: Mapping[str, Any], name: str) -> str:
    """The value of a ``group_by`` label: an AlertEvent field or one of its labels."""
    if name in ("model", "severity", "kind", "subject", "model_version", "fingerprint"):
        return str(alert.get(name, ""))
    return str(alert.get("labels", {}).get(name, ""))


def idempotency_key(route: str, alert: Mapping[str, Any], epoch: int) -> str:
    return f"{route}|{alert['fingerprint']}|{alert['alert_id']}|{alert['status']}|{epoch}"


class Dispatcher:
    """Groups alerts per route and decides when to notify. Pure: no I/O, injected time."""

    def __init__(self, routes: tuple[Route, ...] | list[Route], clock: Callable[[], int],
                 is_done: Callable[[str, Route], bool] = lambda key, route: False) -> None:
        self.routes = tuple(routes)
        self.clock = clock
        self.is_done = is_done
        self._groups: dict[str, _Group] = {}
        # keys handed out by this process -> when; forgotten after EMITTED_TTL_MS, after
        # which the persistent store (is_done) answers alone
        self._emitted: dict[str, int] = {}
        self._pruned_at = 0
        self._critical: dict[str, set[str]] = {}  # model -> fingerprints of firing criticals

    def ingest(self, alert: dict[str, Any], token: Hashable | None = None) -> int:
        """Add one AlertEvent; returns how many routes took it (0: nothing to wait for)."""
        now = self.clock()
        fp = alert["fingerprint"]
        if alert["severity"] == "critical":
            models = self._critical.setdefault(alert["model"], set())
            if alert["status"] == "firing":
                models.add(fp)
            else:
                models.discard(fp)
        taken = 0
        for route in self.routes:
            if not route.matches(alert):
                continue
            taken += 1
            labels = {name: label_value(alert, name) for name in route.group_by}
            gkey = route.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
            group = self._groups.get(gkey)
            if group is None:
                group = self._groups[gkey] = _Group(route, gkey, labels,
                                                    next_flush_ms=now + route.group_wait_ms)
            if alert["status"] == "firing":
                group.firing[fp] = alert
                group.resolved.pop(fp, None)
            else:
                group.firing.pop(fp, None)
                group.resolved[fp] = alert
            if token is not None:
                group.tokens.append(token)
        return taken

    def next_due_ms(self) -> int | None:
        return min((g.next_flush_ms for g in self._groups.values()), default=None)

    def flush_due(self) -> list[Notification]:
        """Flush every group whose time has come.

        Returns notifications to deliver, plus token-only notifications (no alerts) that
        just release the offsets of events that needed no message.
        """
        now = self.clock()
        if now - self._pruned_at > EMITTED_TTL_MS // 24:
            self._pruned_at = now
            self._emitted = {k: t for k, t in self._emitted.items() if now - t < EMITTED_TTL_MS}
        out: list[Notification] = []
        for gkey in list(self._groups):
            group = self._groups[gkey]
            if group.next_flush_ms > now:
                continue
            route = group.route
            group.next_flush_ms = now + route.group_interval_ms
            firing = [a for a in group.firing.values() if not self._inhibited(a)]
            resolved = list(group.resolved.values()) if route.send_resolved else []
            group.resolved.clear()
            anchor = min((a["fired_at_ms"] for a in firing), default=now)
            epoch = max(0, (now - anchor) // route.repeat_interval_ms)
            keys = {f"{a['fingerprint']}/firing": idempotency_key(route.name, a, epoch)
                    for a in firing}
            keys.update({f"{a['fingerprint']}/resolved": idempotency_key(route.name, a, 0)
                         for a in resolved})
            fresh = [k for k in keys.values()
                     if k not in self._emitted and not self.is_done(k, route)]
            tokens, group.tokens = group.tokens, []
            if fresh:
                self._emitted.update(dict.fromkeys(keys.values(), now))
                out.append(Notification(route, gkey, dict(group.labels), firing, resolved,
                                        keys, epoch, tokens))
            elif tokens:
                out.append(Notification(route, gkey, dict(group.labels), [], [], {}, epoch,
                                        tokens))
            if not group.firing and not group.resolved:
                del self._groups[gkey]
        return out

    def forget(self, fingerprints: set[str]) -> None:
        """Drop alerts (e.g. of partitions another notifier took over in a rebalance)."""
        for gkey in list(self._groups):
            group = self._groups[gkey]
            for fp in fingerprints:
                group.firing.pop(fp, None)
                group.resolved.pop(fp, None)
            if not group.firing and not group.resolved and not group.tokens:
                del self._groups[gkey]
        for fps in self._critical.values():
            fps.difference_update(fingerprints)
        # a replay after the rebalance must not be released on the strength of a delivery
        # still in flight here: prefer a duplicate to a loss (the sent log dedupes the rest)
        self._emitted = {k: t for k, t in self._emitted.items()
                         if k.split("|")[1] not in fingerprints}

    def _inhibited(self, alert: Mapping[str, Any]) -> bool:
        return alert["severity"] != "critical" and bool(self._critical.get(alert["model"]))

    def firing_for_sink(self, sink: str) -> list[dict[str, Any]]:
        """Firing, not inhibited alerts of the routes that deliver to ``sink`` (what an
        Alertmanager sink keeps alive by re-sending)."""
        seen: dict[str, dict[str, Any]] = {}
        for group in self._groups.values():
            if sink in group.route.sinks:
                seen.update((fp, a) for fp, a in group.firing.items() if not self._inhibited(a))
        return list(seen.values())

    def open_alerts(self) -> list[dict[str, Any]]:
        """Firing alerts currently held (deduplicated across routes)."""
        seen: dict[str, dict[str, Any]] = {}
        for group in self._groups.values():
            seen.update(group.firing)
        return list(seen.values())
