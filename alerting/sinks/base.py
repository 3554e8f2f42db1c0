"""What every sink shares: the protocol, rendering helpers, secrets and redaction."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from alerting.grouping import Notification
from alerting.retry import DeliveryError

# httpx logs every request URL at INFO: webhook URLs are secrets, so keep it quiet
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

SEVERITY_EMOJI = {"critical": ":red_circle:", "major": ":large_orange_circle:",
                  "minor": ":large_blue_circle:"}
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


class SinkConfigError(ValueError):
    """A sink that cannot be built (missing env var, missing key); names no secret."""


class Sink(Protocol):
    name: str

    def send(self, notification: Notification) -> None:
        """Deliver one notification or raise :class:`~alerting.retry.DeliveryError`."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float spelled as a string (JSON has no inf/NaN).

    >>> json_safe({"value": float("inf"), "xs": [1.0, float("nan")], "n": 2})
    {'value': 'inf', 'xs': [1.0, 'nan'], 'n': 2}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def one_line(text: str, limit: int = 200) -> str:
    r"""Text safe for a header or a title: control characters (CR, LF, …) become one space.

    >>> one_line("churn\r\nBcc: victim@example.com")
    'churn Bcc: victim@example.com'
    """
    text = _CONTROL.sub(" ", str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number(v: Any) -> str:
    """A detector value or threshold for humans (``inf`` / ``nan`` stay readable)."""
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def redact_url(url: str) -> str:
    """Keep scheme and host, drop path, query and credentials: secrets live there."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}/<redacted>"
    except ValueError:
        return "<redacted-url>"


def redact(text: str, *secrets: str | None) -> str:
    """Remove every secret and every URL's path from ``text`` (for errors and logs)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def secret_from_env(conf: Mapping[str, Any], key: str, sink: str,
                    env: Mapping[str, str] | None = None, required: bool = True) -> str | None:
    """The value of the environment variable named by ``conf[key]`` (e.g. ``url_env``)."""
    env = os.environ if env is None else env
    var = conf.get(key)
    if not var:
        if required:
            raise SinkConfigError(f"sink {sink!r}: set {key!r} to the name of the environment "
                                  f"variable holding the secret")
        return None
    value = env.get(str(var))
    if not value:
        if required:
            raise SinkConfigError(f"sink {sink!r}: environment variable {var} is not set")
        return None
    return value


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # outside datetime's years 1..9999
        return f"{ms} ms"


def status_of(n: Notification) -> str:
    return "firing" if n.firing else "resolved"


def title(n: Notification) -> str:
    """One line: ``[FIRING:2] critical churn`` (Alertmanager-like)."""
    severities = sorted({a["severity"] for a in n.alerts},
                        key=["critical", "major", "minor"].index)
    group = " ".join(v for v in n.group_labels.values() if v) or "all models"
    counts = f"FIRING:{len(n.firing)}" if n.firing else f"RESOLVED:{len(n.resolved)}"
    if n.firing and n.resolved:
        counts += f" RESOLVED:{len(n.resolved)}"
    digest = " digest" if n.is_digest and not n.group_labels.get("model") else ""
    return one_line(f"[{counts}] {'/'.join(severities)}{digest} {group}".rstrip())


def alert_line(a: Mapping[str, Any]) -> str:
    window = ""
    if a.get("window_start_ms") is not None and a.get("window_end_ms") is not None:
        window = f" window {iso(a['window_start_ms'])}..{iso(a['window_end_ms'])}"
    status = "RESOLVED " if a["status"] == "resolved" else ""
    return (f"{status}{a['severity'].upper()} {a['model']}"
            f"{'@' + a['model_version'] if a.get('model_version') else ''} {a['kind']} "
            f"{a['subject']}: {a['detector']}={number(a['value'])} "
            f"(threshold {number(a['threshold'])})"
            f"{window}")


def text_body(n: Notification) -> str:
    lines = [title(n), ""]
    for a in n.alerts:
        lines.append(alert_line(a))
        lines.append(f"  {a['summary']}")
        if a.get("runbook_url"):
            lines.append(f"  runbook: {a['runbook_url']}")
        lines.append(f"  fired at {iso(a['fired_at_ms'])}"
                     + (f", resolved at {iso(a['resolved_at_ms'])}"
                        if a.get("resolved_at_ms") else ""))
    return "\n".join(lines) + "\n"


def idempotency_header(n: Notification) -> str:
    import hashlib

    return hashlib.sha256("\n".join(sorted(n.keys.values())).encode()).hexdigest()


def post_json(client: httpx.Client, sink: str, url: str, payload: Any,
              headers: Mapping[str, str] | None = None) -> None:
    """POST JSON; map failures to :class:`DeliveryError` with the URL redacted."""
    try:
        resp = client.post(url, json=json_safe(payload), headers=dict(headers or {}))
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{sink}: {type(exc).__name__}: {redact(str(exc), url)}") from None
    if resp.status_code >= 300:
        retryable = resp.status_code >= 500 or resp.status_code in (408, 425, 429)
        body = redact(resp.text[:200], url)
        raise DeliveryError(f"{sink}: HTTP {resp.status_code} from {redact_url(url)}: {body}",
                            retryable=retryable)
