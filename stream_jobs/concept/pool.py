"""The pooled concept test in the merge stage: one per model version, over every input
partition's errors, whichever worker owns which partition.

Stage 1 (:mod:`stream_jobs.join.engine`) counts each partition's 0/1 errors in event-time
buckets and, every ``concept_step_ms`` of event time its partition has *settled* (no later
error of the partition can land at or before it), sends the buckets it settled as a
:class:`~stream_jobs.merge.protocol.PartialRecord` of kind ``concept``: payload
``[[bucket start, n, errors], ...]`` (JSON), ``progress_ms`` how far it has settled. Here
each record goes into its model version's
:class:`~stream_jobs.concept.pooled.PooledErrorTest` (the counts, then the partition's
progress), which settles a bucket once every partition feeding the model has passed it; the
verdict's changes, and one observation per merged performance window of the model, are the
``concept_drift`` detections (:mod:`stream_jobs.concept.verdict`).

Exactly once per bucket: a record whose progress its partition has already reported is a
copy (the outbox re-sends after a crash) and is skipped; of a record that goes further,
only the buckets past the reported progress count (a new owner of the input partition
sends again from its last snapshot what the old one had partly sent).

>>> from stream_jobs.join.config import LabelConfig
>>> from stream_jobs.merge.protocol import PartialRecord
>>> pool = ConceptPool(LabelConfig(concept_warmup=10), stall_s=60)
>>> rec = lambda p, prog, buckets: PartialRecord(
...     "m", "1", KIND, 0, prog, p, 2, 0, encode_buckets(buckets), prog)
>>> pool.add(0, rec(0, 2_000, [(0, 50, 5), (1_000, 50, 5)]))
'applied'
>>> pool.add(0, rec(0, 2_000, [(0, 50, 5), (1_000, 50, 5)]))
'duplicate'
>>> test = pool.tests[0][("m", "1")]
>>> test.settled_ms  # partition 1 has not reported yet
-4611686018427387904
>>> pool.add(0, rec(1, 1_000, [(0, 40, 4)])), test.settled_ms
('applied', 1000)
>>> pool.add(0, rec(1, 3_000, [(0, 40, 4), (2_000, 40, 30)]))  # a resend and more
'applied'
>>> test.settled_ms, test.base_n, pool.poll(0)
(2000, 140.0, [])
>>> pool.add(0, rec(0, 3_000, [])), [(d.active, d.value) for d in pool.poll(0)]
('applied', [(True, 0.75)])
>>> ConceptPool.load_into(ConceptPool(LabelConfig(), 60), 0, pool.state(0)).tests[0].keys()
dict_keys([('m', '1')])
"""

from __future__ import annotations

import json
from typing import Any

from schemas.detection import Detection
from stream_jobs.concept.monitor import Fire
from stream_jobs.concept.pooled import NO_TIME, PooledErrorTest
from stream_jobs.concept.verdict import concept_detection
from stream_jobs.join.config import LabelConfig
from stream_jobs.merge.protocol import PartialRecord

KIND = "concept"
Counts = list[tuple[int, float, float]]  # (bucket start, n, errors)


def encode_buckets(counts: Counts) -> bytes:
    """A concept partial's payload (never empty: an empty list is ``[]``)."""
    return json.dumps([[int(s), float(n), float(k)] for s, n, k in counts]).encode()


def decode_buckets(payload: bytes) -> Counts:
    return [(int(s), float(n), float(k)) for s, n, k in json.loads(payload)]


