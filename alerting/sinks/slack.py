"""Slack-compatible incoming webhook: ``text`` fallback plus Block Kit ``blocks``."""

from __future__ import annotations

from typing import Any

import httpx

from alerting.grouping import Notification
from alerting.sinks.base import SEVERITY_EMOJI, alert_line, post_json, title

MAX_ALERT_BLOCKS = 20  # Slack allows 50 blocks; keep room for the header and overflow line


def slack_payload(n: Notification) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title(n)[:150]}},
    ]
    for a in n.alerts[:MAX_ALERT_BLOCKS]:
        icon = ":white_check_mark:" if a["status"] == "resolved" else SEVERITY_EMOJI[a["severity"]]
        text = f"{icon} *{alert_line(a)}*\n{a['summary']}"
        if a.get("runbook_url"):
            text += f"\n<{a['runbook_url']}|runbook>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    if len(n.alerts) > MAX_ALERT_BLOCKS:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"… and {len(n.alerts) - MAX_ALERT_BLOCKS} more"}]})
    return {"text": title(n), "blocks": blocks}


class SlackSink:
    def __init__(self, name: str, url: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self._url = url
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, notification: Notification) -> None:
        post_json(self._client, self.name, self._url, slack_payload(notification))

    def __repr__(self) -> str:
        return f"SlackSink({self.name!r})"
