"""The online detectors of one column in one partition: ADWIN, Page–Hinkley and
(optionally) KSWIN, all on values standardised by the reference.

ADWIN and Page–Hinkley see chunk z-scores (see :class:`ChunkedZ`); Page–Hinkley is not
scale-free, which is why everything is standardised first. Both are two-sided: an
*improvement* (a shift towards smaller or larger values) fires as well. KSWIN costs
~0.2–0.7 ms per update (a scipy KS test each time), so it sees one raw standardised value
in ``kswin_every``. river resets a detector after it fires, so one change fires once.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> d = ColumnDetectors("m", "1", "x", partition=0, mean=0.0, std=1.0, kswin=False)
>>> before = d.update(rng.normal(size=20_000), np.arange(20_000), offset=1)
>>> after = d.update(rng.normal(1.0, 1, 20_000), np.arange(20_000, 40_000), offset=2)
>>> before, sorted({f.detector for f in after}), all(f.event_time_ms >= 20_000 for f in after)
([], ['adwin', 'page_hinkley'], True)
"""

from __future__ import annotations

import numpy as np
from river.drift import ADWIN, KSWIN, PageHinkley

from stream_jobs.detectors.chunker import ChunkedZ
from stream_jobs.detectors.firing import Firing
from stream_jobs.detectors.river_loops import feeder


class ColumnDetectors:
    """ADWIN + Page–Hinkley on chunk z-scores, KSWIN on a 1-in-k sample."""

    def __init__(
        self,
        model: str,
        model_version: str,
        subject: str,
        partition: int,
        mean: float,
        std: float,
        chunk: int = 32,
        adwin: bool = True,
        page_hinkley: bool = True,
        kswin: bool = True,
        adwin_delta: float = 0.002,
        adwin_clock: int = 1,
        ph_delta: float = 0.5,
        ph_threshold: float = 15.0,
        kswin_every: int = 1_000,
        kswin_alpha: float = 0.0001,
    ) -> None:
        self.model, self.model_version, self.subject = model, model_version, subject
        self.partition = partition
        self.chunker = ChunkedZ(mean, std, chunk)
        self.adwin = ADWIN(delta=adwin_delta, clock=adwin_clock) if adwin else None
        self.ph = (
            PageHinkley(min_instances=30, delta=ph_delta, threshold=ph_threshold, mode="both")
            if page_hinkley
            else None
        )
        self._online = [(d, name, feeder(d)) for d, name in ((self.adwin, "adwin"),
                        (self.ph, "page_hinkley")) if d is not None]  # fmt: skip
        self.kswin = KSWIN(alpha=kswin_alpha, seed=partition) if kswin else None
        self.kswin_every = int(kswin_every)
        self._kswin_next = 0

    def _fire(self, detector: str, offset: int, t: int, stat: float) -> Firing:
        return Firing(
            self.model, self.model_version, self.subject, detector, self.partition,
            offset, int(t), float(stat),
        )  # fmt: skip

    def update(self, x: np.ndarray, t: np.ndarray, offset: int) -> list[Firing]:
        """Feed one batch's values of this column (``t``: their event times)."""
        z, tz = self.chunker.update(x, t)
        return self.update_chunked(x, t, offset, z, tz)

    def update_chunked(
        self, x: np.ndarray, t: np.ndarray, offset: int, z: np.ndarray, tz: np.ndarray
    ) -> list[Firing]:
        """:meth:`update` once the chunker has made ``(z, tz)`` of ``(x, t)``."""
        out: list[Firing] = []
        if z.size:
            zl = z.tolist()
            for det, name, feed in self._online:
                for i in feed(det, zl):  # = det.update(v) for each value, faster
                    out.append(self._fire(name, offset, tz[i], zl[i]))
        if self.kswin is not None:
            self._kswin(x, t, offset, out)
        return out

    def _kswin(self, x: np.ndarray, t: np.ndarray, offset: int, out: list[Firing]) -> None:
        n = x.size
        start = self._kswin_next
        if start >= n:
            self._kswin_next = start - n
            return
        idx = np.arange(start, n, self.kswin_every)
        self._kswin_next = int(idx[-1]) + self.kswin_every - n
        v = x[idx]
        keep = np.isfinite(v)
        z = self.chunker.standardise(v[keep]).tolist()
        ts = t[idx][keep]
        det = self.kswin
        assert det is not None
        for i, val in enumerate(z):
            det.update(val)
            if det.drift_detected:
                out.append(self._fire("kswin", offset, ts[i], det.p_value))
