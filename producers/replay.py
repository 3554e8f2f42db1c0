"""Replay a table (CSV or Parquet) as prediction and label events, keeping its timestamps.

The file is read in chunks (pyarrow's streaming CSV reader / Parquet row batches), so a
file of millions of rows replays in bounded memory. Each chunk becomes one columnar batch
with no per-value Python work apart from the id list:

* features are typed by :mod:`schemas.column_types` (the rules ``reference build`` uses):
  integers and floats are numeric features; booleans (and true/false text) one categorical
  feature with values ``"true"``/``"false"``; other text categorical;
* ``time_col``: datetimes, ISO strings, or epoch numbers (values above 1e11 are read as
  milliseconds, others as seconds); without it, event time is the replay's wall time;
* ``task`` (``auto``/``classification``/``regression``): ``auto`` is decided once, on the
  first chunk holding labels (:func:`schemas.column_types.infer_task`: booleans, text, 0/1
  or a few integer classes → classification), and kept for the whole replay;
* ``label_col``: a classification label → ``label_class`` (``1.0``/``True`` → ``"1"``),
  a regression one → ``label_value``; a label's event time is its row's event time plus
  ``label_delay_s``; rows with a null label publish no label; a chunk's labels are
  published once its predictions are acknowledged;
* ``prediction_col``: regression → ``score``; classification → ``score`` if the numbers
  are probabilities in [0, 1] (not all integers; decided on the first chunk), else
  ``predicted_class`` (0/1 predictions are classes);
* ``id_col``: the prediction_id (any type, as a string); without it, random uuid4 hex ids.

>>> import pyarrow as pa
>>> batch = pa.RecordBatch.from_pydict({"id": ["a", "b"], "ts": [1_700_000_000, 1_700_000_001],
...     "x": [1.5, None], "plan": ["gold", None], "p": [0.9, 0.2], "y": ["1", None]})
>>> spec = ReplaySpec(id_col="id", time_col="ts", prediction_col="p", label_col="y",
...                   label_delay_s=60)
>>> preds, labels = chunk_to_columns(batch, spec, "m", "v1")
>>> preds.event_time_ms.tolist(), preds.numeric["x"].tolist(), preds.categorical["plan"].values()
([1700000000000, 1700000001000], [1.5, nan], ['gold', None])
>>> labels.prediction_ids, labels.event_time_ms.tolist(), labels.label_class.values()
(['a'], [1700000060000], ['1'])
>>> batch = pa.RecordBatch.from_pydict({"flag": [True, False], "p": [1, 0], "y": [1, 1]})
>>> spec = resolve_spec(batch, ReplaySpec(prediction_col="p", label_col="y"))
>>> spec.task, spec.prediction_kind
('classification', 'class')
>>> preds, labels = chunk_to_columns(batch, spec, "m", "v1")
>>> preds.categorical["flag"].values(), preds.predicted_class.values(), labels.label_class.values()
(['true', 'false'], ['1', '0'], ['1', '1'])
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from producers.sdk import ModelwatchPublisher
from schemas import column_types as ct
from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns

F8 = np.dtype("<f8")
I4 = np.dtype("<i4")
I8 = np.dtype("<i8")
EPOCH_MS_THRESHOLD = 1e11


class ReplayError(ValueError):
    """The table cannot be replayed as asked; the message names the column or file."""


@dataclass
class ReplaySpec:
    id_col: str | None = None
    time_col: str | None = None
    prediction_col: str | None = None
    label_col: str | None = None
    label_delay_s: float = 0.0
    features: Sequence[str] | None = None
    latency_col: str | None = None
    task: str = "auto"  # auto | classification | regression
    prediction_kind: str = "auto"  # auto | score | class (classification only)

    def __post_init__(self) -> None:
        ct.check_task(self.task)
        if self.prediction_kind not in ("auto", "score", "class"):
            raise ReplayError(f"prediction_kind {self.prediction_kind!r}: auto, score or class")


@dataclass
class ReplayStats:
    rows: int = 0
    predictions: int = 0
    labels: int = 0
    wall_s: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)


def count_rows(path: Path) -> int | None:
    """Rows in the file (Parquet metadata; CSV newlines minus the header), None if unknown."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return int(pq.ParquetFile(path).metadata.num_rows)
    if path.suffix.lower() == ".csv":
        lines, last = 0, b"\n"
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                lines += block.count(b"\n")
                last = block[-1:]
        return max(0, lines + (last != b"\n") - 1)
    return None


