"""Where the restore of a partition's label join may start: processed positions over time.

A worker that owns a partition samples, now and then, how far it has processed both topics
of it: ``(wall ms, prediction offset, label offset)`` — every record at or below those
offsets was processed by then. The samples travel with the partition (worker-state
changelog), so the next owner can tell which records can no longer matter. With

    H = ttl + expiry_bucket + max_ahead + clock margin

(``max_ahead``: the input rule that rejects event times further ahead of the processing
clock), a prediction processed before ``now - H`` has expired by ``now``, and so has an
early label. Restoring from the positions of three samples then gives the same live join
state as re-reading both topics from offset 0 (proof in ``label_restore``'s header):

==================  ==================================  =======================================
range               from the latest sample taken at or  why
                    before
==================  ==================================  =======================================
predictions         ``now - 2H``                        a label read after ``now - H`` may have
                                                        joined a prediction read up to ``H``
                                                        earlier (it must show as joined)
labels              ``now - 3H``                        an early label joins a prediction read
                                                        up to ``H`` after it
early labels        ``now - H``                         a label read earlier whose prediction
                                                        is not found has joined an expired one,
                                                        or expired itself: never early
==================  ==================================  =======================================

Without a sample old enough a range starts at offset 0 (the whole partition, as before).

>>> pts = RestorePoints()
>>> for t, p, l in [(0, 9, 4), (100, 19, 14), (200, 29, 24), (300, 39, 34)]:
...     _ = pts.add(t * 1000, p, l, horizon_ms=50_000)
>>> pts.start(now_ms=310_000, horizon_ms=50_000)  # samples at 200 s (2H ago), 100 s, 200 s
RestoreStart(predictions=30, labels=15, early_labels=25)
>>> RestorePoints().start(now_ms=310_000, horizon_ms=50_000)
RestoreStart(predictions=0, labels=0, early_labels=0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

CLOCK_MARGIN_MS = 60_000  # worker clocks disagree by less than this
SAMPLES_PER_HORIZON = 16  # a range starts at most H/16 of processing earlier than needed
MIN_STEP_MS = 5_000


class RestoreStart(NamedTuple):
    predictions: int  # first prediction offset to re-read
    labels: int  # first label offset to re-read
    early_labels: int  # labels below this offset never wait as early labels


def horizon_ms(ttl_ms: int, expiry_bucket_ms: int, max_ahead_ms: int) -> int:
    return ttl_ms + expiry_bucket_ms + max_ahead_ms + CLOCK_MARGIN_MS


@dataclass
class RestorePoints:
    """The thinned sample history of one partition (oldest first)."""

    samples: list[tuple[int, int, int]] = field(default_factory=list)

    def add(self, now_ms: int, predictions: int, labels: int, horizon_ms: int) -> bool:
        """Sample the processed positions at ``now_ms``; False when the last sample is too
        recent to need another (nothing changed). Keeps one sample at or before
        ``now - 3H`` and the rest, at least ``H/16`` apart, after it."""
        step = max(MIN_STEP_MS, horizon_ms // SAMPLES_PER_HORIZON)
        if self.samples:
            t, p, lab = self.samples[-1]
            if now_ms - t < step or (predictions, labels) == (p, lab):
                return False
            predictions, labels = max(predictions, p), max(labels, lab)  # never backwards
        self.samples.append((now_ms, predictions, labels))
        oldest = now_ms - 3 * horizon_ms
        while len(self.samples) > 1 and self.samples[1][0] <= oldest:
            self.samples.pop(0)
        return True

    def _at(self, t_ms: int, which: int) -> int:
        best = -1
        for sample in self.samples:
            if sample[0] > t_ms:
                break
            best = sample[which]
        return best + 1

    def start(self, now_ms: int, horizon_ms: int) -> RestoreStart:
        return RestoreStart(
            predictions=self._at(now_ms - 2 * horizon_ms, 1),
            labels=self._at(now_ms - 3 * horizon_ms, 2),
            early_labels=self._at(now_ms - horizon_ms, 2),
        )

    def to_header(self) -> dict[str, Any]:
        last = self.samples[-1][1] if self.samples else -1
        return {"last_offset": last, "samples": [list(s) for s in self.samples]}

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> RestorePoints:
        return cls([(int(t), int(p), int(lab)) for t, p, lab in header.get("samples", [])])
