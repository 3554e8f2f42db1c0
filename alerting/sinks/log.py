"""Log/console sink: one coloured block per notification (rich).

Alert text is printed as :class:`~rich.text.Text`, never parsed as console markup, so a
feature called ``[bold red]x[/]`` prints as written and cannot break the sink.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from alerting.grouping import Notification
from alerting.sinks.base import alert_line, iso, title

SEVERITY_STYLE = {"critical": "bold white on red", "major": "bold dark_orange",
                  "minor": "cyan"}
RESOLVED_STYLE = "green"


def alert_text(a: dict) -> Text:
    style = RESOLVED_STYLE if a["status"] == "resolved" else SEVERITY_STYLE[a["severity"]]
    text = Text()
    text.append(f" {a['severity'].upper():8} ", style=style)
    text.append(" " + alert_line(a))
    return text


class LogSink:
    """Prints to a rich console (stdout by default); never fails."""

    def __init__(self, name: str, console: Console | None = None) -> None:
        self.name = name
        self.console = console or Console(highlight=False)

    def send(self, notification: Notification) -> None:
        self.console.print(Text(title(notification), style="bold"))
        for a in notification.alerts:
            self.console.print(alert_text(a))
            self.console.print(Text(f"    {a['summary']}  (fired {iso(a['fired_at_ms'])})",
                                    style="dim"))
