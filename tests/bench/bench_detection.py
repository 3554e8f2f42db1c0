"""Detection quality: labelled streams with known change points through the pipeline.

Run: ``make bench BENCH=bench_detection`` (``python -m tests.bench.run_all bench_detection``;
``main()`` returns the figures). About two minutes on this machine.

Streams (30,000 monitored rows each, one row per 60 ms of event time, so a one-minute
window holds 1,000 rows; a separate 5,000-row reference sample of the first concept):

* ``concept_10_21`` — the labelling rule moves while the features stay put: a fixed model
  is wrong 10 % of the time, then 21 % (a region of the feature space gets the other
  label) from row 20,000;
* ``sea_0_3`` — river's SEA generator, concept 0 → 3 (river's ``ConceptDriftStream``,
  abrupt) at row 20,000, a Hoeffding tree trained on concept 0 and frozen;
* ``agrawal_0_2`` — river's Agrawal generator, function 0 → 2, gradual (sigmoid of width
  2,000 centred on row 20,000: alarms from row 17,700, where 1 % of the rows are of the
  new concept, count as detections, with a negative delay), same frozen-tree set-up;
* ``shuttle_shift`` — the Statlog Shuttle data shipped in river's wheel (49k real rows,
  shuffled): feature ``f1`` moves by half a standard deviation from row 20,000;
* ``shuttle_stationary`` — the same real rows with no change: false alarms only.

Detectors, each on the same rows:

* the pipeline's pure computation, as the worker runs it: event-time windows
  (:class:`~stream_jobs.windows.window.WindowPartial`) judged against the reference
  (:func:`~stream_jobs.drift.evaluate.evaluate_window`: ``window_drift`` = any feature,
  dataset or prediction drift in a window), and the label engine
  (:class:`~stream_jobs.join.engine.LabelEngine`, 4 partitions, default settings):
  ``concept_drift`` and ``performance_drop``;
* river's detectors run directly on the model's 0/1 error stream (ADWIN, Page–Hinkley,
  HDDM_A, DDM, FHDDM — river defaults);
* an Evidently-style batch test per window: per feature KS (numeric) or chi-square
  (categorical) against the reference at p < 0.05, dataset drift when half the features
  drift (Evidently's defaults, no multiple-testing correction).

Per detector: the delay (rows from the change to the first alarm at or after it; a
window-based alarm is timed at its window's end), false alarms per 10k rows before the
change (a window test counts each drifting window), and whether the change was missed
(no alarm after it).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from schemas.detection import DetectionKind
from stream_jobs.drift.config import DriftConfig
from stream_jobs.drift.evaluate import evaluate_window
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore
from stream_jobs.performance.reference import reference_performance
from stream_jobs.reference.profile import build_profile
from stream_jobs.reference.view import ReferenceView
from stream_jobs.windows.window import WindowPartial

T0 = 1_700_000_040_000  # a minute boundary
STEP_MS = 60  # 1,000 rows per one-minute window
WINDOW_ROWS = 60_000 // STEP_MS
PARTITIONS = 4
BATCH = 250
PT, LT = "modelwatch.predictions", "modelwatch.labels"
WINDOW_KINDS = {
    DetectionKind.FEATURE_DRIFT,
    DetectionKind.DATASET_DRIFT,
    DetectionKind.PREDICTION_DRIFT,
}


@dataclass
class Stream:
    name: str
    change: int | None
    numeric: dict[str, np.ndarray]  # monitored rows
    pred: np.ndarray  # predicted class code 0/1
    label: np.ndarray  # true class code 0/1
    ref_numeric: dict[str, np.ndarray]
    ref_pred: np.ndarray
    ref_label: np.ndarray
    categorical: dict[str, np.ndarray] = field(default_factory=dict)  # int codes
    ref_categorical: dict[str, np.ndarray] = field(default_factory=dict)
    onset: int | None = None  # first row a gradual change shows in (default: change)

    @property
    def n(self) -> int:
        return int(self.pred.size)


# ---- streams ------------------------------------------------------------------------------
def concept_10_21(n: int = 30_000, change: int = 20_000, seed: int = 0) -> Stream:
    """Features stay put; the labelling rule moves: the model's error 10 % → 21 %."""
    rng = np.random.default_rng(seed)

    def draw(m: int, moved_from: int | None) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
        x = {f"x{j}": rng.uniform(0, 10, m) for j in range(3)}
        c = rng.integers(0, 3, m)
        pred = ((x["x0"] + x["x1"]) > 10).astype(np.int64)
        label = np.where(rng.random(m) < 0.10, 1 - pred, pred)
        if moved_from is not None:
            # 13.75 % of the rows get the other label: error 0.10 + 0.8 x 0.1375 = 0.21
            region = (x["x2"] > 10 * (1 - 0.1375)) & (np.arange(m) >= moved_from)
            label = np.where(region, 1 - label, label)
        return x, c, pred, label

    rx, rc, rp, rl = draw(5_000, None)
    x, c, p, lab = draw(n, change)
    return Stream("concept_10_21", change, x, p, lab, rx, rp, rl, {"c": c}, {"c": rc})


