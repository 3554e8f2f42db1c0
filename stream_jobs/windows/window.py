"""The partial of one (model, model_version, window) built by one partition.

Counts, errors, fallbacks, a latency sketch, one column partial per feature and one for
the prediction (the score when the model emits one, else the predicted class). Partials
of the same window from several partitions :meth:`merge` into the model's window.

Type violations are counted against the reference's kinds (``PartialSpec.expected``): a
feature that arrives with the other kind is profiled under the kind it arrived with *and*
counted in ``wrong_kind``, its expected-kind column counting those events as missing; a
feature absent from a batch is counted in ``absent`` and as missing.

>>> import numpy as np
>>> from schemas.columnar import PredictionColumns
>>> cols = PredictionColumns.from_events([
...     {"prediction_id": str(i), "model": "m", "model_version": "1", "event_time_ms": i,
...      "numeric_features": {"x": float(i)}, "categorical_features": {"c": "ab"[i % 2]},
...      "score": 0.5, "latency_ms": 3.0, "status": "ok" if i else "error"} for i in range(4)])
>>> w = WindowPartial("m", "1", 0, 60_000)
>>> w.update(cols, np.array([0, 1])); w.update(cols, np.array([2, 3]))
>>> w.count, w.errors, w.numeric["x"].mean, w.categorical["c"].counts, w.prediction.n
(4, 1, 1.5, {'a': 2, 'b': 2}, 4)
>>> WindowPartial.from_bytes(w.to_bytes()).numeric["x"].m2 == w.numeric["x"].m2
True
"""

from __future__ import annotations

import math
import struct

import numpy as np

from schemas.columnar import CategoricalArray, PredictionColumns
from stream_jobs.blobs import pack_blobs, pack_strings, unpack_blobs, unpack_strings
from stream_jobs.windows.categorical import CategoricalPartial
from stream_jobs.windows.numeric import NumericPartial, stack_rows, update_rows
from stream_jobs.windows.spec import DEFAULT_SPEC, PREDICTION, PartialSpec

_HEAD = struct.Struct("<qqqqqqqb")
_I8 = np.dtype("<i8")
NUMERIC, CATEGORICAL = "numeric", "categorical"


def _counts_bytes(d: dict[str, int]) -> bytes:
    return pack_blobs(pack_strings(list(d)), np.array(list(d.values()), _I8).tobytes())


def _counts_from(data: bytes) -> dict[str, int]:
    names, values = unpack_blobs(data)
    return dict(zip(unpack_strings(names), np.frombuffer(values, _I8).tolist(), strict=True))


