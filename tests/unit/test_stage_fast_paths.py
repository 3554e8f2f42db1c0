"""The worker stages' fast paths answer what the code before them answered.

Each fast path (numeric partials updated as rows of one matrix, chunk z-scores of many
columns at once, numeric bins of many columns, a batch's segment codes in a few numpy calls,
packed prediction records) is set against the code it replaced, on inputs with NaN/±inf,
float32 columns, ties on bin edges, absent tags and values past the segment cap. (The
branch also carried whole-engine digests recorded before the fast paths; they were left out
as hard-coded results tied to one numpy/datasketches build.)
"""

from __future__ import annotations

import numpy as np
import pytest

from schemas.columnar import CategoricalArray, PredictionColumns
from stream_jobs.detectors.chunker import ChunkedZ
from stream_jobs.detectors.chunker import update_rows as update_chunks
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine, _Batch
from stream_jobs.join.records import Catalog, pack_predictions
from stream_jobs.join.store import MemoryStore
from stream_jobs.performance.feature_bins import FeatureBinner
from stream_jobs.reference.profile import build_profile
from stream_jobs.reference.view import ReferenceView
from stream_jobs.windows.numeric import NumericPartial, update_rows

PT, LT = "modelwatch.predictions", "modelwatch.labels"
NUM = [f"x{j}" for j in range(6)]
CAT = ["c0", "c1"]
REGIONS = [f"r{j}" for j in range(30)]  # past the segment cap (20): __other__
# KLL sketches compact at random once they hold k values: k above what a window gets keeps
# the drift partials deterministic (the same input gives the same bytes in any process;
# likewise the regression model's label-value sketches get fewer rows than their k)
K = 8_000


def _profile(model: str) -> dict:
    """300 rows (below the sketches' k: their quantiles exact and not randomised)."""
    rng = np.random.default_rng(7)
    return build_profile(
        model, "", numeric={k: rng.normal(j, 1 + j, 300) for j, k in enumerate(NUM)},
        categorical={k: [f"v{int(i)}" for i in rng.integers(0, 4, 300)] for k in CAT},
        prediction=rng.random(300), created_at_ms=0,
    )  # fmt: skip


def _batch(rng: np.random.Generator, i: int, model: str, t0: int) -> PredictionColumns:
    # (the regression model's few rows keep its label-value sketches below their k)
    n = int(rng.choice([1, 2, 37, 300, 700] if model == "m" else [1, 2, 37]))
    ids = [f"{model}-{int(v)}" for v in rng.integers(0, 6_000, n)]  # repeats across batches
    if n > 2:
        ids[1] = ids[0]  # and within one
    t = t0 + rng.integers(-90_000, 30_000, n)  # some rows behind the clocks: late
    numeric = {}
    for j, k in enumerate(NUM):
        if k == "x5" and i % 3 == 0:
            continue  # absent from a third of the batches
        v = rng.normal(j + (3.0 if i > 30 and j < 2 else 0.0), 1 + j, n)  # x0, x1 shift
        if i % 2:  # NaN and ±inf in every other batch
            v[rng.random(n) < 0.05] = np.nan
            v[rng.random(n) < 0.01] = np.inf
            v[rng.random(n) < 0.01] = -np.inf
        numeric[k] = v
    categorical = {
        k: CategoricalArray.from_values(
            [None if r < 0.1 else f"v{int(r * 5)}" for r in rng.random(n)]
        )
        for k in CAT
    }
    regions = [REGIONS[int(v)] if v < 30 else None for v in rng.integers(0, 32, n)]
    probs = rng.random((n, 2))
    return PredictionColumns(
        model=model, model_version="1", prediction_ids=ids, event_time_ms=t.astype(np.int64),
        latency_ms=rng.lognormal(3, 0.4, n), status=rng.integers(0, 3, n).astype(np.int8),
        numeric=numeric, categorical=categorical,
        score=rng.random(n) if model == "m" else rng.normal(10, 3, n),
        predicted_class=CategoricalArray.from_values(
            [["no", "yes"][int(v)] for v in rng.integers(0, 2, n)]) if model == "m" else None,
        class_names=["no", "yes"] if model == "m" else [],
        class_probabilities=probs / probs.sum(axis=1, keepdims=True) if model == "m" else None,
        segments={"region": CategoricalArray.from_values(regions)},
    )  # fmt: skip


def test_numeric_bins_of_many_columns_are_each_columns_bins():
    rng = np.random.default_rng(3)
    ref = ReferenceView(_profile("m"))
    binner = FeatureBinner(ref, bins=10)
    found = binner._numeric_bins("x2")
    assert found is not None
    edges = found[0]
    cols = {k: rng.normal(j, 1 + j, 400) for j, k in enumerate(NUM)}
    cols["x2"][: edges.size] = edges  # on the edges: a tie goes to the bin above
    cols["x2"][20:23] = [np.nan, np.inf, -np.inf]
    cols["x3"] = cols["x3"].astype(np.float32)  # not float64: one by one
    cols["nobins"] = rng.random(400)
    got = binner.numeric_many([*cols], cols)
    assert set(got) == {"x0", "x1", "x2", "x4", "x5"}
    for name, arr in got.items():
        one = FeatureBinner(ref, bins=10).numeric(name, cols[name])
        assert arr.dictionary == one.dictionary
        assert arr.codes.dtype == one.codes.dtype and arr.codes.tolist() == one.codes.tolist()
    assert FeatureBinner(ref).numeric_many(["x0"], cols) == {}  # one column: one by one


