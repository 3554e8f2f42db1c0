"""Email over SMTP: plain SMTP, STARTTLS or implicit TLS, optional authentication."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from alerting.grouping import Notification
from alerting.retry import DeliveryError
from alerting.sinks.base import one_line, redact, text_body, title


class EmailSink:
    def __init__(self, name: str, host: str, port: int, sender: str, to: list[str],
                 starttls: bool = False, use_ssl: bool = False, username: str | None = None,
                 password: str | None = None, timeout_s: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        if not to:
            raise ValueError(f"email sink {name!r} needs at least one recipient")
        self.name = name
        self.host, self.port = host, port
        self.sender, self.to = sender, list(to)
        self.starttls, self.use_ssl = starttls, use_ssl
        self.username = username
        self._password = password
        self.timeout_s = timeout_s
        self._ssl = ssl_context or ssl.create_default_context()

    def message(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        # header values come from alerts (model names, …): never let CR/LF start a header
        msg["Subject"] = one_line(f"[modelwatch] {title(n)}", 250)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["X-Modelwatch-Route"] = one_line(n.route.name)
        msg.set_content(text_body(n).encode("utf-8", "replace").decode("utf-8"))
        return msg

    def send(self, notification: Notification) -> None:
        msg = self.message(notification)
        try:
            if self.use_ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port,
                                                      timeout=self.timeout_s, context=self._ssl)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with smtp:
                smtp.ehlo()
                if self.starttls and not self.use_ssl:
                    smtp.starttls(context=self._ssl)
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            retryable = not 500 <= exc.smtp_code < 600
            raise DeliveryError(f"{self.name}: SMTP {exc.smtp_code}: "
                                f"{redact(str(exc.smtp_error), self._password)}",
                                retryable=retryable) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"{self.name}: recipients refused: {sorted(exc.recipients)}",
                                retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__}: "
                                f"{redact(str(exc), self._password)}") from None

    def __repr__(self) -> str:
        return f"EmailSink({self.name!r}, {self.host}:{self.port})"