class ConceptPool:
    """Pooled concept tests per partials-topic partition ``q`` and model version."""

    def __init__(self, config: LabelConfig, stall_s: float) -> None:
        self.config = config
        self.stall_s = stall_s
        self.tests: dict[int, dict[tuple[str, str], PooledErrorTest]] = {}
        self._observed: dict[int, dict[tuple[str, str], int]] = {}  # last window end seen
        self._fired: dict[int, dict[tuple[str, str], list[Fire]]] = {}  # since the last poll
        self._last_fire: dict[int, dict[tuple[str, str], int]] = {}
        self._windows: dict[int, dict[tuple[str, str], list[tuple[int, int]]]] = {}  # to observe

    def _new_test(self) -> PooledErrorTest:
        c = self.config
        return PooledErrorTest(
            bucket_ms=c.concept_bucket_ms, warmup=c.concept_warmup,
            threshold=c.concept_threshold, ratio=c.concept_ratio,
            active_ms=c.vote_window_ms, stall_s=self.stall_s,
        )  # fmt: skip

    def add(self, q: int, rec: PartialRecord, now_s: float | None = None) -> str:
        """Apply one concept partial of partials partition ``q``: ``applied`` or
        ``duplicate`` (``now_s``: the stall timeout's clock; None: the wall clock)."""
        tests = self.tests.setdefault(q, {})
        test = tests.get((rec.model, rec.model_version))
        if test is None:
            test = tests[(rec.model, rec.model_version)] = self._new_test()
        test.expected = max(test.expected, rec.partitions)
        known = test.progress.get(rec.partition, NO_TIME)
        if rec.progress_ms <= known:
            return "duplicate"
        counts = decode_buckets(rec.payload)
        test.add_counts(rec.partition, [c for c in counts if c[0] + test.bucket_ms > known])
        fires = test.advance(rec.partition, rec.progress_ms, now_s)
        self._fired.setdefault(q, {}).setdefault((rec.model, rec.model_version), []).extend(fires)
        return "applied"

    def poll(self, q: int, now_s: float | None = None) -> list[Detection]:
        """What the tests' settled buckets say since the last poll, in event time: an alarm
        turns the verdict active at its own time, and it turns inactive ``active_ms`` after
        the last alarm once the test has settled past that; a merged window's observation
        comes once the test has settled past the window's end, judged at that end. All of
        it is a function of the settled buckets, whatever the order partials arrived in."""
        out: list[Detection] = []
        fired = self._fired.pop(q, {})
        for (model, version), test in sorted(self.tests.get(q, {}).items()):
            key = (model, version)
            fires = fired.get(key, []) + test.settle(now_s=now_s)  # settle: stalled partitions
            marks = [(f.event_time_ms, True) for f in fires]
            last = self._last_fire.setdefault(q, {}).get(key)
            for f in fires:
                if last is not None and f.event_time_ms - last > test.active_ms:
                    marks.append((last + test.active_ms + 1, False))
                last = f.event_time_ms
            if last is not None and test.settled_ms > last + test.active_ms:
                marks.append((last + test.active_ms + 1, False))
            if last is not None:
                self._last_fire[q][key] = last
            waiting = self._windows.setdefault(q, {}).get(key, [])
            marks += [(end, start) for start, end in waiting if end <= test.settled_ms]
            self._windows[q][key] = [w for w in waiting if w[1] > test.settled_ms]
            for at, what in sorted(marks, key=lambda m: (m[0], isinstance(m[1], bool))):
                if isinstance(what, bool):  # a change of verdict
                    if what == test.active:
                        continue
                    test.active = what
                    if what:
                        test.active_since_ms = at
                    out.append(concept_detection(model, version, test, self.config, at_ms=at))
                else:  # a window's observation, at its end
                    out.append(concept_detection(model, version, test, self.config,
                                                 (what, at, False), at_ms=at))  # fmt: skip
        return out

    def window_closed(self, q: int, model: str, version: str, start: int, end: int) -> None:
        """A merged window of the model: observed (once) when the test settles past it."""
        test = self.tests.get(q, {}).get((model, version))
        seen = self._observed.setdefault(q, {})
        if test is None or end <= seen.get((model, version), NO_TIME):
            return
        seen[(model, version)] = end
        self._windows.setdefault(q, {}).setdefault((model, version), []).append((start, end))

    # ---- state (in the merge snapshot) ---------------------------------------------------
    def state(self, q: int) -> dict[str, Any]:
        tests = self.tests.get(q, {})
        return {
            "tests": [[m, v, t.to_bytes().decode()] for (m, v), t in sorted(tests.items())],
            "observed": [[m, v, e] for (m, v), e in sorted(self._observed.get(q, {}).items())],
            "last_fire": [[m, v, t] for (m, v), t in sorted(self._last_fire.get(q, {}).items())],
            "windows": [[m, v, ws] for (m, v), ws in sorted(self._windows.get(q, {}).items())],
        }

    def load_into(self, q: int, state: dict[str, Any]) -> ConceptPool:
        self.tests[q] = {
            (m, v): PooledErrorTest.from_bytes(t.encode()) for m, v, t in state.get("tests", [])
        }
        for t in self.tests[q].values():
            t.stall_s = self.stall_s  # the current setting
        self._observed[q] = {(m, v): int(e) for m, v, e in state.get("observed", [])}
        self._last_fire[q] = {(m, v): int(t) for m, v, t in state.get("last_fire", [])}
        self._windows[q] = {
            (m, v): [(int(a), int(b)) for a, b in ws] for m, v, ws in state.get("windows", [])
        }
        return self

    def forget(self, q: int) -> None:
        for d in (self.tests, self._observed, self._fired, self._last_fire, self._windows):
            d.pop(q, None)  # type: ignore[attr-defined]