def _river_stream(name: str, make: Callable[[int, int], Any], functions: tuple[int, int],
                  change: int, width: int, seed: int, n: int = 30_000,
                  train: int = 2_000) -> Stream:  # fmt: skip
    """A Hoeffding tree trained on concept ``functions[0]`` then frozen; monitored rows
    from river's ``ConceptDriftStream`` moving to ``functions[1]`` at ``change``."""
    from river import tree
    from river.datasets import synth

    model = tree.HoeffdingTreeClassifier(grace_period=50)
    rows = list(itertools.islice(iter(make(functions[0], seed + 100)), train + 5_000))
    for xi, yi in rows[:train]:
        model.learn_one(xi, yi)
    mon = synth.ConceptDriftStream(
        make(functions[0], seed), make(functions[1], seed + 1),
        position=change, width=width, seed=seed,
    )  # fmt: skip
    live = list(itertools.islice(iter(mon), n))

    def cols(data: list) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        keys = list(data[0][0])
        x = {
            f"x{k}" if isinstance(k, int) else k: np.array([float(r[0][k]) for r in data])
            for k in keys
        }
        y = np.array([int(r[1]) for r in data], dtype=np.int64)
        p = np.array([int(model.predict_one(r[0]) or 0) for r in data], dtype=np.int64)
        return x, p, y

    rx, rp, rl = cols(rows[train:])
    x, p, y = cols(live)
    # river's sigmoid mixes in the new concept from about 1.15 x width before ``change``
    # (1 % of the rows; 12 % at ``change - width / 2``)
    return Stream(name, change, x, p, y, rx, rp, rl, onset=change - int(1.15 * width))


def sea_0_3(seed: int = 0) -> Stream:
    from river.datasets import synth

    return _river_stream(
        "sea_0_3", lambda f, s: synth.SEA(variant=f, seed=s), (0, 3), 20_000, 200, seed
    )


def agrawal_0_2(seed: int = 0) -> Stream:
    from river.datasets import synth

    return _river_stream(
        "agrawal_0_2",
        lambda f, s: synth.Agrawal(classification_function=f, seed=s),
        (0, 2),
        20_000,
        2_000,
        seed,
    )


def _shuttle(name: str, shift_sd: float, seed: int = 0) -> Stream:
    from river.datasets import Shuttle
    from sklearn.tree import DecisionTreeClassifier

    rows = list(Shuttle())
    keys = list(rows[0][0])
    x_all = np.array([[float(r[0][k]) for k in keys] for r in rows])
    y_all = np.array([int(r[1]) for r in rows], dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(rows))
    x_all, y_all = x_all[order], y_all[order]
    tr, rf, lv = slice(0, 5_000), slice(5_000, 10_000), slice(10_000, 40_000)
    model = DecisionTreeClassifier(max_depth=3, random_state=seed).fit(x_all[tr], y_all[tr])
    live = x_all[lv].copy()
    change = 20_000 if shift_sd else None
    if shift_sd:
        live[change:, 0] += shift_sd * x_all[rf, 0].std()
    ref_x = x_all[rf]
    return Stream(
        name,
        change,
        {k: live[:, j] for j, k in enumerate(keys)},
        model.predict(live).astype(np.int64),
        y_all[lv],
        {k: ref_x[:, j] for j, k in enumerate(keys)},
        model.predict(ref_x).astype(np.int64),
        y_all[rf],
    )


STREAMS: dict[str, Callable[[], Stream]] = {
    "concept_10_21": concept_10_21,
    "sea_0_3": sea_0_3,
    "agrawal_0_2": agrawal_0_2,
    "shuttle_shift": lambda: _shuttle("shuttle_shift", 0.5),
    "shuttle_stationary": lambda: _shuttle("shuttle_stationary", 0.0),
}


