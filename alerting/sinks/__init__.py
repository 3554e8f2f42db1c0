"""Notification sinks, built from the ``sinks:`` section of a routes file.

Secrets never sit in the file: ``url_env`` / ``password_env`` name environment variables.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from alerting.durations import parse_duration_ms
from alerting.sinks.alertmanager import AlertmanagerSink
from alerting.sinks.base import Sink, SinkConfigError, secret_from_env
from alerting.sinks.email import EmailSink
from alerting.sinks.log import LogSink
from alerting.sinks.slack import SlackSink
from alerting.sinks.webhook import WebhookSink

__all__ = ["Sink", "SinkConfigError", "build_sink", "build_sinks"]


def _timeout(conf: Mapping[str, Any]) -> float:
    return parse_duration_ms(conf.get("timeout", "10s")) / 1000


def build_sink(name: str, conf: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Sink:
    """One sink from its config; raises :class:`SinkConfigError` naming what is missing."""
    env = os.environ if env is None else env
    kind = conf.get("type")
    if kind == "log":
        return LogSink(name)
    if kind == "webhook":
        url = secret_from_env(conf, "url_env", name, env)
        assert url is not None
        headers = {str(k): str(v) for k, v in (conf.get("headers") or {}).items()}
        return WebhookSink(name, url, _timeout(conf), headers)
    if kind == "slack":
        url = secret_from_env(conf, "url_env", name, env)
        assert url is not None
        return SlackSink(name, url, _timeout(conf))
    if kind == "alertmanager":
        return _alertmanager(name, conf, env)
    if kind == "email":
        for key in ("host", "from", "to"):
            if not conf.get(key):
                raise SinkConfigError(f"sink {name!r}: email needs {key!r}")
        to = conf["to"] if isinstance(conf["to"], list) else [conf["to"]]
        password = secret_from_env(conf, "password_env", name, env,
                                   required=bool(conf.get("password_env")))
        ca_file = conf.get("ca_file")  # a private CA for the SMTP server's certificate
        ssl_context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
        return EmailSink(name, host=str(conf["host"]), port=int(conf.get("port", 25)),
                         sender=str(conf["from"]), to=[str(t) for t in to],
                         starttls=bool(conf.get("starttls", False)),
                         use_ssl=bool(conf.get("ssl", False)),
                         username=conf.get("username"), password=password,
                         timeout_s=_timeout(conf), ssl_context=ssl_context)
    raise SinkConfigError(f"sink {name!r}: unknown type {kind!r}")


ALERTMANAGER_KEYS = {"type", "url", "url_env", "timeout", "bearer_token_env", "username",
                     "password_env", "ca_file", "resend_interval", "generator_url"}


def _alertmanager(name: str, conf: Mapping[str, Any], env: Mapping[str, str]) -> Sink:
    unknown = set(conf) - ALERTMANAGER_KEYS
    if unknown:
        raise SinkConfigError(f"sink {name!r}: unknown keys {sorted(unknown)}; "
                              f"allowed: {sorted(ALERTMANAGER_KEYS)}")
    url = conf.get("url") or secret_from_env(conf, "url_env", name, env)
    assert url is not None
    token = secret_from_env(conf, "bearer_token_env", name, env,
                            required=bool(conf.get("bearer_token_env")))
    basic = None
    if conf.get("username") or conf.get("password_env"):
        if not (conf.get("username") and conf.get("password_env")):
            raise SinkConfigError(f"sink {name!r}: basic auth needs both 'username' and "
                                  f"'password_env'")
        password = secret_from_env(conf, "password_env", name, env)
        assert password is not None
        basic = (str(conf["username"]), password)
    if token and basic:
        raise SinkConfigError(f"sink {name!r}: set bearer_token_env or username/password_env, "
                              f"not both")
    ca_file = conf.get("ca_file")
    if ca_file and not os.path.isfile(str(ca_file)):
        raise SinkConfigError(f"sink {name!r}: ca_file {ca_file} is not a file")
    resend_ms = parse_duration_ms(conf.get("resend_interval", "1m"))
    if resend_ms <= 0:
        raise SinkConfigError(f"sink {name!r}: resend_interval must be positive")
    return AlertmanagerSink(name, str(url), _timeout(conf), bearer_token=token,
                            basic_auth=basic, ca_file=str(ca_file) if ca_file else None,
                            resend_interval_ms=resend_ms,
                            generator_url=conf.get("generator_url"))


def build_sinks(confs: Mapping[str, Mapping[str, Any]],
                env: Mapping[str, str] | None = None) -> dict[str, Sink]:
    return {name: build_sink(name, conf, env) for name, conf in confs.items()}