def _segment_codes_before(e: LabelEngine, cat: Catalog, cols: PredictionColumns) -> np.ndarray:
    """The tag loop ``_segment_codes`` replaced (as it was at 8c875db)."""
    segments = e._segments(cat, cols)
    cat.ensure_tags(list(segments))
    segs = np.full((cols.n, len(cat.tags or [])), -1, dtype=np.int16)
    for j, tag in enumerate(cat.tags or []):
        arr = segments.get(tag)
        if arr is None:
            continue
        dc = np.array([*cat.segment_codes(j, arr.dictionary, e.config.segment_cardinality), -1],
                      dtype=np.int16)  # fmt: skip
        segs[:, j] = dc[np.maximum(arr.codes, -1)]
    return segs


@pytest.mark.parametrize("reference", [True, False])
def test_segment_codes_are_the_tag_loops(reference: bool):
    rng = np.random.default_rng(5)
    engines = [LabelEngine(LabelConfig(segment_cardinality=6), MemoryStore()) for _ in range(2)]
    for e in engines:
        if reference:
            e.set_reference("m", "", ReferenceView(_profile("m")))
    batches = [_batch(rng, i, "m", 1_000_000) for i in range(12)]
    batches[4].segments = {}  # a tag absent from a batch: no rows
    for cols in batches:
        (new, old), (cn, co) = engines, [e._catalog("m", "1", _Batch()) for e in engines]
        a, b = new._segment_codes(cn, cols), _segment_codes_before(old, co, cols)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()
        assert cn.to_bytes() == co.to_bytes()  # the same values interned, in the same order
    assert cn.tag_values[cn.tags.index("region")][-1] == "__other__"


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # (both ways: the 1e300 row)
@pytest.mark.parametrize("n", [1, 2, 7, 129, 500, 8_193])
def test_numeric_partials_updated_row_by_row_of_a_matrix_are_column_by_columns(n: int):
    rng = np.random.default_rng(n)
    x = rng.normal(rng.normal(0, 100, (9, 1)), rng.lognormal(0, 3, (9, 1)), (9, n))
    x[1] *= 1e300  # sums overflow to ±inf
    x[2, n // 2] = np.nan
    x[3, 0], x[4, -1] = np.inf, -np.inf
    ranges = [(-1.0, 1.0), None, (-50.0, 50.0)] * 3
    for rows in (x, np.ascontiguousarray(x.take(np.flatnonzero(rng.random(n) < 0.6), axis=1))):
        new = [NumericPartial(60_000, r) for r in ranges]
        old = [NumericPartial(60_000, r) for r in ranges]
        for _ in range(2):  # into empty partials, then into ones holding values
            update_rows(new, rows)
            for p, row in zip(old, rows, strict=True):
                p.update(row)
        assert [p.to_bytes() for p in new] == [p.to_bytes() for p in old]


def test_chunk_z_scores_of_a_matrix_are_each_rows():
    rng = np.random.default_rng(9)
    spec = [(0.0, 1.0, 64), (3.0, 2.0, 64), (-1.0, 0.5, 64), (0.0, 1.0, 16), (0.0, 1.0, 64),
            (7.0, 3.0, 64), (0.0, 1.0, 500)]  # fmt: skip
    new = [ChunkedZ(m, s, b) for m, s, b in spec]
    old = [ChunkedZ(m, s, b) for m, s, b in spec]
    for step, n in enumerate([500, 3, 61, 1, 700, 128, 500, 64, 500]):
        x = rng.normal(0, 2, (len(spec), n))
        t = np.arange(step * 1_000, step * 1_000 + n, dtype=np.int64)
        if step in (1, 4):  # NaN/inf in a row or two: their carries part from the others'
            x[2, 0], x[5, -1] = np.nan, np.inf
        got = update_chunks(new, x, t)
        for i, c in enumerate(old):
            z, tz = c.update(x[i], t)
            assert got[i][0].tolist() == z.tolist() and got[i][1].tolist() == tz.tolist()
            assert (new[i].pending, new[i]._carry_sum) == (c.pending, c._carry_sum)
    assert len({c.pending for c in new}) > 1  # rows went in several groups


@pytest.mark.parametrize("n", [0, 1, 500])
def test_packed_predictions_are_the_rows_bytes(n: int):
    rng = np.random.default_rng(n)
    cat = Catalog(3, "m", "1")
    cat.prob_classes, cat.tags = ["no", "yes"], ["a", "b"]
    segs = np.zeros((n, 2), dtype=np.int16)  # records ending in NUL bytes keep them
    late = rng.random(n) < 0.2
    got = pack_predictions(cat, rng.integers(0, 10**12, n), rng.random(n), None,
                           rng.random((n, 2)), segs, late)  # fmt: skip
    arr = np.frombuffer(b"".join(got), dtype=cat.dtype())
    w = cat.dtype().itemsize
    assert all(type(r) is bytes and len(r) == w for r in got) and arr.size == n
    assert [arr[i : i + 1].tobytes() for i in range(n)] == got
    assert all(r.endswith(b"\x00\x00\x00\x00") for r in got)


