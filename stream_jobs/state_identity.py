"""Which cluster and which life of the input topics the worker's local state belongs to.

The worker's local state (the label store) records input offsets it has applied. Offsets
only mean something within one *incarnation* of a topic: a topic deleted and created again,
or the embedded broker (memory only) started afresh, restarts offsets at 0, and old state
then silently skips or misattributes new records (measured: 4,491 joined labels of one
model counted under another model's name after a run on a fresh broker).

So the state directory carries an identity file: the cluster id and the topic id of each
input topic (Kafka ≥ 2.8 and Tansu give every topic a UUID when it is created; Tansu's
cluster id is a constant, its topic ids are not). Before the stores open,
:func:`ensure_state_identity` compares it with what the broker says now:

* same identity, or no file yet: the state is used (and the file written);
* a different identity: an ERROR names both, the old state is moved aside to
  ``<path>.stale-<identity digest>`` (nothing is deleted), and the worker starts clean;
* the broker gives no topic ids (old clusters) or cannot be asked: a warning, and the
  state is used as it is (the label stage's stale-offset check still warns).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from schemas.kafka import KafkaConfig

log = logging.getLogger("modelwatch.state")
IDENTITY_FILE = "state-identity.json"
NO_TOPIC_ID = {"", "AAAAAAAAAAAAAAAAAAAAAA", "00000000-0000-0000-0000-000000000000"}


@dataclass(frozen=True)
class Incarnation:
    cluster_id: str
    topic_ids: dict[str, str]

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Incarnation:
        data = json.loads(text)
        return cls(str(data["cluster_id"]), {str(k): str(v) for k, v in data["topic_ids"].items()})


def broker_incarnation(
    kafka: str | KafkaConfig, topics: Iterable[str], timeout_s: float = 10.0
) -> Incarnation | None:
    """The cluster id and topic ids the broker reports now, or None if it cannot tell."""
    from confluent_kafka import TopicCollection

    names = list(topics)
    try:
        admin = KafkaConfig.of(kafka).admin()
        cluster = admin.describe_cluster(request_timeout=timeout_s).result(timeout_s)
        futures = admin.describe_topics(TopicCollection(names), request_timeout=timeout_s)
        ids = {name: str(fut.result(timeout_s).topic_id) for name, fut in futures.items()}
    except Exception as exc:
        log.warning("cannot read the cluster/topic identity (%s): local state is not checked",
                    exc)
        return None
    if any(ids.get(n, "") in NO_TOPIC_ID for n in names):
        log.warning("the broker gives no topic ids: local state is not checked")
        return None
    return Incarnation(str(cluster.cluster_id or ""), ids)


def check_identity(state_dir: Path, now: Incarnation, state_paths: Iterable[Path]) -> bool:
    """Compare with the identity file of ``state_dir``; move stale state aside.

    Returns True when the state was stale (and has been moved aside).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "join").mkdir()
    >>> life1 = Incarnation("c", {"predictions": "A"})
    >>> check_identity(d, life1, [d / "join"]), (d / "join").exists()
    (False, True)
    >>> check_identity(d, Incarnation("c", {"predictions": "B"}), [d / "join"])
    True
    >>> (d / "join").exists(), len(list(d.glob("join.stale-*")))
    (False, 1)
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    ident = state_dir / IDENTITY_FILE
    stale = False
    if ident.exists():
        try:
            before = Incarnation.from_json(ident.read_text())
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable %s (%s): treating local state as stale", ident, exc)
            before = None
        if before != now:
            stale = True
            log.error(
                "LOCAL STATE IS FROM ANOTHER LIFE OF THE TOPICS: %s records cluster %r, "
                "topics %s; the broker now has cluster %r, topics %s. Moving the old state "
                "aside and starting clean.",
                ident, getattr(before, "cluster_id", "?"),
                getattr(before, "topic_ids", "?"), now.cluster_id, now.topic_ids,
            )
            tag = before.digest if before is not None else "unknown"
            for path in state_paths:
                if path.exists():
                    aside = path.with_name(f"{path.name}.stale-{tag}")
                    if aside.exists():
                        shutil.rmtree(aside, ignore_errors=True)
                    path.rename(aside)
                    log.error("moved %s to %s", path, aside)
    tmp = ident.with_suffix(".tmp")
    tmp.write_text(now.to_json())
    tmp.replace(ident)
    return stale


def ensure_state_identity(
    kafka: str | KafkaConfig, input_topics: Iterable[str], state_dir: Path,
    state_paths: Iterable[Path],
) -> bool:
    """Ask the broker, then :func:`check_identity`."""
    now = broker_incarnation(kafka, input_topics)
    if now is None:
        return False
    return check_identity(state_dir, now, list(state_paths))


def ensure_worker_state(
    kafka: str | KafkaConfig, predictions: str, labels: str, data_dir: str | Path,
    group_id: str,
) -> bool:
    """The worker's stores (the label store) against its input topics' incarnation; the
    composition root's one call, before the stores open."""
    root = Path(data_dir)
    return ensure_state_identity(kafka, [predictions, labels], root, [root / f"join-{group_id}"])