# ---- the pipeline's computation ------------------------------------------------------------
def _reference(s: Stream) -> ReferenceView:
    names = ["0", "1"]
    perf = reference_performance(
        [names[i] for i in s.ref_label], [names[i] for i in s.ref_pred], task="classification"
    )
    return ReferenceView(
        build_profile(
            "bench",
            numeric=s.ref_numeric,
            categorical={k: [f"v{v}" for v in c] for k, c in s.ref_categorical.items()},
            prediction=[names[i] for i in s.ref_pred],
            source="bench",
            performance=perf,
        )
    )


def _pred_cols(s: Stream, idx: np.ndarray) -> PredictionColumns:
    n = idx.size
    return PredictionColumns(
        model="bench",
        model_version="1",
        prediction_ids=[f"r{i}" for i in idx.tolist()],
        event_time_ms=T0 + idx.astype(np.int64) * STEP_MS,
        latency_ms=np.ones(n),
        status=np.zeros(n, np.int8),
        numeric={k: v[idx] for k, v in s.numeric.items()},
        categorical={
            k: CategoricalArray([f"v{j}" for j in range(int(c.max()) + 1)], c[idx].astype("<i4"))
            for k, c in s.categorical.items()
        },
        predicted_class=CategoricalArray(["0", "1"], s.pred[idx].astype("<i4")),
    )


