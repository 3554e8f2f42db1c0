"""Slack-compatible incoming webhook: ``text`` fallback plus Block Kit ``blocks``.

Everything that comes from an alert (model, feature names, summaries) is escaped the way
Slack asks (``&``, ``<``, ``>``), so a name cannot ping ``<!channel>`` or forge a link;
a runbook link is only made of an http(s) URL.
"""

from __future__ import annotations

from typing import Any

import httpx

from alerting.grouping import Notification
from alerting.sinks.base import SEVERITY_EMOJI, alert_line, post_json, title

MAX_ALERT_BLOCKS = 20  # Slack allows 50 blocks; keep room for the header and overflow line


def escape(text: str) -> str:
    """Slack's mrkdwn escaping.

    >>> escape("<!channel> & <https://evil.example|x>")
    '&lt;!channel&gt; &amp; &lt;https://evil.example|x&gt;'
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str | None) -> str:
    if not url or not url.startswith(("https://", "http://")) or any(c in url for c in "<>| \n"):
        return ""
    return f"\n<{escape(url)}|runbook>"


def slack_payload(n: Notification) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(n)[:150]}},
    ]
    for a in n.alerts[:MAX_ALERT_BLOCKS]:
        icon = ":white_check_mark:" if a["status"] == "resolved" else SEVERITY_EMOJI[a["severity"]]
        text = f"{icon} *{escape(alert_line(a))}*\n{escape(a['summary'])}"
        text += _link(a.get("runbook_url"))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    if len(n.alerts) > MAX_ALERT_BLOCKS:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"… and {len(n.alerts) - MAX_ALERT_BLOCKS} more"}]})
    return {"text": escape(title(n)), "blocks": blocks}


class SlackSink:
    def __init__(self, name: str, url: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self._url = url
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, notification: Notification) -> None:
        post_json(self._client, self.name, self._url, slack_payload(notification))

    def __repr__(self) -> str:
        return f"SlackSink({self.name!r})"
