"""The client properties file and what each client is built with (no broker needed)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from schemas.kafka import ClientProperties, KafkaConfig, KafkaConfigError, load_properties
from schemas.kafka.faust_settings import broker_url, faust_settings
from schemas.kafka.properties import normalize, parse_properties
from schemas.topics import REFERENCE_MAX_BYTES, TopicNames
from tests.support.tls import have_openssl, make_tls_files

CONFLUENT_JAVA = r"""
# Required connection configs for Kafka producer, consumer, and admin
bootstrap.servers=pkc-abc12.eu-west-1.aws.confluent.cloud:9092
security.protocol=SASL_SSL
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \
    username=KEY password="s3cr\\\"et";
sasl.mechanism=PLAIN
client.dns.lookup=use_all_dns_ips
session.timeout.ms=45000
acks=all
schema.registry.url=https://psrc-xyz.confluent.cloud
basic.auth.credentials.source=USER_INFO
basic.auth.user.info=SRKEY:SRSECRET
"""


def write(tmp_path: Path, text: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / "client.properties"
    p.write_text(text)
    return p


def test_java_properties_syntax() -> None:
    raw = parse_properties("a.b = 1\n! comment\nc.d: two words  \ne.f   3\ng.h=x\\\n  y\nk=a\\=b\n")
    assert raw == {"a.b": "1", "c.d": "two words", "e.f": "3", "g.h": "xy", "k": "a=b"}


def test_bad_key_and_dangling_continuation_are_errors() -> None:
    with pytest.raises(KafkaConfigError, match=":2: "):
        parse_properties("a=1\n=oops\n", "f")
    with pytest.raises(KafkaConfigError, match="past the end"):
        parse_properties("a=1\\\n", "f")


def test_confluent_cloud_java_file(tmp_path: Path) -> None:
    props = load_properties(write(tmp_path, CONFLUENT_JAVA))
    assert props["sasl.username"] == "KEY"
    assert props["sasl.password"] == 's3cr"et'
    assert "sasl.jaas.config" not in props
    assert not any(k.startswith(("schema.registry.", "basic.auth.")) for k in props)
    assert props["client.dns.lookup"] == "use_all_dns_ips"


def test_secrets_are_masked_in_repr_and_str(tmp_path: Path) -> None:
    props = load_properties(write(tmp_path, CONFLUENT_JAVA + "ssl.key.password=KEYPASS\n"))
    config = KafkaConfig(props)
    for text in (repr(props), str(props), repr(config), str(config)):
        assert "s3cr" not in text and "KEYPASS" not in text and "SRSECRET" not in text
    assert "***" in repr(props) and "pkc-abc12" in repr(config)


def test_scram_jaas_needs_a_scram_mechanism() -> None:
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
            'username="u" password="p";')  # fmt: skip
    with pytest.raises(KafkaConfigError, match="SCRAM"):
        normalize({"sasl.jaas.config": jaas, "sasl.mechanism": "PLAIN"})
    out = normalize({"sasl.jaas.config": jaas, "sasl.mechanism": "SCRAM-SHA-512"})
    assert (out["sasl.username"], out["sasl.password"]) == ("u", "p")


def test_other_login_modules_and_jks_truststores_fail_clearly() -> None:
    with pytest.raises(KafkaConfigError, match="OAuthBearerLoginModule"):
        normalize({"sasl.jaas.config": "org.apache.kafka.common.security.oauthbearer."
                   "OAuthBearerLoginModule required;"})  # fmt: skip
    with pytest.raises(KafkaConfigError, match="JKS store"):
        normalize({"ssl.truststore.location": "/x.jks", "ssl.truststore.password": "p"})
    pem = normalize({"ssl.truststore.location": "/ca.pem", "ssl.truststore.type": "PEM"})
    assert pem == {"ssl.ca.location": "/ca.pem"}


def test_file_bootstrap_wins_and_missing_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "bootstrap.servers=b1:9093,b2:9093\n")
    assert KafkaConfig.load("127.0.0.1:9092", str(path)).bootstrap == "b1:9093,b2:9093"
    assert KafkaConfig.load("h:1", None).bootstrap == "h:1"
    with pytest.raises(KafkaConfigError, match="not a file"):
        KafkaConfig.load("h:1", str(tmp_path / "missing.properties"))


def test_profiles_set_group_timeouts_and_idempotence() -> None:
    props = ClientProperties({"bootstrap.servers": "h:1"})
    cluster, embedded = KafkaConfig(props, "cluster"), KafkaConfig(props, "embedded")
    assert "session.timeout.ms" not in cluster.consumer_config("g")  # librdkafka's default
    assert embedded.consumer_config("g")["session.timeout.ms"] == 6000
    assert cluster.producer_config()["acks"] == embedded.producer_config()["acks"] == "all"
    assert cluster.producer_config()["enable.idempotence"] is True
    assert embedded.producer_config()["enable.idempotence"] is False
    # the user's properties win over the profile; the caller's protocol wins over both
    user = KafkaConfig(props.with_updates({"session.timeout.ms": "30000",
                                           "group.id": "x"}), "embedded")  # fmt: skip
    conf = user.consumer_config("mine")
    assert conf["session.timeout.ms"] == "30000" and conf["group.id"] == "mine"


def test_profile_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELWATCH_PROFILE", "embedded")
    assert KafkaConfig.of("h:1").embedded
    monkeypatch.setenv("MODELWATCH_PROFILE", "tansu")
    with pytest.raises(KafkaConfigError, match="MODELWATCH_PROFILE"):
        KafkaConfig.of("h:1")


def test_unknown_librdkafka_property_fails_naming_the_file(tmp_path: Path) -> None:
    config = KafkaConfig.load(None, str(write(tmp_path, "bootstrap.servers=h:1\nno.such=1\n")))
    with pytest.raises(KafkaConfigError, match=r"client.properties.*no\.such"):
        config.admin()


def test_faust_broker_list_is_semicolon_joined() -> None:
    assert broker_url("b1:9092, b2:9092,b3:9092") == "kafka://b1:9092;b2:9092;b3:9092"


def test_faust_sasl_scram_over_tls_with_system_trust() -> None:
    props = ClientProperties({"bootstrap.servers": "b1:9096,b2:9096",
                              "security.protocol": "sasl_ssl",
                              "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u",
                              "sasl.password": "p"})  # fmt: skip
    out = faust_settings(KafkaConfig(props))
    creds = out["broker_credentials"]
    assert out["broker"] == "kafka://b1:9096;b2:9096" and out["producer_acks"] == -1
    assert creds.mechanism.value == "SCRAM-SHA-512" and creds.protocol.value == "SASL_SSL"
    assert creds.username == "u" and isinstance(creds.ssl_context, ssl.SSLContext)
    assert creds.ssl_context.check_hostname
    assert "broker_session_timeout" not in out  # cluster profile: the client's default


def test_faust_embedded_profile_timeouts() -> None:
    out = faust_settings(KafkaConfig(ClientProperties({"bootstrap.servers": "h:1"}), "embedded"))
    assert out["broker_session_timeout"] == 6.0 and out["broker_heartbeat_interval"] == 1.0
    assert "broker_credentials" not in out


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
          "sasl.username": "u", "sasl.password": "p"}, "OAUTHBEARER"),
        ({"security.protocol": "SSL", "ssl.keystore.location": "/k.p12"}, "ssl.keystore"),
        ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"}, "sasl.username"),
        ({"security.protocol": "KERBEROS"}, "security.protocol"),
        ({"security.protocol": "SSL", "ssl.ca.location": "/no/such/ca.pem"}, "TLS files"),
    ],
)  # fmt: skip
def test_faust_refuses_what_aiokafka_cannot_honour(extra: dict, match: str) -> None:
    props = ClientProperties({"bootstrap.servers": "h:1", **extra})
    with pytest.raises(KafkaConfigError, match=match):
        faust_settings(KafkaConfig(props))


@pytest.mark.skipif(not have_openssl(), reason="needs the openssl command")
def test_faust_mtls_context_loads_ca_and_client_certificate(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path)
    props = ClientProperties({"bootstrap.servers": "h:1", "security.protocol": "SSL",
                              "ssl.ca.location": str(tls.ca),
                              "ssl.certificate.location": str(tls.client_cert),
                              "ssl.key.location": str(tls.client_key),
                              "ssl.endpoint.identification.algorithm": "none"})  # fmt: skip
    ctx = faust_settings(KafkaConfig(props))["broker_credentials"].context
    assert not ctx.check_hostname
    assert any(c["subject"] == ((("commonName", "modelwatch-test-ca"),),)
               for c in ctx.get_ca_certs())  # fmt: skip
    half = ClientProperties({**props, "ssl.key.location": ""})
    with pytest.raises(KafkaConfigError, match="go together"):
        faust_settings(KafkaConfig(half))


def test_references_topic_fits_its_records() -> None:
    refs = next(s for s in TopicNames().specs(4) if s.name == TopicNames().references)
    assert refs.config == {"cleanup.policy": "compact",
                           "max.message.bytes": str(REFERENCE_MAX_BYTES)}  # fmt: skip


def test_settings_hand_every_client_the_properties_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelwatch.settings import load_settings
    from modelwatch.wiring import worker_config

    path = write(tmp_path, "bootstrap.servers=b1:9093,b2:9093\nsecurity.protocol=SASL_SSL\n"
                           "sasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=pw\n")  # fmt: skip
    monkeypatch.setenv("MODELWATCH_KAFKA_CONFIG", str(path))
    monkeypatch.setenv("MODELWATCH_BOOTSTRAP", "ignored:9092")
    monkeypatch.setenv("MODELWATCH_PROFILE", "cluster")
    settings = load_settings()
    assert settings.kafka.bootstrap == "b1:9093,b2:9093"
    assert settings.kafka.consumer_config("g")["security.protocol"] == "SASL_SSL"
    worker = worker_config(settings)
    assert faust_settings(worker.kafka)["broker"] == "kafka://b1:9093;b2:9093"
    assert "pw" not in repr(settings.kafka) and "pw" not in repr(worker)


def test_readme_examples_load(tmp_path: Path) -> None:
    """The client properties files the README shows parse, and the SASL ones map onto the
    worker's client (the mTLS one names files that exist only on a user's machine)."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```properties\n(.*?)```", readme, re.S)
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        config = KafkaConfig.load(None, str(write(tmp_path / str(i), block)))
        protocol = config.properties.get("security.protocol", "")
        if protocol.startswith("SASL"):
            creds = faust_settings(config)["broker_credentials"]
            assert creds.username and creds.password
            assert len(creds.password) < 4 or creds.password not in repr(config)
        else:
            assert config.properties["ssl.certificate.location"]
