"""The worker's Kafka fetch: Faust's aiokafka transport with a short fetch wait.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` (hard-coded, no
setting). aiokafka keeps at most one fetch in flight per broker, and a fetch names only
the partitions whose previous data has been consumed. So when the worker is slower than
the fetch (always, while catching up), a fetch goes out for the partitions that are at
their end — the empty labels or window-partials topic, a predictions partition already
read — and the broker holds it the full wait: meanwhile the partitions being processed
drain and cannot be fetched again, and the agents sit idle. Measured (bench_worker's
topic, 2 ms of work per 500-event record, one aiokafka consumer): 1,500 ms wait: 22–37k
events/s with the consumer busy 27–53% of the time; 50–100 ms: 71–87k events/s, busy
71–73%.

A wait of :data:`FETCH_MAX_WAIT_MS` bounds that stall; the cost is an empty fetch that
often per idle worker. Everything else stays Faust's (``faust_app`` installs the
transport).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100  # Kafka's Java consumer defaults to 500, librdkafka to 500


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):  # aiokafka renamed it: say so
            raise RuntimeError("aiokafka consumer has no _fetch_max_wait_ms to set")
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when start() builds the Fetcher
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def install(app: faust.App) -> None:
    """Give ``app`` the short-wait transport (before its consumer is created)."""
    app.transport = Transport(app.conf.broker_consumer, app)
