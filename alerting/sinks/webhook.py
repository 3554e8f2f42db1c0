"""Generic JSON webhook: the whole notification with every AlertEvent field.

Body::

    {"version": "1", "receiver": "<sink>", "route": "...", "status": "firing|resolved",
     "group_key": "...", "group_labels": {...}, "title": "...", "digest": false,
     "alerts": [{<AlertEvent fields>, "idempotency_key": "..."}]}

The ``Idempotency-Key`` header is stable for one notification, so receivers can dedupe
the rare duplicate that at-least-once delivery allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from alerting.grouping import Notification
from alerting.sinks.base import idempotency_header, post_json, status_of, title


def webhook_payload(sink: str, n: Notification) -> dict[str, Any]:
    return {
        "version": "1",
        "receiver": sink,
        "route": n.route.name,
        "status": status_of(n),
        "group_key": n.group_key,
        "group_labels": n.group_labels,
        "title": title(n),
        "digest": n.is_digest,
        "alerts": [dict(a, idempotency_key=n.key_of(a)) for a in n.alerts],
    }


class WebhookSink:
    def __init__(self, name: str, url: str, timeout_s: float = 10.0,
                 headers: Mapping[str, str] | None = None) -> None:
        self.name = name
        self._url = url
        self._headers = dict(headers or {})
        self._client = httpx.Client(timeout=timeout_s)

    def send(self, notification: Notification) -> None:
        headers = {**self._headers, "Idempotency-Key": idempotency_header(notification)}
        post_json(self._client, self.name, self._url, webhook_payload(self.name, notification),
                  headers)

    def __repr__(self) -> str:  # never show the URL
        return f"WebhookSink({self.name!r})"
