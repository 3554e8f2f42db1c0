"""Label bench: join throughput, bytes per pending prediction, concept-drift detection.

Run: ``.venv/bin/python -m tests.bench.bench_labels`` (``main()`` returns the figures).

* **join throughput**: predictions then labels (shuffled, 90 % labelled) through a
  :class:`LabelEngine` on RocksDB, batches of 500, concept monitors on (8 partitions);
* **bytes per pending prediction** at 1M pending (binary model: score, 2 class
  probabilities, 2 segment tags, 36-character ids): RocksDB on disk after a flush, and
  the process RSS growth with RocksDB (memtables, block cache) and with the in-memory
  store, each measured in a fresh subprocess;
* **concept drift on river's SEA / Agrawal / STAGGER** (abrupt change of concept): a
  river model trained on the first concept, then frozen; its 0/1 errors go (a) to the
  per-partition FHDDM monitors with a quorum (8 partitions, prediction_id-random split)
  and (b) to one river DDM and one river ADWIN on the whole error stream. Detection
  delay = samples after the change until the first alarm; false alarms = alarms before;
* **detector sweep**: per-partition false alarms and delays of each binary detector on
  Bernoulli error streams (the table in :mod:`stream_jobs.concept.detectors`).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from typing import Any

import numpy as np

from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns
from stream_jobs.concept.monitor import PartitionMonitor
from stream_jobs.concept.quorum import VoteBox
from stream_jobs.join.config import LabelConfig
from stream_jobs.join.engine import LabelEngine
from stream_jobs.join.store import MemoryStore, RocksStore

BATCH = 500


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _pred_batch(ids: list[str], t0: int, rng: np.random.Generator) -> PredictionColumns:
    n = len(ids)
    score = rng.random(n)
    return PredictionColumns(
        model="fraud", model_version="3", prediction_ids=ids,
        event_time_ms=t0 + np.arange(n, dtype=np.int64), latency_ms=np.ones(n),
        status=np.zeros(n, np.int8), score=score, class_names=["0", "1"],
        class_probabilities=np.stack([1 - score, score], axis=1),
        segments={"region": CategoricalArray(["eu", "us", "apac"], rng.integers(0, 3, n)
                                             .astype("<i4")),
                  "tier": CategoricalArray(["free", "pro"], rng.integers(0, 2, n)
                                           .astype("<i4"))},
    )


def _with_features(cols: PredictionColumns, rng: np.random.Generator) -> PredictionColumns:
    """The batch plus 20 numeric and 5 categorical features (as the worker bench)."""
    n = cols.n
    cols.numeric = {f"x{j:02d}": rng.normal(j, 1 + j / 10, n) for j in range(20)}
    cols.categorical = {
        f"c{j}": CategoricalArray([f"v{i}" for i in range(8)], rng.integers(0, 8, n)
                                  .astype("<i4")) for j in range(5)}
    return cols


def _features_reference(rng: np.random.Generator):
    from stream_jobs.reference.profile import build_profile
    from stream_jobs.reference.view import ReferenceView

    return ReferenceView(build_profile(
        "fraud", numeric={f"x{j:02d}": rng.normal(j, 1 + j / 10, 20_000) for j in range(20)},
        performance={"accuracy": 0.7}))


def join_throughput(
    n: int = 200_000, partitions: int = 8, features: bool = False
) -> dict[str, float]:
    """With ``features``: 25 features binned as ranking segments against a reference."""
    rng = np.random.default_rng(0)
    ids = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, n)]
    with tempfile.TemporaryDirectory() as d:
        e = LabelEngine(LabelConfig(), RocksStore(d))
        batches = [ids[i:i + BATCH] for i in range(0, n, BATCH)]
        pcols = [_pred_batch(b, 1_000_000 + i * BATCH, rng) for i, b in enumerate(batches)]
        if features:
            e.set_reference("fraud", "", _features_reference(rng))
            pcols = [_with_features(c, rng) for c in pcols]
        t0 = time.perf_counter()
        for k, cols in enumerate(pcols):
            e.observe_predictions("P", k % partitions, k // partitions, cols)
        t_pred = time.perf_counter() - t0
        labelled = rng.permutation(n)[: int(0.9 * n)]
        lcols = []
        for i in range(0, labelled.size, BATCH):
            idx = labelled[i:i + BATCH]
            lcols.append(LabelColumns(
                model="fraud", prediction_ids=[ids[j] for j in idx],
                event_time_ms=np.full(idx.size, 2_000_000 + i, dtype=np.int64),
                label_class=CategoricalArray(["0", "1"], (rng.random(idx.size) < 0.3)
                                             .astype("<i4"))))
        t0 = time.perf_counter()
        joined = 0
        for k, cols in enumerate(lcols):
            joined += e.observe_labels("L", k % partitions, k // partitions, cols).joined
        t_lab = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = e.poll(2_000_000 + n)
        t_poll = time.perf_counter() - t0
        pending = [v for _, v in e.store.scan(b"p") if len(v) > 1]
        value_bytes = sum(map(len, pending)) / max(len(pending), 1)
        e.store.close()
    return {
        "value_bytes_per_pending": value_bytes,
        "predictions_per_s": n / t_pred,
        "labels_per_s": labelled.size / t_lab,
        "joined": float(joined),
        "closed_windows": float(len(out.windows)),
        "poll_s": t_poll,
    }


def _fill(kind: str, n: int, path: str, q: Any) -> None:
    rng = np.random.default_rng(1)
    store = RocksStore(path) if kind == "rocks" else MemoryStore()
    e = LabelEngine(LabelConfig(), store)
    e.observe_predictions("P", 0, -1, _pred_batch(["warm-up"], 0, rng))
    base = _rss()
    t0 = time.perf_counter()
    for k in range(0, n, 5_000):  # ids made per batch and dropped: only the store grows
        ids = [str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**63, 5_000)]
        e.observe_predictions("P", 0, k, _pred_batch(ids, k, rng))
    elapsed = time.perf_counter() - t0
    del ids
    rss = _rss() - base
    disk = 0
    if kind == "rocks":
        store.flush()
        store._db.compact_range(None, None)
        disk = store.disk_bytes()
    value_bytes = sum(len(v) for k, v in store.scan(b"p"))  # noqa: B007
    q.put({"rss_bytes": rss, "disk_bytes": disk, "value_bytes": value_bytes,
           "fill_s": elapsed})
    store.close()


def pending_bytes(n: int = 1_000_000) -> dict[str, float]:
    out: dict[str, float] = {}
    ctx = mp.get_context("spawn")
    for kind in ("rocks", "memory"):
        with tempfile.TemporaryDirectory() as d:
            q = ctx.Queue()
            p = ctx.Process(target=_fill, args=(kind, n, d, q))
            p.start()
            r = q.get()
            p.join()
        if kind == "rocks":
            out["rocks_disk_bytes_per_pending"] = r["disk_bytes"] / n
            out["rocks_rss_bytes_per_pending"] = r["rss_bytes"] / n
            out["value_bytes_per_pending"] = r["value_bytes"] / n
            out["rocks_fill_predictions_per_s"] = n / r["fill_s"]
        else:
            out["memory_store_rss_bytes_per_pending"] = r["rss_bytes"] / n
    return out


# ---- concept drift on river synthetic streams -------------------------------------------
def _streams(seed: int):
    from river.datasets import synth

    return {
        "SEA": (synth.SEA(variant=0, seed=seed), synth.SEA(variant=3, seed=seed + 1)),
        "Agrawal": (synth.Agrawal(classification_function=0, seed=seed),
                    synth.Agrawal(classification_function=2, seed=seed + 1)),
        "STAGGER": (synth.STAGGER(classification_function=0, seed=seed, balance_classes=False),
                    synth.STAGGER(classification_function=2, seed=seed + 1,
                                  balance_classes=False)),
    }


def _error_stream(first, second, train: int, before: int, after: int, model) -> np.ndarray:
    it = iter(first)
    for _ in range(train):
        x, y = next(it)
        model.learn_one(x, y)
    errs = []
    for _ in range(before):  # frozen from here on
        x, y = next(it)
        errs.append(model.predict_one(x) != y)
    it2 = iter(second)
    for _ in range(after):
        x, y = next(it2)
        errs.append(model.predict_one(x) != y)
    return np.array(errs, dtype=float)


def _quorum(errors: np.ndarray, change: int, parts: int, rng, detector: str,
            fraction: float = 0.5) -> tuple:
    """Per-partition monitors + quorum: (first quorum index after change or None, false)."""
    part = rng.integers(0, parts, errors.size)
    box = VoteBox(fraction=fraction, min_votes=1, vote_window_ms=2_000)
    mons = {p: PartitionMonitor(detector) for p in range(parts)}
    t = np.arange(errors.size)
    false, first, active = 0, None, False
    for s in range(0, errors.size, 200):
        sl = slice(s, s + 200)
        for p in range(parts):
            m = part[sl] == p
            if m.any():
                for f in mons[p].update(errors[sl][m], t[sl][m]):
                    box.vote(p, f)
                box.seen(p, int(t[sl][m][-1]))
        met, votes = box.evaluate()
        if met and not active:
            when = max(f.event_time_ms for _, f in votes)
            if when < change:
                false += 1
            elif first is None:
                first = when
        active = met
    return (None if first is None else first - change), false


def _single(errors: np.ndarray, change: int, detector) -> tuple:
    first, false = None, 0
    for i, x in enumerate(errors.tolist()):
        detector.update(x)
        if detector.drift_detected:
            if i < change:
                false += 1
            elif first is None:
                first = i - change
    return first, false


def concept_drift(seeds: int = 3, train: int = 2_000, before: int = 20_000,
                  after: int = 10_000) -> dict[str, dict[str, Any]]:
    from river import tree
    from river.drift import ADWIN
    from river.drift.binary import DDM

    results: dict[str, dict[str, Any]] = {}
    for seed in range(seeds):
        for name, (first, second) in _streams(seed).items():
            model = tree.HoeffdingTreeClassifier(grace_period=50)
            errors = _error_stream(first, second, train, before, after, model)
            rng = np.random.default_rng(seed)
            r = results.setdefault(name, {"error_before": [], "error_after": [],
                                          "quorum_delay": [], "quorum_false": [],
                                          "quorum25_delay": [], "quorum25_false": [],
                                          "fhddm1_delay": [], "fhddm1_false": [],
                                          "ddm_delay": [], "ddm_false": [],
                                          "adwin_delay": [], "adwin_false": []})
            r["error_before"].append(float(errors[:before].mean()))
            r["error_after"].append(float(errors[before:].mean()))
            d, f = _quorum(errors, before, 8, rng, "fhddm")
            r["quorum_delay"].append(d)
            r["quorum_false"].append(f)
            d, f = _quorum(errors, before, 8, np.random.default_rng(seed), "fhddm", 0.25)
            r["quorum25_delay"].append(d)
            r["quorum25_false"].append(f)
            d, f = _quorum(errors, before, 1, np.random.default_rng(seed), "fhddm")
            r["fhddm1_delay"].append(d)
            r["fhddm1_false"].append(f)
            d, f = _single(errors, before, DDM())
            r["ddm_delay"].append(d)
            r["ddm_false"].append(f)
            d, f = _single(errors, before, ADWIN())
            r["adwin_delay"].append(d)
            r["adwin_false"].append(f)
    return results


def detector_sweep(seeds: int = 10) -> dict[str, dict[str, float]]:
    """Per-partition false alarms / 10k and median delay of each default detector."""
    out: dict[str, dict[str, float]] = {}
    for det in ("ddm", "eddm", "hddm_a", "hddm_w", "fhddm"):
        n_fa = 10_000
        fa = []
        for p in (0.05, 0.15, 0.3):
            tot = 0
            for s in range(seeds):
                x = (np.random.default_rng(1000 + s).random(n_fa) < p).astype(float)
                tot += len(PartitionMonitor(det).update(x, np.arange(n_fa)))
            fa.append(tot / seeds)
        delays = []
        t0 = time.perf_counter()
        updates = 0
        for p0, p1 in ((0.1, 0.2), (0.2, 0.4), (0.05, 0.3)):
            d = []
            for s in range(seeds):
                t = np.arange(6000)
                x = (np.random.default_rng(s).random(6000) < np.where(t < 3000, p0, p1))
                post = [f for f in PartitionMonitor(det).update(x.astype(float), t)
                        if f.event_time_ms >= 3000]
                updates += 6000
                if post:
                    d.append(post[0].event_time_ms - 3000)
            delays.append(float(np.median(d)) if d else float("nan"))
        us = (time.perf_counter() - t0) / updates * 1e6
        out[det] = {"fa_per_10k_p05": fa[0], "fa_per_10k_p15": fa[1], "fa_per_10k_p30": fa[2],
                    "delay_10_20": delays[0], "delay_20_40": delays[1], "delay_05_30": delays[2],
                    "us_per_update": us}
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3f}"
    return str(v)


def main(quick: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    res: dict[str, Any] = {}
    res["join"] = join_throughput(50_000 if quick else 200_000)
    res["join_feature_bins"] = join_throughput(50_000 if quick else 200_000, features=True)
    res["pending"] = pending_bytes(100_000 if quick else 1_000_000)
    res["concept"] = concept_drift(seeds=1 if quick else 3)
    res["sweep"] = detector_sweep(seeds=3 if quick else 10)
    res["elapsed_s"] = time.perf_counter() - t0
    print("\n== join ==")
    for k, v in {**res["join"], **res["pending"]}.items():
        print(f"  {k:<38} {_fmt(v)}")
    print("\n== join, 25 features binned for the ranking (vs no features) ==")
    for k, v in res["join_feature_bins"].items():
        base = res["join"].get(k)
        ratio = f"  ({v / base:.2f}x)" if isinstance(base, float) and base else ""
        print(f"  {k:<38} {_fmt(v)}{ratio}")
    print("\n== concept drift (frozen model; delay in samples after the change; "
          "false = alarms before it) ==")
    cols = (("quorum", "8 parts, FHDDM, 4/8"), ("quorum25", "8 parts, FHDDM, 2/8"),
            ("fhddm1", "1 FHDDM, whole"), ("ddm", "1 river DDM"), ("adwin", "1 river ADWIN"))
    print(f"  {'stream':<8} {'err0':>5} {'err1':>5}" + "".join(f"  {h:>22}" for _, h in cols))
    for name, r in res["concept"].items():
        cells = "".join(
            f"  {str(r[k + '_delay']) + ' / ' + str(sum(r[k + '_false'])):>22}" for k, _ in cols)
        print(f"  {name:<8} {np.mean(r['error_before']):>5.3f} {np.mean(r['error_after']):>5.3f}"
              + cells)
    print("\n== per-partition detector sweep (defaults) ==")
    for det, r in res["sweep"].items():
        print(f"  {det:<7} " + "  ".join(f"{k}={_fmt(v)}" for k, v in r.items()))
    print(f"\nelapsed {res['elapsed_s']:.1f} s")
    return res


if __name__ == "__main__":
    r = main(quick="--quick" in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(r, default=str))
    os._exit(0)
