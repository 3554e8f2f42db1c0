"""A Kafka client properties file, as managed services hand it out (Confluent Cloud, MSK, Aiven).

The file uses librdkafka / Java client property names (``bootstrap.servers``,
``security.protocol``, ``sasl.mechanism``, ``sasl.username`` / ``sasl.password`` or
``sasl.jaas.config``, ``ssl.ca.location`` or a PEM ``ssl.truststore.location``,
``ssl.certificate.location``, ``ssl.key.location``). Parsing follows the Java
``.properties`` format: ``key=value``, ``key: value`` or ``key value``; ``#`` / ``!``
comments; a trailing backslash continues a line.

What happens to each key (the rest pass to librdkafka, which rejects unknown ones when the
first client is built):

| key | handling |
| --- | --- |
| ``sasl.jaas.config`` (PLAIN / SCRAM login module) | becomes ``sasl.username`` / ``sasl.password`` |
| ``sasl.jaas.config`` (any other login module) | error: only PLAIN and SCRAM credentials map |
| ``ssl.truststore.location`` with ``ssl.truststore.type=PEM`` | becomes ``ssl.ca.location`` |
| ``ssl.truststore.*`` of type JKS / PKCS12 | error: convert to PEM (librdkafka and Python read PEM) |
| ``schema.registry.*``, ``basic.auth.*`` | ignored: schema-registry settings, not Kafka's |
| ``key.serializer`` and the other Java (de)serializer classes | ignored: Java-only |

Secrets never reach logs: :meth:`ClientProperties.__repr__` masks them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

# keys of a properties file that are not Kafka client settings: dropped, never passed on
IGNORED_PREFIXES = ("schema.registry.", "basic.auth.")
IGNORED_KEYS = frozenset({
    "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
    "ssl.truststore.type", "ssl.truststore.password",
})  # fmt: skip
SECRET_WORDS = ("password", "secret", "jaas", "token", "user.info", "ssl.key.pem", "credential")

_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")
_JAAS_RE = re.compile(
    r"^\s*(?P<module>[\w.$]+)\s+(required|requisite|sufficient|optional)\s*(?P<opts>.*?);?\s*$",
    re.S,
)
_JAAS_OPT_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))')
_JAAS_MODULES = {
    "org.apache.kafka.common.security.plain.PlainLoginModule": "PLAIN",
    "org.apache.kafka.common.security.scram.ScramLoginModule": "SCRAM",
}


class KafkaConfigError(ValueError):
    """The client properties are malformed or ask for something a client cannot do."""


def is_secret(key: str) -> bool:
    """Values never shown: passwords, secrets, tokens, JAAS entries, inline PEM keys."""
    k = key.lower()
    return any(word in k for word in SECRET_WORDS)


class ClientProperties(Mapping[str, str]):
    """Immutable, string-valued Kafka client properties whose repr masks secrets."""

    def __init__(self, items: Mapping[str, str] | None = None, source: str | None = None) -> None:
        self._items = dict(items or {})
        self.source = source

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def with_updates(self, updates: Mapping[str, str]) -> ClientProperties:
        return ClientProperties({**self._items, **updates}, self.source)

    def masked(self) -> dict[str, str]:
        return {k: ("***" if is_secret(k) else v) for k, v in self._items.items()}

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"ClientProperties({self.masked()}{where})"

    __str__ = __repr__


def parse_properties(text: str, source: str = "<properties>") -> dict[str, str]:
    """Raw key/value pairs of a Java ``.properties`` text (later keys win)."""
    out: dict[str, str] = {}
    logical: list[str] = []
    start_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip() if not logical else raw.lstrip()
        if not logical:
            start_line = number
            if not line or line.startswith(("#", "!")):
                continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical.append(line[:-1])
            continue
        logical.append(line)
        entry, logical = "".join(logical), []
        key, value = _split_entry(entry)
        if not _KEY_RE.match(key):
            raise KafkaConfigError(f"{source}:{start_line}: {key!r} is not a property name")
        out[key] = _unescape(value)
    if logical:
        raise KafkaConfigError(f"{source}:{start_line}: line continues past the end of file")
    return out


def _split_entry(entry: str) -> tuple[str, str]:
    i = 0
    while i < len(entry):
        c = entry[i]
        if c == "\\":
            i += 2
            continue
        if c in "=:" or c.isspace():
            break
        i += 1
    key = _unescape(entry[:i])
    rest = entry[i:].lstrip()
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip()
    return key, rest


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out).rstrip()


def normalize(raw: Mapping[str, str], source: str = "<properties>") -> dict[str, str]:
    """Translate the Java-only forms to librdkafka's and drop non-Kafka keys (table above)."""
    props = {k: v for k, v in raw.items()
             if k not in IGNORED_KEYS and not k.startswith(IGNORED_PREFIXES)}  # fmt: skip
    jaas = props.pop("sasl.jaas.config", None)
    if jaas is not None:
        user, password, kind = parse_jaas(jaas, source)
        props.setdefault("sasl.username", user)
        props.setdefault("sasl.password", password)
        mech = props.get("sasl.mechanism", props.get("sasl.mechanisms", "")).upper()
        if kind == "SCRAM" and not mech.startswith("SCRAM"):
            raise KafkaConfigError(
                f"{source}: sasl.jaas.config uses the SCRAM login module: set "
                "sasl.mechanism=SCRAM-SHA-256 or SCRAM-SHA-512"
            )
    trust = props.pop("ssl.truststore.location", None)
    if trust is not None:
        kind = raw.get("ssl.truststore.type", "JKS").upper()
        if kind != "PEM":
            raise KafkaConfigError(
                f"{source}: ssl.truststore.location is a {kind} store; modelwatch's clients "
                "read PEM only: export the CA certificate (keytool -exportcert -rfc) and set "
                "ssl.ca.location to it"
            )
        props.setdefault("ssl.ca.location", trust)
    if "sasl.mechanisms" in props and "sasl.mechanism" in props:
        if props["sasl.mechanisms"] != props["sasl.mechanism"]:
            raise KafkaConfigError(f"{source}: sasl.mechanism and sasl.mechanisms disagree")
        del props["sasl.mechanisms"]
    return props


def parse_jaas(text: str, source: str = "<properties>") -> tuple[str, str, str]:
    """``(username, password, "PLAIN"|"SCRAM")`` of a ``sasl.jaas.config`` value."""
    m = _JAAS_RE.match(text)
    if m is None:
        raise KafkaConfigError(f"{source}: sasl.jaas.config is not a JAAS login module entry")
    kind = _JAAS_MODULES.get(m["module"])
    if kind is None:
        raise KafkaConfigError(
            f"{source}: sasl.jaas.config uses {m['module']}; only the PLAIN and SCRAM login "
            "modules map onto modelwatch's clients (set sasl.username/sasl.password instead)"
        )
    opts = {o[1]: (o[2] if o[2] is not None else o[3]) for o in _JAAS_OPT_RE.finditer(m["opts"])}
    if "username" not in opts or "password" not in opts:
        raise KafkaConfigError(f"{source}: sasl.jaas.config lacks username or password")
    return _unquote(opts["username"]), _unquote(opts["password"]), kind


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def load_properties(path: str | Path) -> ClientProperties:
    p = Path(path)
    if not p.is_file():
        raise KafkaConfigError(f"MODELWATCH_KAFKA_CONFIG points at {p}, which is not a file")
    raw = parse_properties(p.read_text(), str(p))
    return ClientProperties(normalize(raw, str(p)), source=str(p))
