"""Sending outgoing records without ever blocking on one of them.

Records go out in chunks of at most ``chunk`` sends in flight, each acknowledged by the
broker before the chunk counts as sent. A record the broker refuses is retried up to
``retries`` times with a short backoff; a record that still cannot be stored — over the
producer's max request size, or refused for any other reason — is dead-lettered (its value
capped at ``max_dead_value`` bytes, its SHA-256 and size in the reason) and the others go
on. Only when the dead letter cannot be stored either (the broker is unreachable) is the
record handed back to the caller, to be tried again later.

A caller that passes ``refused`` (the worker loop, for state snapshots) gets the records
that cannot be stored there instead: they are never dead-lettered, since a dead-lettered
snapshot is a snapshot *not stored*, and must not count as saved.

**Order.** Records are handed to the producer one after another in the caller's order
(their acknowledgements are then awaited together), so the records of one key reach their
partition in the order they were computed: the alert evaluator's event-time clocks rely on
it. Only a retried record can land after records that followed it.

The sender keeps no queue of its own: every caller (an agent, a stage's poll) owns its
records, so concurrent callers cannot take each other's records.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import CollectorRegistry

from schemas.codec import Codec
from schemas.metrics_catalogue import counter
from stream_jobs.dead_letter import dead_letter_record
from stream_jobs.handler import Outgoing

log = logging.getLogger("modelwatch.sender")
SendOne = Callable[[Outgoing], Awaitable[Awaitable[Any]]]


class SenderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dead_lettered = counter("modelwatch_outputs_dead_lettered_total", registry)
        self.retries = counter("modelwatch_output_retries_total", registry)


class Sender:
    def __init__(
        self,
        send_one: SendOne,
        codec: Codec,
        dead_letter_topic: str,
        metrics: SenderMetrics,
        chunk: int = 500,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_dead_value: int = 65_536,
    ) -> None:
        self.send_one = send_one
        self.codec = codec
        self.dead_letter_topic = dead_letter_topic
        self.metrics = metrics
        self.chunk = chunk
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_dead_value = max_dead_value

    async def _try(self, rec: Outgoing) -> BaseException | None:
        return await _settled(await self._enqueue(rec))

    async def _enqueue(self, rec: Outgoing) -> Awaitable[Any] | BaseException:
        """Hand one record to the producer; its delivery future, or why it was refused."""
        try:
            return await self.send_one(rec)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - any refusal is handled per record
            return exc

    async def send(
        self, records: Sequence[Outgoing], refused: list[Outgoing] | None = None
    ) -> list[Outgoing]:
        """Send everything; returns the records neither stored nor dead-lettered. With
        ``refused``, a record the broker will not store goes there, not to dead letters."""
        kept: list[Outgoing] = []
        for i in range(0, len(records), self.chunk):
            part = records[i : i + self.chunk]
            # handed over one after another, in order (a gather of sends would interleave
            # their awaits and reorder a key's records); acknowledged together
            handed = [await self._enqueue(r) for r in part]
            errors = await asyncio.gather(*(_settled(h) for h in handed))
            for rec, exc in zip(part, errors, strict=True):
                if exc is not None and not await self._retry(rec, exc, refused):
                    kept.append(rec)
        return kept

    async def _retry(
        self, rec: Outgoing, exc: BaseException, refused: list[Outgoing] | None = None
    ) -> bool:
        """True once the record is stored, dead-lettered or put in ``refused``."""
        for attempt in range(self.retries):
            if isinstance(exc, MessageSizeTooLargeError):
                break
            self.metrics.retries.labels(rec.topic).inc()
            await asyncio.sleep(self.backoff_s * (2**attempt))
            got = await self._try(rec)
            if got is None:
                return True
            exc = got
        if refused is not None:
            log.error("record of %d bytes for %s not stored: %r", len(rec.value), rec.topic, exc)
            refused.append(rec)
            return True
        if rec.topic == self.dead_letter_topic:
            log.error("dead letter of %d bytes could not be stored: %r", len(rec.value), exc)
            return False
        dead = self.dead_letter(rec, exc)
        if await self._try(dead) is not None:
            return False
        self.metrics.dead_lettered.labels(rec.topic).inc()
        log.error("record for %s dead-lettered after %r", rec.topic, exc)
        return True

    def dead_letter(self, rec: Outgoing, exc: BaseException) -> Outgoing:
        digest = hashlib.sha256(rec.value).hexdigest()
        reason = (
            f"could not be sent to {rec.topic}: {exc!r}; value of {len(rec.value)} bytes, "
            f"sha256 {digest}, first {min(len(rec.value), self.max_dead_value)} bytes kept"
        )
        record = dead_letter_record(
            key=rec.key, value=rec.value[: self.max_dead_value], reason=reason,
            error_kind="unsendable", topic=rec.topic, partition=-1, offset=-1,
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
        return Outgoing(self.dead_letter_topic, rec.key, self.codec.encode("DeadLetter", record))


async def _settled(handed: Awaitable[Any] | BaseException) -> BaseException | None:
    """None once a handed-over record is acknowledged; the exception otherwise."""
    if isinstance(handed, BaseException):
        return handed
    try:
        await handed
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - any refusal is handled per record
        return exc
    return None