def _row(t_ms: int) -> int:
    return int((t_ms - T0) // STEP_MS)


def pipeline_windows(s: Stream, ref: ReferenceView) -> list[int]:
    """Rows (window ends) of windows where any feature, dataset or prediction drift fired."""
    cfg = DriftConfig()
    alarms = []
    for start in range(0, s.n, WINDOW_ROWS):
        idx = np.arange(start, min(start + WINDOW_ROWS, s.n))
        w = WindowPartial(
            "bench", "1", T0 + start * STEP_MS, T0 + (start + WINDOW_ROWS) * STEP_MS,
            ref.partial_spec(400, 100),
        )  # fmt: skip
        w.update(_pred_cols(s, idx))
        closed = evaluate_window(w, ref, cfg)
        if any(d.active and d.kind in WINDOW_KINDS for d in closed.detections):
            alarms.append(int(idx[-1]))  # its last row: a window ending at the change is before it
    return alarms


def pipeline_labels(s: Stream, ref: ReferenceView, config: LabelConfig) -> dict[str, list[int]]:
    """Rows at which concept_drift turned active, and windows with an active
    performance_drop, through the label engine (rows spread over partitions at random)."""
    e = LabelEngine(config, MemoryStore())
    e.set_reference("bench", "", ref)
    part = np.random.default_rng(11).integers(0, PARTITIONS, s.n)
    offsets = [0] * PARTITIONS
    out: dict[str, list[int]] = {"concept_drift": [], "performance_drop": []}
    state: dict[tuple[str, str], bool] = {}

    def collect(dets: list) -> None:
        for d in dets:
            key = (d.kind, d.subject)
            was = state.get(key, False)
            state[key] = d.active
            if d.kind == DetectionKind.CONCEPT_DRIFT and d.active and not was:
                out["concept_drift"].append(_row(d.event_time_ms))
            elif d.kind == DetectionKind.PERFORMANCE_DROP and d.active:
                out["performance_drop"].append(_row(d.event_time_ms))

    for start in range(0, s.n, BATCH):
        idx = np.arange(start, min(start + BATCH, s.n))
        for p in range(PARTITIONS):
            sel = idx[part[idx] == p]
            if not sel.size:
                continue
            e.observe_predictions(PT, p, offsets[p], _pred_cols(s, sel))
            e.observe_labels(
                LT,
                p,
                offsets[p],
                LabelColumns(
                    model="bench",
                    prediction_ids=[f"r{i}" for i in sel.tolist()],
                    event_time_ms=T0 + sel.astype(np.int64) * STEP_MS,
                    label_class=CategoricalArray(["0", "1"], s.label[sel].astype("<i4")),
                ),
            )
            offsets[p] += 1
        collect(e.poll(T0 + int(idx[-1]) * STEP_MS).detections)
    collect(e.poll(T0 + (s.n + 10 * WINDOW_ROWS) * STEP_MS * 10).detections)
    return out


# ---- references to compare with ----------------------------------------------------------
def river_direct(errors: np.ndarray) -> dict[str, list[int]]:
    from river.drift import ADWIN, PageHinkley
    from river.drift.binary import DDM, FHDDM, HDDMA

    out: dict[str, list[int]] = {}
    for name, det, flip in (
        ("river_adwin", ADWIN(), False),
        ("river_page_hinkley", PageHinkley(), False),
        ("river_hddm_a", HDDMA(), False),
        ("river_ddm", DDM(), False),
        ("river_fhddm", FHDDM(), True),  # FHDDM watches the rate of correct predictions
    ):
        alarms = []
        for i, x in enumerate(errors.tolist()):
            det.update((not x) if flip else x)
            if det.drift_detected:
                alarms.append(i)
        out[name] = alarms
    return out


def evidently_style(s: Stream) -> dict[str, list[int]]:
    """Per window: KS / chi-square per feature vs the reference at p < 0.05; the window
    alarms when at least half the features drift (Evidently's dataset-drift default:
    ``evidently_dataset``) or when any one does (``evidently_any_feature``)."""
    from scipy.stats import chi2_contingency, ks_2samp

    alarms, any_feature = [], []
    for start in range(0, s.n, WINDOW_ROWS):
        sl = slice(start, min(start + WINDOW_ROWS, s.n))
        drifted = judged = 0
        for k, ref in s.ref_numeric.items():
            judged += 1
            drifted += ks_2samp(ref, s.numeric[k][sl]).pvalue < 0.05
        for k, ref in s.ref_categorical.items():
            cur = s.categorical[k][sl]
            m = int(max(ref.max(), cur.max())) + 1
            table = np.stack([np.bincount(ref, minlength=m), np.bincount(cur, minlength=m)])
            table = table[:, table.sum(axis=0) > 0]
            judged += 1
            drifted += chi2_contingency(table)[1] < 0.05
        if judged and drifted / judged >= 0.5:
            alarms.append(sl.stop - 1)
        if drifted:
            any_feature.append(sl.stop - 1)
    return {"evidently_dataset": alarms, "evidently_any_feature": any_feature}


# ---- scoring -------------------------------------------------------------------------------
def score(alarms: list[int], change: int | None, n: int, onset: int | None = None) -> dict:
    """Delay from ``change`` to the first alarm at or after ``onset`` (a gradual change
    may be caught before its midpoint: a negative delay), false alarms before ``onset``."""
    start = change if onset is None else onset
    before = [a for a in alarms if start is None or a < start]
    pre_rows = n if start is None else start
    out: dict[str, Any] = {"false_per_10k": round(len(before) / pre_rows * 10_000, 2)}
    if change is not None and start is not None:
        after = [a for a in alarms if a >= start]
        out["delay"] = after[0] - change if after else None
        out["missed"] = not after
    return out


def run_stream(s: Stream, config: LabelConfig | None = None) -> dict[str, Any]:
    ref = _reference(s)
    errors = (s.pred != s.label).astype(float)
    alarms: dict[str, list[int]] = {"pipeline_windows": pipeline_windows(s, ref)}
    labels = pipeline_labels(s, ref, config or LabelConfig())
    alarms["pipeline_concept_drift"] = labels["concept_drift"]
    alarms["pipeline_performance_drop"] = labels["performance_drop"]
    alarms.update(river_direct(errors))
    alarms.update(evidently_style(s))
    res: dict[str, Any] = {
        "change": s.change,
        "error_before": round(float(errors[: s.change or s.n].mean()), 4),
        "error_after": None if s.change is None else round(float(errors[s.change :].mean()), 4),
    }
    res.update({name: score(a, s.change, s.n, s.onset) for name, a in alarms.items()})
    return res


# ---- the concept-drift sweep behind stream_jobs/concept/detectors.py -----------------------
SWEEP_RATES = (0.05, 0.15, 0.30)
SWEEP_JUMPS = ((0.10, 0.21), (0.20, 0.40), (0.05, 0.30), (0.10, 0.15))


def _bernoulli(p0: float, p1: float, n: int, change: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < np.where(np.arange(n) < change, p0, p1)).astype(float)


def _pooled_alarms(errors: np.ndarray, threshold: float) -> list[int]:
    from stream_jobs.concept.pooled import PooledErrorTest

    test = PooledErrorTest(bucket_ms=1_000, threshold=threshold)
    t = np.arange(errors.size, dtype=np.int64) * STEP_MS
    part = np.random.default_rng(3).integers(0, PARTITIONS, errors.size)
    alarms = []
    for lo in range(0, errors.size, BATCH):
        for p in range(PARTITIONS):
            m = np.flatnonzero(part[lo : lo + BATCH] == p) + lo
            test.add(p, errors[m], t[m])
            if m.size:
                for f in test.advance(p, int(t[m].max())):
                    alarms.append(_row(T0 + f.event_time_ms))
    return alarms


def _quorum_alarms(errors: np.ndarray) -> list[int]:
    from stream_jobs.concept.monitor import PartitionMonitor
    from stream_jobs.concept.quorum import VoteBox

    c = LabelConfig()
    box = VoteBox(c.quorum_fraction, c.quorum_min_votes, c.vote_window_ms)
    mons = {p: PartitionMonitor(c.detector, recent=c.recent_errors) for p in range(PARTITIONS)}
    t = np.arange(errors.size, dtype=np.int64) * STEP_MS
    part = np.random.default_rng(3).integers(0, PARTITIONS, errors.size)
    alarms, active = [], False
    for lo in range(0, errors.size, BATCH):
        for p in range(PARTITIONS):
            m = np.flatnonzero(part[lo : lo + BATCH] == p) + lo
            if m.size:
                for f in mons[p].update(errors[m], t[m]):
                    box.vote(p, f)
                box.seen(p, int(t[m][-1]))
        met, votes = box.evaluate()
        if met and not active:
            alarms.append(max(f.event_time_ms for _, f in votes) // STEP_MS)
        active = met
    return alarms


def concept_sweep(seeds: int = 5, n: int = 20_000) -> dict[str, dict[str, float]]:
    """False alarms / 10k on stationary Bernoulli error streams and the median delay
    (rows) after a jump, 4 partitions: the pooled CUSUM at three thresholds, the
    per-partition FHDDM quorum, and river's ADWIN on the whole stream."""
    from river.drift import ADWIN

    def adwin(errors: np.ndarray) -> list[int]:
        d, out = ADWIN(), []
        for i, x in enumerate(errors.tolist()):
            d.update(x)
            if d.drift_detected:
                out.append(i)
        return out

    detectors: dict[str, Callable[[np.ndarray], list[int]]] = {
        f"pooled_cusum_h{h:g}": (lambda e, h=h: _pooled_alarms(e, h)) for h in (10.0, 12.0, 14.0)
    }
    detectors["partition_fhddm_quorum"] = _quorum_alarms
    detectors["river_adwin_whole_stream"] = adwin
    out: dict[str, dict[str, float]] = {}
    for name, det in detectors.items():
        row: dict[str, float] = {}
        for p in SWEEP_RATES:
            fa = sum(len(det(_bernoulli(p, p, n, n, 500 + s))) for s in range(seeds))
            row[f"fa_per_10k_{p:g}"] = round(fa / (seeds * n) * 10_000, 2)
        for p0, p1 in SWEEP_JUMPS:
            change = n // 2
            delays = []
            for s in range(seeds):
                after = [a for a in det(_bernoulli(p0, p1, n, change, s)) if a >= change]
                delays.append(after[0] - change if after else n - change)
            row[f"delay_{p0:g}_{p1:g}"] = float(np.median(delays))
        out[name] = row
    return out


def _stream_alarms(errors: np.ndarray, threshold: float, step_ms: int) -> list[int]:
    """Rows where one pooled CUSUM on the whole stream fires (``step_ms`` per row)."""
    from stream_jobs.concept.pooled import PooledErrorTest

    test = PooledErrorTest(bucket_ms=1_000, threshold=threshold)
    t = np.arange(errors.size, dtype=np.int64) * step_ms
    alarms: list[int] = []
    for lo in range(0, errors.size, 5_000):
        sl = slice(lo, lo + 5_000)
        test.add(0, errors[sl], t[sl])
        alarms += [int(f.event_time_ms // step_ms) for f in test.advance(0, int(t[sl][-1]))]
    return alarms


def concept_long_sweep(rows: int = 1_000_000, seeds: int = 2) -> dict[str, dict[str, float]]:
    """The default threshold's evidence (the second table of
    :mod:`stream_jobs.concept.detectors`): false alarms per 10k on ``seeds`` x ``rows``
    stationary rows per rate, at 60 and 400 ms of event time per row, and the median delay
    (7 seeds) after each jump; one CUSUM on the whole stream. Minutes: run by name only."""
    out: dict[str, dict[str, float]] = {}
    for h in (10.0, 12.0, 14.0):
        row: dict[str, float] = {}
        for step_ms in (60, 400):
            for p in SWEEP_RATES:
                fa = sum(len(_stream_alarms(_bernoulli(p, p, rows, rows, 100 + s), h, step_ms))
                         for s in range(seeds))  # fmt: skip
                row[f"fa_per_10k_{p:g}_{step_ms}ms"] = round(fa / (seeds * rows) * 10_000, 3)
        for p0, p1 in SWEEP_JUMPS:
            delays = []
            for s in range(7):
                after = [a for a in _stream_alarms(_bernoulli(p0, p1, 40_000, 20_000, s), h, 60)
                         if a >= 20_000]  # fmt: skip
                delays.append(after[0] - 20_000 if after else 20_000)
            row[f"delay_{p0:g}_{p1:g}"] = float(np.median(delays))
        out[f"cusum_h{h:g}"] = row
    return out


def concept_vs_river(seeds: int = 5) -> dict[str, Any]:
    """``concept_10_21`` on several seeds: the pipeline's concept_drift delay against
    river's best detector run directly on the same error stream (the quickest of those
    with no false alarm before the change)."""
    rows = []
    for seed in range(seeds):
        s = concept_10_21(seed=seed)
        errors = (s.pred != s.label).astype(float)
        ours = score(pipeline_labels(s, _reference(s), LabelConfig())["concept_drift"],
                     s.change, s.n)  # fmt: skip
        river = {k: score(v, s.change, s.n) for k, v in river_direct(errors).items()}
        clean = {k: v["delay"] for k, v in river.items() if not v["false_per_10k"] and v["delay"]}
        best = min(clean.items(), key=lambda kv: kv[1]) if clean else (None, None)
        rows.append({
            "seed": seed, "pipeline_delay": ours.get("delay"),
            "pipeline_false_per_10k": ours["false_per_10k"],
            "river_best": best[0], "river_best_delay": best[1],
            "ratio": None if not (best[1] and ours.get("delay") is not None)
            else round(ours["delay"] / best[1], 2),
        })  # fmt: skip
    return {"runs": rows, "worst_ratio": max((r["ratio"] or math.inf) for r in rows)}


def _fmt(r: dict[str, Any]) -> str:
    d = r.get("delay")
    delay = "missed" if r.get("missed") else ("-" if d is None else f"{d:,}")
    return f"{delay:>8} {r['false_per_10k']:>7.2f}"


def main(names: list[str] | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    for name in [n for n in names or STREAMS if n in STREAMS]:
        t = time.perf_counter()
        s = STREAMS[name]()
        results[name] = run_stream(s)
        results[name]["seconds"] = round(time.perf_counter() - t, 1)
        r = results[name]
        print(
            f"\n{name}: change at row {r['change']}, model error {r['error_before']} → "
            f"{r['error_after']} ({r['seconds']} s)\n"
            f"  {'detector':<28} {'delay':>8} {'FA/10k':>7}"
        )
        for det, v in r.items():
            if isinstance(v, dict):
                print(f"  {det:<28} {_fmt(v)}")
    if names is None or "concept_vs_river" in names:
        cvr = results["concept_vs_river"] = concept_vs_river()
        print("\nconcept_10_21 over seeds: pipeline concept_drift vs river's best (no FA)")
        for r in cvr["runs"]:
            print(
                f"  seed {r['seed']}: pipeline {r['pipeline_delay']} rows "
                f"(FA/10k {r['pipeline_false_per_10k']}), {r['river_best']} "
                f"{r['river_best_delay']} rows, ratio {r['ratio']}"
            )
        print(f"  worst ratio {cvr['worst_ratio']}")
    if names is None or "sweep" in names:
        sweep = results["concept_sweep"] = concept_sweep()
        cols = list(next(iter(sweep.values())))
        print("\nconcept-drift sweep (4 partitions; FA per 10k rows; median delay in rows)")
        print(f"  {'detector':<26} " + " ".join(f"{c[:16]:>16}" for c in cols))
        for det, row in sweep.items():
            print(f"  {det:<26} " + " ".join(f"{row[c]:>16,.2f}" for c in cols))
    if names is not None and "long_sweep" in names:  # minutes: by name only
        long = results["concept_long_sweep"] = concept_long_sweep()
        print("\nconcept CUSUM long sweep (one stream; FA per 10k rows; median delay in rows)")
        for det, row in long.items():
            print(f"  {det:<12} " + " ".join(f"{c}={v:g}" for c, v in row.items()))
    results["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:] or None), indent=2, default=str))