def read_chunks(path: str | Path, chunk_rows: int = 50_000) -> Iterator[pa.RecordBatch]:
    """Stream record batches from a ``.csv`` or ``.parquet`` file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise ReplayError(f"no such file: {p}")
    if suffix in (".parquet", ".pq"):
        # buffered column reads, no pre-buffering: RSS stays flat over millions of rows
        # (the defaults let it grow by ~150 MB per million rows of 25 columns)
        parquet = pq.ParquetFile(p, pre_buffer=False, buffer_size=1 << 20)
        yield from parquet.iter_batches(batch_size=chunk_rows)
    elif suffix == ".csv":
        # ~chunk_rows rows per block for typical widths; types are inferred on the first block
        reader = pacsv.open_csv(p, read_options=pacsv.ReadOptions(block_size=16 << 20))
        for batch in reader:
            for start in range(0, batch.num_rows, chunk_rows):
                yield batch.slice(start, chunk_rows)
    else:
        raise ReplayError(f"{p}: expected a .csv or .parquet file")


def _require(batch: pa.RecordBatch, name: str | None, what: str) -> pa.Array | None:
    if name is None:
        return None
    idx = batch.schema.get_field_index(name)
    if idx < 0:
        raise ReplayError(
            f"{what} column {name!r} not in the table (columns: {batch.schema.names})"
        )
    col = batch.column(idx)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _is_numeric(t: pa.DataType) -> bool:
    return ct.is_numeric_type(t) or pa.types.is_boolean(t)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)


_floats = ct.floats


def _categorical(col: pa.Array) -> CategoricalArray:
    """A categorical feature (booleans → ``"true"``/``"false"``)."""
    enc = ct.categorical_array(col)
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(I4)
    return CategoricalArray([str(v) for v in enc.dictionary.to_pylist()], codes)


def _classes(col: pa.Array) -> CategoricalArray:
    """Class names of a label or class-prediction column (``1.0``/``True`` → ``"1"``)."""
    return CategoricalArray.from_values(ct.class_names(col))


def resolve_spec(batch: pa.RecordBatch, spec: ReplaySpec) -> ReplaySpec:
    """``spec`` with ``task`` and ``prediction_kind`` decided from ``batch`` where "auto".

    :func:`replay` calls it once, on the first chunk, so the task never changes mid-file.
    """
    task, kind = spec.task, spec.prediction_kind
    label = _require(batch, spec.label_col, "label")
    pred = _require(batch, spec.prediction_col, "prediction")
    if task == "auto":
        if label is not None and len(label) - label.null_count > 0:
            task = ct.infer_task(label)
        elif pred is not None and not _is_numeric(pred.type):
            task = ct.CLASSIFICATION
        elif pred is not None:
            task = ct.infer_task(pred) if not ct.is_score(_floats(pred)) else ct.CLASSIFICATION
        else:
            task = "auto"
    if kind == "auto" and pred is not None and task != "auto":
        if task == ct.REGRESSION:
            kind = "score"
        elif ct.is_numeric_type(pred.type):
            kind = "score" if ct.is_score(_floats(pred)) else "class"
        else:
            kind = "class"
    return replace(spec, task=task, prediction_kind=kind)


def event_times_ms(col: pa.Array) -> np.ndarray:
    """Epoch milliseconds from a datetime, ISO-string or epoch-number column.

    >>> event_times_ms(pa.array([1_700_000_000.5, 1_700_000_001])).tolist()
    [1700000000500, 1700000001000]
    >>> event_times_ms(pa.array(["2026-01-01T00:00:00", "2026-01-01T00:00:01.250"])).tolist()
    [1767225600000, 1767225601250]
    """
    if col.null_count:
        raise ReplayError(f"time column has {col.null_count} null values")
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        ts = pc.cast(col, pa.timestamp("ms", tz=getattr(t, "tz", None)))
        return ts.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(I8)
    if ct.is_numeric_type(t):
        x = _floats(col)
        return (x if np.nanmax(x) > EPOCH_MS_THRESHOLD else x * 1000.0).round().astype(I8)
    if _is_text(t):
        try:
            ts = pc.cast(pc.cast(col, pa.string()), pa.timestamp("ms"))
        except pa.ArrowInvalid as exc:
            raise ReplayError(f"cannot parse time column as datetimes: {exc}") from None
        return ts.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(I8)
    raise ReplayError(f"time column of type {t} is neither datetime, string nor number")


def _random_ids(n: int) -> list[str]:
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [h[i : i + 32] for i in range(0, 32 * n, 32)]


def chunk_to_columns(
    batch: pa.RecordBatch, spec: ReplaySpec, model: str, version: str
) -> tuple[PredictionColumns, LabelColumns | None]:
    """One record batch → prediction columns (+ label columns when ``label_col`` is set)."""
    n = batch.num_rows
    ids_col = _require(batch, spec.id_col, "id")
    time_col = _require(batch, spec.time_col, "time")
    pred_col = _require(batch, spec.prediction_col, "prediction")
    label_col = _require(batch, spec.label_col, "label")
    lat_col = _require(batch, spec.latency_col, "latency")
    reserved = {
        c
        for c in (spec.id_col, spec.time_col, spec.prediction_col, spec.label_col, spec.latency_col)
        if c
    }
    names = (
        list(spec.features)
        if spec.features
        else [c for c in batch.schema.names if c not in reserved]
    )
    if ids_col is not None:
        if ids_col.null_count:
            raise ReplayError(f"id column {spec.id_col!r} has null values")
        ids = [str(v) for v in pc.cast(ids_col, pa.string()).to_pylist()]
    else:
        ids = _random_ids(n)
    times = (
        event_times_ms(time_col)
        if time_col is not None
        else np.full(n, int(time.time() * 1000), dtype=I8)
    )
    numeric: dict[str, np.ndarray] = {}
    categorical: dict[str, CategoricalArray] = {}
    for name in names:
        col = _require(batch, name, "feature")
        assert col is not None
        if ct.feature_kind(col) == ct.NUMERIC:
            numeric[name] = _floats(col)
        else:
            categorical[name] = _categorical(col)
    if (spec.task == "auto" and (label_col is not None or pred_col is not None)) or (
        pred_col is not None and spec.prediction_kind == "auto"
    ):
        spec = resolve_spec(batch, spec)
    score = predicted_class = None
    if pred_col is not None:
        if spec.prediction_kind == "class" or (
            spec.prediction_kind == "auto" and not _is_numeric(pred_col.type)
        ):
            predicted_class = _classes(pred_col)
        else:
            score = _floats(pred_col)
    preds = PredictionColumns(
        model=model,
        model_version=version,
        prediction_ids=ids,
        event_time_ms=times,
        latency_ms=_floats(lat_col) if lat_col is not None else np.zeros(n, dtype=F8),
        status=np.zeros(n, dtype=np.int8),
        numeric=numeric,
        categorical=categorical,
        score=score,
        predicted_class=predicted_class,
    )
    labels = None
    if label_col is not None:
        present = np.flatnonzero(~np.asarray(label_col.is_null().to_numpy(zero_copy_only=False)))
        if len(present):
            taken = label_col.take(pa.array(present))
            regression = spec.task == ct.REGRESSION
            if regression and not ct.is_numeric_type(taken.type):
                raise ReplayError(
                    f"label column {spec.label_col!r} of type {taken.type} cannot be a "
                    "regression target (use --task classification)"
                )
            labels = LabelColumns(
                model=model,
                prediction_ids=[ids[i] for i in present.tolist()],
                event_time_ms=times[present] + int(round(spec.label_delay_s * 1000)),
                label_value=_floats(taken) if regression else None,
                label_class=None if regression else _classes(taken),
            )
    return preds, labels


def replay(
    publisher: ModelwatchPublisher,
    path: str | Path,
    spec: ReplaySpec,
    *,
    rate: float = 0.0,
    chunk_rows: int = 50_000,
    on_progress: Callable[[ReplayStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ReplayStats:
    """Publish every row of ``path`` through ``publisher``; ``rate`` rows/s (0 = unpaced).

    Waits while the publisher's buffer is full (back-pressure instead of drops); returns
    counts of rows read and events handed to the publisher.
    """
    stats = ReplayStats()
    t0 = time.monotonic()
    step = chunk_rows if rate <= 0 else int(max(1, min(chunk_rows, rate * 0.1)))
    resolved = False
    for batch in read_chunks(path, step):
        if should_stop():
            break
        if not resolved:
            spec = resolve_spec(batch, spec)
            resolved = spec.task != "auto" or not (spec.label_col or spec.prediction_col)
        preds, labels = chunk_to_columns(batch, spec, publisher.model, publisher.model_version)
        if rate > 0:
            due = t0 + (stats.rows + preds.n) / rate
            while (wait := due - time.monotonic()) > 0 and not should_stop():
                time.sleep(min(wait, 0.2))
        stats.rows += preds.n
        stats.predictions += publish_with_backpressure(publisher, preds, should_stop)
        if labels is not None:
            # a chunk's labels leave once its predictions are stored: a label never reaches
            # the broker before the prediction it describes (history published at full
            # speed would otherwise race its own predictions, and the label side's windows
            # would close before their predictions were read: different answers per run)
            while publisher.flush(1.0) and not should_stop():
                pass
            stats.labels += publish_with_backpressure(publisher, labels, should_stop)
        stats.wall_s = time.monotonic() - t0
        if on_progress is not None:
            on_progress(stats)
    stats.wall_s = time.monotonic() - t0
    stats.dropped = publisher.dropped
    return stats


def publish_with_backpressure(
    publisher: ModelwatchPublisher,
    cols: PredictionColumns | LabelColumns,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Hand ``cols`` to the publisher in slices that fit its buffer, waiting for room.

    Bulk producers (replay, the simulator) use this instead of dropping; returns rows taken.
    """
    from producers.columns import take_labels, take_predictions

    step = max(1, publisher.max_buffered_events // 4)
    taken = 0
    for start in range(0, cols.n, step):
        idx = np.arange(start, min(start + step, cols.n))
        if isinstance(cols, PredictionColumns):
            part: PredictionColumns | LabelColumns = (
                cols if len(idx) == cols.n else take_predictions(cols, idx)
            )
        else:
            part = cols if len(idx) == cols.n else take_labels(cols, idx)
        while not publisher.wait_for_room(part.n, timeout=0.5):
            if should_stop():
                return taken
        if isinstance(part, PredictionColumns):
            taken += publisher.publish_columns(part)
        else:
            taken += publisher.publish_label_columns(part)
    return taken
