"""Concept drift on a model's whole error stream: a Bernoulli CUSUM on event-time buckets.

Per-partition detectors with a quorum (:mod:`stream_jobs.concept.quorum`) see 1/P of the
errors each, so they need about P times the samples one detector on the whole stream
needs (4 partitions: 1,000-1,500 rows for an error rate doubling from 10 %, where river's
ADWIN on the whole stream needs ~250). Here the partitions' 0/1 errors are *pooled*:

* every joined error adds to the count ``(n, errors)`` of an event-time bucket
  (``bucket_ms``) the caller assigns (:meth:`add`) — counts add, so the order in which
  partitions deliver does not matter;
* each partition reports how far it has *settled* (:meth:`advance`): no error will come
  for a bucket ending at or before that. A bucket is settled once every partition that
  feeds the model has settled past its end — however far ahead the others run in event
  time, as a fast replay's partitions do; only a partition that has reported nothing for
  ``stall_s`` seconds of *wall-clock* time (a dead producer, a partition without traffic;
  the engine passes the drift stage's ``idle_partition_s``) is not waited for. An error
  whose bucket is already settled (its partition reported for the first time after the
  others had settled past it) counts in the first open one;
* settled buckets go, in event-time order, through a one-sided Bernoulli CUSUM
  ``S = max(0, S + k ln(p1/p0) + (n - k) ln((1 - p1)/(1 - p0)))`` with ``p0`` the error
  rate of the baseline (the first ``warmup`` samples, then every bucket seen while
  ``S = 0``) and ``p1 = max(ratio x p0, p0 + min_shift)``: the error rate worth an alarm;
* ``S > threshold`` is an alarm (a :class:`~stream_jobs.concept.monitor.Fire`: baseline
  error before, the excursion's error after); the test restarts with the excursion's
  samples as the new baseline. An alarm stays *active* for ``active_ms`` of event time.

Same input, same alarms: the label engine assigns an error to the bucket of its prediction's
time or of the label clock when its label was read, whichever is later, and a partition
settles up to the lesser of its label clock and its prediction cut
(:mod:`stream_jobs.join.engine`) — both functions of the partition's own records. So the
settled buckets, and the alarms, depend neither on how partitions interleave nor on which of
a partition's two streams ran ahead — once every partition has reported (a partition that
first shows up after the others ran ahead has its earliest errors counted in the first open
bucket; they feed the warm-up baseline either way). Measured
(``make bench BENCH=bench_detection``, and the sweep in :mod:`stream_jobs.concept.detectors`).

It speaks the :class:`~stream_jobs.concept.quorum.VoteBox` interface the label engine
reads (``evaluate``, ``required``, ``active``, ``clock_ms``) with one "vote": its latest
alarm.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> test = PooledErrorTest(bucket_ms=1_000)
>>> t = np.arange(40_000) * 10  # 100 errors per second of event time
>>> err = (rng.random(t.size) < np.where(t < 200_000, 0.1, 0.2)).astype(float)
>>> part = rng.integers(0, 4, t.size)
>>> for lo in range(0, t.size, 500):
...     for p in range(4):
...         sel = slice(lo, lo + 500)
...         m = part[sel] == p
...         _ = test.add(p, err[sel][m], t[sel][m])
...         _ = test.advance(p, int(t[sel][-1]))
>>> [(f.event_time_ms, round(f.before, 2), round(f.after, 2)) for f in test.fires]
[(205000, 0.1, 0.2)]
>>> test.evaluate()[0], test.evaluate(205000 + 600_001)[0]
(True, False)
>>> PooledErrorTest.from_bytes(test.to_bytes()) == test
True
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from stream_jobs.concept.monitor import Fire

NO_TIME = -(2**62)


def bucket_counts(
    errors: np.ndarray, event_time_ms: np.ndarray, bucket_ms: int
) -> list[tuple[int, float, float]]:
    """``(bucket start, n, errors)`` of 0/1 ``errors`` by the buckets of their times."""
    if errors.size == 0:
        return []
    t = np.asarray(event_time_ms, dtype=np.int64)
    uniq, inv = np.unique((t // bucket_ms) * bucket_ms, return_inverse=True)
    n = np.bincount(inv)
    k = np.bincount(inv, weights=np.asarray(errors, dtype=np.float64))
    return list(zip(uniq.tolist(), n.astype(float).tolist(), k.tolist(), strict=True))


@dataclass
class PooledErrorTest:
    bucket_ms: int = 1_000
    warmup: int = 1_000
    threshold: float = 12.0
    ratio: float = 2.0
    min_shift: float = 0.02
    active_ms: int = 600_000
    stall_s: float = 120.0
    name: str = "cusum/pooled"
    buckets: dict[int, list[float]] = field(default_factory=dict)  # start -> [n, errors]
    progress: dict[int, int] = field(default_factory=dict)  # partition -> max event time
    heard: dict[int, float] = field(default_factory=dict)  # partition -> wall time last fed
    expected: int = 0  # partitions to hear from before settling (0: those heard from)
    first_heard: float | None = None  # wall time of the first report
    settled_ms: int = NO_TIME
    s: float = 0.0
    base_n: float = 0.0
    base_k: float = 0.0
    run_n: float = 0.0
    run_k: float = 0.0
    fires: list[Fire] = field(default_factory=list)  # the latest alarms (bounded)
    # what the label engine reads and writes (the VoteBox interface)
    clock_ms: int = NO_TIME
    active: bool = False
    active_since_ms: int = 0

    # ---- input -------------------------------------------------------------------------
    def add(self, partition: int, errors: np.ndarray, event_time_ms: np.ndarray) -> None:
        """Count a partition's 0/1 errors in the buckets of ``event_time_ms``."""
        self.add_counts(partition, bucket_counts(errors, event_time_ms, self.bucket_ms))

    def add_counts(self, partition: int, counts: list[tuple[int, float, float]]) -> None:
        """Add a partition's ``(bucket start, n, errors)`` counts (a bucket already settled:
        to the first open one)."""
        for start, n, k in counts:
            cell = self.buckets.setdefault(max(int(start), self.settled_ms), [0.0, 0.0])
            cell[0] += n
            cell[1] += k
            self.clock_ms = max(self.clock_ms, int(start) + self.bucket_ms - 1)

    def advance(self, partition: int, settled_ms: int, now_s: float | None = None) -> list[Fire]:
        """``partition`` will add no error to a bucket ending at or before ``settled_ms``;
        returns the alarms of the buckets this settles (``now_s``: the clock a stalled
        partition is timed on; None: the wall clock)."""
        now = time.time() if now_s is None else now_s
        self.progress[partition] = max(self.progress.get(partition, NO_TIME), int(settled_ms))
        self.heard[partition] = now
        if self.first_heard is None:
            self.first_heard = now
        return self.settle(now_s=now)

    def settle(self, horizon_ms: int | None = None, now_s: float | None = None) -> list[Fire]:
        """Run the CUSUM over buckets every live partition has passed (or ``horizon_ms``)."""
        if not self.progress:
            return []
        now = time.time() if now_s is None else now_s
        waited = now - (self.first_heard if self.first_heard is not None else now)
        if len(self.progress) < self.expected and waited < self.stall_s:
            return []  # a partition not heard from yet may still bring the first buckets
        live = [v for p, v in self.progress.items() if now - self.heard.get(p, now) <= self.stall_s]
        h = min(live or self.progress.values())
        if horizon_ms is not None:
            h = max(h, horizon_ms)
        ready = sorted(s for s in self.buckets if s + self.bucket_ms <= h)
        out = []
        for s in ready:
            n, k = self.buckets.pop(s)
            fire = self._step(s + self.bucket_ms, n, k)
            if fire is not None:
                out.append(fire)
        if ready:
            self.settled_ms = max(self.settled_ms, ready[-1] + self.bucket_ms)
        if out:
            self.fires = (self.fires + out)[-8:]
        return out

    def _step(self, end_ms: int, n: float, k: float) -> Fire | None:
        if self.base_n < self.warmup:
            self.base_n += n
            self.base_k += k
            return None
        p0 = (self.base_k + 0.5) / (self.base_n + 1.0)
        p1 = min(max(self.ratio * p0, p0 + self.min_shift), (1.0 + p0) / 2.0)
        self.s = max(0.0, self.s + k * math.log(p1 / p0) + (n - k) * math.log((1 - p1) / (1 - p0)))
        self.run_n += n
        self.run_k += k
        if self.s == 0.0:  # back to no evidence: the excursion was the baseline's own noise
            self.base_n += self.run_n
            self.base_k += self.run_k
            self.run_n = self.run_k = 0.0
            return None
        if self.s <= self.threshold:
            return None
        fire = Fire(
            int(end_ms),
            before=self.base_k / self.base_n,
            after=self.run_k / self.run_n,
            n_before=int(self.base_n),
            n_after=int(self.run_n),
        )
        # the excursion describes the new concept: it is the next baseline
        self.base_n, self.base_k = self.run_n, self.run_k
        self.run_n = self.run_k = 0.0
        self.s = 0.0
        return fire

    # ---- what the label engine reads (as a VoteBox) -------------------------------------
    def required(self) -> int:
        return 1

    def evaluate(self, clock_ms: int | None = None) -> tuple[bool, list[tuple[int, Fire]]]:
        """``(alarm active, [(0, latest alarm)])`` at ``clock_ms`` (default: the clock)."""
        now = self.clock_ms if clock_ms is None else clock_ms
        past = [f for f in self.fires if f.event_time_ms <= now]
        if not past or now - past[-1].event_time_ms > self.active_ms:
            return False, []
        return True, [(0, past[-1])]

    def to_bytes(self) -> bytes:
        """Plain JSON (no pickle): the label engine seals it with its state version."""
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["buckets"] = [[s, n, k] for s, (n, k) in self.buckets.items()]
        doc["progress"] = [[p, t] for p, t in self.progress.items()]
        doc["heard"] = [[p, t] for p, t in self.heard.items()]
        doc["fires"] = [asdict(f) for f in self.fires]
        return json.dumps(doc, separators=(",", ":")).encode()

    @staticmethod
    def from_bytes(data: bytes) -> PooledErrorTest:
        doc = json.loads(data)
        nested = ("buckets", "progress", "heard", "fires")
        test = PooledErrorTest(**{k: v for k, v in doc.items() if k not in nested})
        test.buckets = {int(s): [float(n), float(k)] for s, n, k in doc["buckets"]}
        test.progress = {int(p): int(t) for p, t in doc["progress"]}
        test.heard = {int(p): float(t) for p, t in doc["heard"]}
        test.fires = [Fire(**f) for f in doc["fires"]]
        return test