class WindowPartial:
    """Mergeable statistics of one model version's events in one event-time window."""

    def __init__(
        self,
        model: str,
        model_version: str,
        start_ms: int,
        end_ms: int,
        spec: PartialSpec = DEFAULT_SPEC,
    ) -> None:
        self.model = model
        self.model_version = model_version
        self.start_ms = int(start_ms)
        self.end_ms = int(end_ms)
        self.spec = spec
        self.count = 0
        self.errors = 0
        self.fallbacks = 0
        self.min_event_ms = math.inf
        self.max_event_ms = -math.inf
        self.latency = NumericPartial(spec.kll_k)
        self.numeric: dict[str, NumericPartial] = {}
        self.categorical: dict[str, CategoricalPartial] = {}
        self.prediction: NumericPartial | CategoricalPartial | None = None
        self.absent: dict[str, int] = {}
        self.wrong_kind: dict[str, int] = {}

    # ---- column factories ------------------------------------------------------------
    def _num(self, name: str) -> NumericPartial:
        p = self.numeric.get(name)
        if p is None:
            p = self.numeric[name] = NumericPartial(self.spec.kll_k, self.spec.ranges.get(name))
        return p

    def _cat(self, name: str) -> CategoricalPartial:
        p = self.categorical.get(name)
        if p is None:
            p = self.categorical[name] = CategoricalPartial(
                self.spec.category_cap, self.spec.known.get(name)
            )
        return p

    # ---- update ----------------------------------------------------------------------
    def update(self, cols: PredictionColumns, index: np.ndarray | None = None) -> None:
        """Add the rows ``index`` of ``cols`` (all rows when None); vectorised per column."""

        def take(a: np.ndarray) -> np.ndarray:
            return a if index is None else a[index]

        def take_cat(c: CategoricalArray) -> CategoricalArray:
            return c if index is None else c.take(index)

        t = take(cols.event_time_ms)
        n = int(t.size)
        if n == 0:
            return
        self.count += n
        st = take(cols.status)
        bc = np.bincount(st, minlength=3)
        self.errors += int(bc[1])
        self.fallbacks += int(bc[2])
        self.min_event_ms = min(self.min_event_ms, int(t.min()))
        self.max_event_ms = max(self.max_event_ms, int(t.max()))
        score = cols.score
        if score is not None and not isinstance(self.prediction, NumericPartial):
            self.prediction = NumericPartial(self.spec.kll_k, self.spec.ranges.get(PREDICTION))
        expected = self.spec.expected
        partials = [self.latency]
        for name in cols.numeric:
            partials.append(self._num(name))
            if expected.get(name) == CATEGORICAL:
                self.wrong_kind[name] = self.wrong_kind.get(name, 0) + n
                self._cat(name).add_missing(n)
        if score is not None:
            partials.append(self.prediction)  # type: ignore[arg-type]
        # latency, the numeric features and the score: the rows of one matrix when they can
        # be, else one by one (their sketches updated in the same order either way)
        columns = [cols.latency_ms, *cols.numeric.values(), *([] if score is None else [score])]
        rows = stack_rows(columns, index)
        if rows is None:
            for partial, values in zip(partials, columns, strict=True):
                partial.update(take(values))
        else:
            update_rows(partials, rows)
        for name, cat in cols.categorical.items():
            self._cat(name).update(take_cat(cat))
            if expected.get(name) == NUMERIC:
                self.wrong_kind[name] = self.wrong_kind.get(name, 0) + n
                self._num(name).add_missing(n)
        for name, kind in expected.items():
            if name not in cols.numeric and name not in cols.categorical:
                self.absent[name] = self.absent.get(name, 0) + n
                (self._num(name) if kind == NUMERIC else self._cat(name)).add_missing(n)
        if score is None and cols.predicted_class is not None:
            if not isinstance(self.prediction, CategoricalPartial):
                self.prediction = CategoricalPartial(
                    self.spec.category_cap, self.spec.known.get(PREDICTION)
                )
            self.prediction.update(take_cat(cols.predicted_class))

    # ---- merge -----------------------------------------------------------------------
    def merge(self, other: WindowPartial) -> None:
        if (other.model, other.model_version, other.start_ms) != (
            self.model,
            self.model_version,
            self.start_ms,
        ):
            raise ValueError("merging partials of different windows")
        self.count += other.count
        self.errors += other.errors
        self.fallbacks += other.fallbacks
        self.min_event_ms = min(self.min_event_ms, other.min_event_ms)
        self.max_event_ms = max(self.max_event_ms, other.max_event_ms)
        self.latency.merge(other.latency)
        for name, p in other.numeric.items():
            self._num(name).merge(p)
        for name, p in other.categorical.items():
            self._cat(name).merge(p)
        if other.prediction is not None:
            if self.prediction is None:
                self.prediction = type(other.prediction).from_bytes(other.prediction.to_bytes())
            elif type(self.prediction) is type(other.prediction):
                self.prediction.merge(other.prediction)  # type: ignore[arg-type]
        for d, o in ((self.absent, other.absent), (self.wrong_kind, other.wrong_kind)):
            for k, v in o.items():
                d[k] = d.get(k, 0) + v

    # ---- bytes -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        pkind = 0
        if self.prediction is not None:
            pkind = 1 if isinstance(self.prediction, NumericPartial) else 2
        lo = -1 if self.count == 0 else int(self.min_event_ms)
        hi = -1 if self.count == 0 else int(self.max_event_ms)
        head = _HEAD.pack(
            self.start_ms, self.end_ms, self.count, self.errors, self.fallbacks, lo, hi, pkind
        )
        return pack_blobs(
            head,
            pack_strings([self.model, self.model_version]),
            self.latency.to_bytes(),
            pack_strings(list(self.numeric)),
            pack_blobs(*(p.to_bytes() for p in self.numeric.values())),
            pack_strings(list(self.categorical)),
            pack_blobs(*(p.to_bytes() for p in self.categorical.values())),
            b"" if self.prediction is None else self.prediction.to_bytes(),
            _counts_bytes(self.absent),
            _counts_bytes(self.wrong_kind),
        )

    @classmethod
    def from_bytes(cls, data: bytes, spec: PartialSpec = DEFAULT_SPEC) -> WindowPartial:
        (head, names, lat, nnames, nblobs, cnames, cblobs, pred, absent, wrong) = unpack_blobs(data)
        start, end, count, errors, fallbacks, lo, hi, pkind = _HEAD.unpack(head)
        model, version = unpack_strings(names)
        w = cls(model, version, start, end, spec)
        w.count, w.errors, w.fallbacks = count, errors, fallbacks
        if count:
            w.min_event_ms, w.max_event_ms = lo, hi
        w.latency = NumericPartial.from_bytes(lat)
        w.numeric = {
            k: NumericPartial.from_bytes(b)
            for k, b in zip(unpack_strings(nnames), unpack_blobs(nblobs), strict=True)
        }
        w.categorical = {
            k: CategoricalPartial.from_bytes(b)
            for k, b in zip(unpack_strings(cnames), unpack_blobs(cblobs), strict=True)
        }
        if pkind == 1:
            w.prediction = NumericPartial.from_bytes(pred)
        elif pkind == 2:
            w.prediction = CategoricalPartial.from_bytes(pred)
        w.absent = _counts_from(absent)
        w.wrong_kind = _counts_from(wrong)
        return w
