"""A generated history table for replay and backtest tests: numeric, categorical and boolean
features, a score and a 0/1 label, with one feature shifted from a known event time on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

MIN_MS = 60_000
DAY_MS = 86_400_000
START_MS = 1_700_006_400_000  # 2023-11-15T00:00:00Z, a day boundary


@dataclass(frozen=True)
class History:
    path: Path
    rows: int
    start_ms: int
    end_ms: int
    shift_ms: int  # first event time of the shifted part
    shifted: str
    boolean: str


def make_history(path: Path, *, days: float = 2.0, rows_per_min: int = 150,
                 shift_at: float = 0.5, shifted: str = "income", shift: float = 1.0,
                 seed: int = 7) -> History:  # fmt: skip
    """Rows spread evenly over ``days`` from :data:`START_MS`; from ``shift_at`` of the span
    on, ``shifted`` moves by ``shift`` standard deviations. Written as CSV or Parquet by
    ``path``'s suffix (the time column ``ts`` in epoch milliseconds)."""
    rng = np.random.default_rng(seed)
    n = int(days * 24 * 60 * rows_per_min)
    span = int(days * DAY_MS)
    ts = START_MS + (np.arange(n, dtype=np.int64) * span) // n
    shift_ms = START_MS + int(span * shift_at) // MIN_MS * MIN_MS
    after = ts >= shift_ms
    age = rng.normal(40, 10, n).round(1)
    income = rng.normal(50_000, 12_000, n).round(0)
    tenure = rng.exponential(24, n).round(1)
    cols = {"age": age, "income": income, "tenure": tenure}
    cols[shifted] = cols[shifted] + after * shift * cols[shifted].std()
    plan = rng.choice(np.array(["basic", "plus", "pro"]), n, p=[0.5, 0.3, 0.2])
    is_member = rng.random(n) < 0.3
    score = 1 / (1 + np.exp(-(age - 40) / 10 - (tenure - 24) / 24))
    label = (rng.random(n) < score).astype(np.int64)
    table = pa.table({
        "id": pa.array([f"r{i}" for i in range(n)]),
        "ts": pa.array(ts),
        **{k: pa.array(v) for k, v in cols.items()},
        "plan": pa.array(plan),
        "is_member": pa.array(is_member),
        "score": pa.array(score.round(4)),
        "label": pa.array(label),
    })  # fmt: skip
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return History(path, n, START_MS, START_MS + span, shift_ms, shifted, "is_member")


def reference_table(path: Path, rows: int = 20_000, seed: int = 11) -> Path:
    """Training data of the same model before any shift (same columns, no ``ts``/``id``)."""
    tmp = path.with_name(path.stem + "-full" + path.suffix)
    make_history(tmp, days=rows / (24 * 60 * 150), rows_per_min=150, shift_at=2.0, seed=seed)
    table = pq.read_table(tmp) if tmp.suffix != ".csv" else pacsv.read_csv(tmp)
    table = table.drop_columns(["id", "ts"])
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    tmp.unlink()
    return path
