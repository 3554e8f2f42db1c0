"""The client properties mapped onto Faust / aiokafka settings (the worker's Kafka client).

aiokafka has its own settings, so the properties a Faust app honours are mapped one by
one; a security property it cannot honour is an error at start, never silently dropped:

| property | Faust / aiokafka |
| --- | --- |
| ``bootstrap.servers`` (comma-separated) | ``broker`` = ``kafka://h1:p;h2:p`` (Faust splits on ``;``) |
| ``security.protocol`` PLAINTEXT / SSL / SASL_PLAINTEXT / SASL_SSL | ``broker_credentials`` |
| ``sasl.mechanism(s)`` PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 | ``SASLCredentials(mechanism=...)`` |
| ``sasl.username`` / ``sasl.password`` (or ``sasl.jaas.config``) | ``SASLCredentials`` |
| ``ssl.ca.location`` (file or directory) | ``ssl.SSLContext`` trust (default: system CAs) |
| ``ssl.certificate.location`` + ``ssl.key.location`` (+ ``ssl.key.password``) | client certificate (mTLS) |
| ``ssl.endpoint.identification.algorithm`` = ``https`` / ``none`` | hostname check on / off |
| ``ssl.cipher.suites`` | ``SSLContext.set_ciphers`` |
| ``client.id``, ``session.timeout.ms``, ``heartbeat.interval.ms`` | ``broker_client_id``, ``broker_session_timeout``, ``broker_heartbeat_interval`` |
| any other ``ssl.*`` / ``sasl.*`` (OAUTHBEARER, GSSAPI, PKCS#12 keystores, inline PEM, CRLs) | error |
| other librdkafka tuning | not used by the worker (the CLI, SDK and alerting use it) |

The producer acknowledges with ``acks=all`` (``producer_acks=-1``); Faust enables
aiokafka's idempotent producer only inside transactions, and the embedded broker cannot
run those, so the worker's idempotence is its own (offsets kept in state, DESIGN.md).
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from schemas.kafka.config import KafkaConfig
from schemas.kafka.properties import KafkaConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MAPPED = frozenset({
    "bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.mechanisms",
    "sasl.username", "sasl.password", "ssl.ca.location", "ssl.certificate.location",
    "ssl.key.location", "ssl.key.password", "ssl.endpoint.identification.algorithm",
    "ssl.cipher.suites", "client.id", "session.timeout.ms", "heartbeat.interval.ms",
})  # fmt: skip


def broker_url(bootstrap: str) -> str:
    hosts = [h.strip() for h in bootstrap.replace(";", ",").split(",") if h.strip()]
    if not hosts:
        raise KafkaConfigError("bootstrap.servers is empty")
    return "kafka://" + ";".join(h.split("://", 1)[-1] for h in hosts)


def ssl_context(props: dict[str, str] | Any, where: object = "client properties") -> ssl.SSLContext:
    ca = props.get("ssl.ca.location")
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if ca:
            if os.path.isdir(ca):
                ctx.load_verify_locations(capath=ca)
            else:
                ctx.load_verify_locations(cafile=ca)
        cert, key = props.get("ssl.certificate.location"), props.get("ssl.key.location")
        if bool(cert) != bool(key):
            raise KafkaConfigError(
                f"{where}: ssl.certificate.location and ssl.key.location go together (mTLS)"
            )
        if cert:
            ctx.load_cert_chain(cert, key, password=props.get("ssl.key.password") or None)
        if props.get("ssl.cipher.suites"):
            ctx.set_ciphers(props["ssl.cipher.suites"])
    except (OSError, ssl.SSLError) as exc:
        raise KafkaConfigError(f"{where}: TLS files unusable: {exc}") from None
    algo = props.get("ssl.endpoint.identification.algorithm", "https").lower()
    if algo not in ("https", "none", ""):
        raise KafkaConfigError(f"{where}: ssl.endpoint.identification.algorithm={algo!r}")
    ctx.check_hostname = algo == "https"
    return ctx


def faust_settings(config: KafkaConfig) -> dict[str, Any]:
    """Keyword arguments for ``faust.App``: broker list, credentials, group timeouts, acks."""
    import faust  # the worker extra; the SDK never imports this module's caller

    props = config.properties
    where = props.source or "client properties"
    unsupported = sorted(k for k in props if k.startswith(("ssl.", "sasl.", "security."))
                         and k not in MAPPED)  # fmt: skip
    if unsupported:
        raise KafkaConfigError(
            f"{where}: the worker (aiokafka) cannot honour {', '.join(unsupported)}; "
            "use PEM files (ssl.ca.location, ssl.certificate.location, ssl.key.location) "
            "and SASL PLAIN or SCRAM"
        )
    protocol = props.get("security.protocol", "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise KafkaConfigError(f"{where}: security.protocol={protocol!r}: one of {PROTOCOLS}")
    out: dict[str, Any] = {"broker": broker_url(config.bootstrap), "producer_acks": -1}
    ctx = ssl_context(props, where) if protocol.endswith("SSL") else None
    if protocol.startswith("SASL"):
        mechanism = (props.get("sasl.mechanism") or props.get("sasl.mechanisms")
                     or "GSSAPI").upper()  # librdkafka's default mechanism is GSSAPI
        if mechanism not in MECHANISMS:
            raise KafkaConfigError(
                f"{where}: sasl.mechanism={mechanism}: the worker supports {', '.join(MECHANISMS)}"
            )
        if not props.get("sasl.username") or props.get("sasl.password") is None:
            raise KafkaConfigError(f"{where}: SASL needs sasl.username and sasl.password")
        creds = faust.SASLCredentials(username=props["sasl.username"],
                                      password=props["sasl.password"], ssl_context=ctx,
                                      mechanism=mechanism)
        out["broker_credentials"] = creds
    elif ctx is not None:
        out["broker_credentials"] = faust.SSLCredentials(ctx)
    if "client.id" in props:
        out["broker_client_id"] = props["client.id"]
    session = props.get("session.timeout.ms")
    heartbeat = props.get("heartbeat.interval.ms")
    if config.embedded:
        session = session or "6000"
        heartbeat = heartbeat or "1000"
    try:
        if session:
            out["broker_session_timeout"] = float(session) / 1000.0
        if heartbeat:
            out["broker_heartbeat_interval"] = float(heartbeat) / 1000.0
    except ValueError as exc:
        raise KafkaConfigError(f"{where}: {exc}") from None
    return out
