"""False alarms of the window judgement on stationary data, by detection kind and test,
next to the delay on known shifts.

Run: ``make bench BENCH=bench_false_alarms`` (``python -m tests.bench.run_all
bench_false_alarms``; ``main()`` returns the figures).

Stationary streams (no change at all; each seed draws new live rows):

* ``synthetic`` — :class:`~stream_jobs.drift.synthetic.SyntheticStream`, 20 normal
  numeric and 5 categorical features (8 values), a uniform score; reference of 50,000 rows;
* ``simulator`` — the demo model server's baseline scenario (``producers/simulator``:
  20 numeric features, many of them integer-valued, 5 categorical, a predicted class);
  reference of 50,000 rows from another seed;
* ``many_categories`` — three categorical features of 100 equally likely values (the category
  cap) and a uniform score, also in 1,200-row windows (just above ``small_sample_max``,
  where Jensen–Shannon judges and its sampling noise is largest);
* ``concept_stationary`` / ``sea_stationary`` / ``shuttle_stationary`` — the streams of
  ``bench_detection`` without their change (3 uniform numeric + 1 categorical; river's SEA
  generator with a frozen Hoeffding tree; real Shuttle rows), reference of 5,000 rows.

Every stream is cut into windows of 1,000 rows (judged by p-value tests: KS / chi-square)
and of 10,000 rows (distances: Wasserstein / Jensen–Shannon). A window *alarms* when any
feature, dataset or prediction drift detection is active (what ``bench_detection`` counts);
data-quality detections are counted apart.

Shifted streams (sensitivity): ``synthetic`` with one numeric feature moved by 0.25 / 0.5
standard deviations, one categorical feature's top category moved by 0.05 / 0.10, the score
moved by 0.05: the share of windows of each size whose verdict on the moved subject is
drift (1.0 = caught in the first window after the change).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from schemas.columnar import CategoricalArray, PredictionColumns
from schemas.detection import DetectionKind
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.evaluate import evaluate_window
from stream_jobs.drift.synthetic import CAT_P, SyntheticStream
from stream_jobs.reference.profile import build_profile
from stream_jobs.reference.view import ReferenceView
from stream_jobs.windows.window import WindowPartial

WINDOW_KINDS = {
    DetectionKind.FEATURE_DRIFT,
    DetectionKind.DATASET_DRIFT,
    DetectionKind.PREDICTION_DRIFT,
}
SIZES = (1_000, 10_000)
SIZES_OF = {"many_categories": (1_000, 1_200, 10_000)}
ROWS = 60_000  # live rows per stream and seed
SEEDS = 4

Windows = Iterator[PredictionColumns]


# ---- streams: (reference, windows of `rows` rows) -----------------------------------------
def synthetic(seed: int, rows: int, n: int = ROWS) -> tuple[ReferenceView, Windows]:
    s = SyntheticStream(n_numeric=20, n_categorical=5, rate_per_s=1_000, seed=seed)
    ref = ReferenceView(s.reference())
    return ref, (s.batch(i * 1_000, rows) for i in range(0, n, rows))


MANY = [f"k{i}" for i in range(100)]
MANY_P = np.full(100, 0.01)


def many_categories(seed: int, rows: int, n: int = ROWS) -> tuple[ReferenceView, Windows]:
    """Three categorical features of 100 equally likely values (the category cap), a score."""

    def cols(rng: np.random.Generator, t0: int, m: int) -> PredictionColumns:
        return PredictionColumns(
            model="m", model_version="1", prediction_ids=[""] * m,
            event_time_ms=t0 + np.arange(m, dtype=np.int64), latency_ms=np.ones(m),
            status=np.zeros(m, np.int8), score=rng.random(m),
            categorical={
                f"z{j}": CategoricalArray(MANY, rng.choice(100, m, p=MANY_P).astype("<i4"))
                for j in range(3)
            },
        )  # fmt: skip

    ref = ReferenceView(_columns_profile([cols(np.random.default_rng(99), 0, 50_000)]))
    rng = np.random.default_rng(seed)
    return ref, (cols(rng, i, rows) for i in range(0, n, rows))


def _columns_profile(cols: list[PredictionColumns]) -> dict[str, Any]:
    first = cols[0]
    numeric = {k: np.concatenate([c.numeric[k] for c in cols]) for k in first.numeric}
    categorical = {
        k: [c.categorical[k].dictionary[i] for c in cols for i in c.categorical[k].codes.tolist()]
        for k in first.categorical
    }
    if first.score is not None:
        pred: Any = np.concatenate([c.score for c in cols if c.score is not None])
    else:
        pred = [
            c.predicted_class.dictionary[i]
            for c in cols
            if c.predicted_class is not None
            for i in c.predicted_class.codes.tolist()
        ]
    return build_profile(first.model, numeric=numeric, categorical=categorical, prediction=pred)


def simulator(seed: int, rows: int, n: int = ROWS) -> tuple[ReferenceView, Windows]:
    from producers.simulator.model import generate
    from producers.simulator.scenario import Scenario

    ref_rows = [p for p, _ in generate(Scenario(), 50_000, seed=10_000, labels=False) if p]
    ref = ReferenceView(_columns_profile(ref_rows))
    live = generate(Scenario(), n, seed=seed, batch_size=rows, labels=False)
    return ref, (p for p, _ in live if p is not None)


def _from_detection_stream(make: Callable[[int], Any]) -> Callable[..., Any]:
    def stream(seed: int, rows: int, n: int = ROWS) -> tuple[ReferenceView, Windows]:
        from tests.bench.bench_detection import _pred_cols, _reference

        s = make(seed)
        ref = _reference(s)
        return ref, (_pred_cols(s, np.arange(i, min(i + rows, s.n))) for i in range(0, s.n, rows))

    return stream


def _concept(seed: int) -> Any:
    from tests.bench.bench_detection import concept_10_21

    return concept_10_21(n=ROWS, change=ROWS, seed=seed)


def _sea(seed: int) -> Any:
    from river.datasets import synth

    from tests.bench.bench_detection import _river_stream

    return _river_stream(
        "sea_stationary",
        lambda f, s: synth.SEA(variant=f, seed=s),
        (0, 0),
        ROWS,
        1_000,
        seed,
        n=ROWS,
    )


def _shuttle(seed: int) -> Any:
    from tests.bench.bench_detection import _shuttle as shuttle

    return shuttle("shuttle_stationary", 0.0, seed)


STATIONARY: dict[str, Callable[..., tuple[ReferenceView, Windows]]] = {
    "synthetic": synthetic,
    "simulator": simulator,
    "many_categories": many_categories,
    "concept_stationary": _from_detection_stream(_concept),
    "sea_stationary": _from_detection_stream(_sea),
    "shuttle_stationary": _from_detection_stream(_shuttle),
}


# ---- judging ------------------------------------------------------------------------------
def judge(ref: ReferenceView, cols: PredictionColumns, config: DriftConfig) -> list[Any]:
    t = cols.event_time_ms
    w = WindowPartial(
        cols.model, cols.model_version, int(t.min()), int(t.max()) + 1,
        ref.partial_spec(config.kll_k, config.category_cap),
    )  # fmt: skip
    w.update(cols)
    return evaluate_window(w, ref, config).detections


def stationary(config: DriftConfig, seeds: int = SEEDS) -> dict[str, Any]:
    """Per stream and window size: windows judged, windows alarming (feature / dataset /
    prediction drift), alarms per 10k windows and per 10k rows, and active detections by
    ``kind/detector``."""
    out: dict[str, Any] = {}
    for name, make in STATIONARY.items():
        for rows in SIZES_OF.get(name, SIZES):
            windows = alarming = n_rows = 0
            by: Counter[str] = Counter()
            for seed in range(seeds):
                ref, wins = make(seed, rows)
                for cols in wins:
                    dets = judge(ref, cols, config)
                    windows += 1
                    n_rows += cols.n
                    active = [d for d in dets if d.active]
                    by.update(f"{d.kind}/{d.detector}" for d in active)
                    alarming += any(d.kind in WINDOW_KINDS for d in active)
            out[f"{name}@{rows}"] = {
                "windows": windows,
                "alarming": alarming,
                "per_10k_windows": round(alarming / windows * 10_000, 1),
                "per_10k_rows": round(alarming / n_rows * 10_000, 3),
                "active": dict(sorted(by.items())),
            }
    return out


SHIFTS: dict[str, tuple[str, Callable[[SyntheticStream], None]]] = {
    "f0+0.25sd": ("f0", lambda s: s.shift.__setitem__("f0", 0.25)),
    "f0+0.5sd": ("f0", lambda s: s.shift.__setitem__("f0", 0.5)),
    "c0_top+0.05": ("c0", lambda s: s.cat_p.__setitem__("c0", _moved(0.05))),
    "c0_top+0.10": ("c0", lambda s: s.cat_p.__setitem__("c0", _moved(0.10))),
    "score+0.05": ("prediction", lambda s: s.shift.__setitem__("score", 0.05)),
}


def _moved(d: float) -> np.ndarray:
    p = CAT_P.copy()
    p[0] += d
    p[1:] -= d * CAT_P[1:] / CAT_P[1:].sum()
    return p


def shifted(config: DriftConfig, seeds: int = SEEDS, windows: int = 3) -> dict[str, Any]:
    """Share of post-change windows whose verdict on the moved subject is drift."""
    out: dict[str, Any] = {}
    for label, (subject, apply) in SHIFTS.items():
        for rows in SIZES:
            hit = total = 0
            for seed in range(seeds):
                s = SyntheticStream(n_numeric=20, n_categorical=5, rate_per_s=1_000, seed=seed)
                ref = ReferenceView(s.reference())
                apply(s)
                for i in range(windows):
                    dets = judge(ref, s.batch(i * rows, rows), config)
                    total += 1
                    hit += any(
                        d.active and d.subject == subject
                        and d.kind in (DetectionKind.FEATURE_DRIFT, DetectionKind.PREDICTION_DRIFT)
                        for d in dets
                    )  # fmt: skip
            out[f"{label}@{rows}"] = round(hit / total, 2)
    return out


def main(config: DriftConfig | None = None) -> dict[str, Any]:
    cfg = config or DriftConfig()
    t0 = time.perf_counter()
    res: dict[str, Any] = {"stationary": stationary(cfg), "shifted": shifted(cfg)}
    print(f"\nstationary windows (seeds {SEEDS}, {ROWS:,} rows each)")
    print(f"  {'stream@rows':<26} {'windows':>7} {'alarms':>6} {'/10k win':>8} {'/10k rows':>9}"
          "  active detections")  # fmt: skip
    for k, v in res["stationary"].items():
        print(
            f"  {k:<26} {v['windows']:>7} {v['alarming']:>6} {v['per_10k_windows']:>8.1f} "
            f"{v['per_10k_rows']:>9.3f}  {v['active']}"
        )
    print("\nshifted synthetic windows: share caught")
    for k, v in res["shifted"].items():
        print(f"  {k:<26} {v:>5.2f}")
    res["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return res


if __name__ == "__main__":
    # optional argument: the family's alpha (default: DriftConfig's)
    alpha = {"alpha": float(sys.argv[1])} if len(sys.argv) > 1 else {}
    print(json.dumps(main(DriftConfig(**alpha)), indent=2, default=str))
