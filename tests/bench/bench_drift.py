"""Drift bench: detection quality on streams with known change points, the choice of chunk
size and partition quorum, and DriftEngine throughput / memory.

Run: ``.venv/bin/python -m tests.bench.bench_drift`` (or ``make bench``); ``main()`` returns
the figures as a dict and prints tables. Figures only, no timing asserts.

Protocol (quality): a stream of ``PRE`` undisturbed events then ``POST`` changed events at
1,000 events/s of event time, spread at random over 8 partitions (as prediction_id hashing
does), fed to a DriftEngine in batches. The anchor is one river ADWIN (defaults, one
update per value) on the whole, unpartitioned stream of the changed column.

- delay: events from the change to the first detection on the changed column (median
  over runs; window tests: to the end of the first window judged drifted);
- misses: runs with no detection of the change before the stream ended;
- false alarms per million events: detections before the change (any column) or on an
  unchanged column, per million events fed.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from river.datasets import synth
from river.drift import ADWIN

from schemas.columnar import PredictionColumns
from stream_jobs.detectors.column import ColumnDetectors
from stream_jobs.detectors.firing import Firing
from stream_jobs.detectors.vote import PREDICTION_SUBJECT, VoteCombiner
from stream_jobs.drift import DriftConfig, DriftEngine
from stream_jobs.drift.synthetic import SyntheticStream
from stream_jobs.reference.profile import build_profile
from stream_jobs.windows.spec import PREDICTION

RATE = 1_000  # events per second of event time
PARTITIONS = 8
BATCH = 4_000  # global events per step, split over the partitions
PRE, POST = 300_000, 150_000
RUNS = 4
QUORUMS: list[int | str] = [1, 2, 3, "majority"]


# ---- streams -------------------------------------------------------------------------
@dataclass
class Scenario:
    name: str
    subject: str  # the column that changes ("prediction" for the score)
    # seed -> (reference profile, batches)
    make: Callable[[int], tuple[dict[str, Any], Iterator[PredictionColumns]]]


def _columns(t0: int, x: dict[str, np.ndarray], score: np.ndarray) -> PredictionColumns:
    n = score.size
    return PredictionColumns(
        "m", "1", [""] * n, t0 + (np.arange(n) * 1000 // RATE).astype(np.int64),
        np.full(n, 10.0), np.zeros(n, np.int8), numeric=x, score=score,
    )  # fmt: skip


def gaussian(shift: float = 0.0, scale: float = 1.0) -> Callable[[int], Any]:
    def make(seed: int) -> tuple[dict[str, Any], Iterator[PredictionColumns]]:
        s = SyntheticStream(n_numeric=5, n_categorical=0, rate_per_s=RATE, seed=seed)

        def gen() -> Iterator[PredictionColumns]:
            for i in range((PRE + POST) // BATCH):
                if i * BATCH == PRE:
                    s.shift["f2"], s.scale["f2"] = shift, scale
                yield s.batch(i * BATCH * 1000 // RATE, BATCH)

        return s.reference(), gen()

    return make


def river_stream(factory: Callable[[int], Any], reference_factory: Callable[[int], Any]) -> Any:
    """A river generator as columns: its features, and its target as the score."""

    def to_cols(it: Iterator[tuple[dict, Any]], n: int, t0: int) -> PredictionColumns:
        rows = list(itertools.islice(it, n))
        keys = list(rows[0][0])
        x = {f"x{k}": np.array([r[0][k] for r in rows], float) for k in keys}
        return _columns(t0, x, np.array([float(r[1]) for r in rows]))

    def make(seed: int) -> tuple[dict[str, Any], Iterator[PredictionColumns]]:
        ref_cols = to_cols(iter(reference_factory(seed + 1000)), 50_000, 0)
        ref = build_profile("m", "", numeric=ref_cols.numeric, prediction=ref_cols.score)
        it = iter(factory(seed))

        def gen() -> Iterator[PredictionColumns]:
            for i in range((PRE + POST) // BATCH):
                yield to_cols(it, BATCH, i * BATCH * 1000 // RATE)

        return ref, gen()

    return make


def scenarios() -> list[Scenario]:
    def friedman(seed: int, positions: tuple[int, ...] = (PRE, PRE + 50_000, PRE + 100_000)):
        return synth.FriedmanDrift(drift_type="lea", position=positions, seed=seed)

    def sea(seed: int, position: int = PRE) -> Any:
        return synth.ConceptDriftStream(
            synth.SEA(variant=0, seed=seed), synth.SEA(variant=2, seed=seed + 1),
            position=position, width=2_000, seed=seed,
        )  # fmt: skip

    return [
        Scenario("no change (null)", "", gaussian(0.0)),
        Scenario("gauss mean +0.25σ", "f2", gaussian(0.25)),
        Scenario("gauss mean +0.5σ", "f2", gaussian(0.5)),
        Scenario("gauss mean +1σ", "f2", gaussian(1.0)),
        Scenario("gauss std x1.5", "f2", gaussian(0.0, 1.5)),
        Scenario(
            "river SEA 0→2 (label prior)",
            PREDICTION_SUBJECT,
            river_stream(sea, lambda s: synth.SEA(variant=0, seed=s)),
        ),
        Scenario(
            "river FriedmanDrift lea",
            PREDICTION_SUBJECT,
            river_stream(friedman, lambda s: friedman(s, (10**9, 10**9 + 1, 10**9 + 2))),
        ),
    ]


# ---- running -------------------------------------------------------------------------
class RecordingVotes(VoteCombiner):
    """Keeps every raw partition firing so that several quorums can be decided later."""

    def __init__(self) -> None:
        super().__init__(quorum=1)
        self.raw: list[Firing] = []

    def add(self, firing: Firing) -> str:
        self.raw.append(firing)
        return "applied"


def replay_votes(raw: list[Firing], quorum: int | str) -> list[Any]:
    """The firings decided as the merge stage decides them once every partition has passed
    them: in event-time order, the majority of all ``PARTITIONS``."""
    v = VoteCombiner(quorum, DriftConfig().vote_window_ms)  # type: ignore[arg-type]
    for f in raw:
        v.add(f)
    return [d for m in sorted(v.pending) for d in v.decide(m, {}, PARTITIONS, force=True)]


def split(cols: PredictionColumns, part: np.ndarray, p: int) -> PredictionColumns:
    idx = np.flatnonzero(part == p)
    return PredictionColumns(
        cols.model, cols.model_version, [""] * idx.size, cols.event_time_ms[idx],
        cols.latency_ms[idx], cols.status[idx],
        numeric={k: v[idx] for k, v in cols.numeric.items()},
        categorical={k: v.take(idx) for k, v in cols.categorical.items()},
        score=None if cols.score is None else cols.score[idx],
    )  # fmt: skip


def run_quality(sc: Scenario, seed: int, config: DriftConfig | None = None) -> dict[str, Any]:
    ref, batches = sc.make(seed)
    engine = DriftEngine(config or DriftConfig())
    engine.set_reference(ref)
    rec = RecordingVotes()
    engine.votes = rec
    rng = np.random.default_rng(seed)
    anchor = ADWIN()
    anchor_hits: list[int] = []
    offsets = [0] * PARTITIONS
    closed = []
    seen = 0
    for cols in batches:
        watched = sc.subject or "f2"
        values = cols.score if watched == PREDICTION_SUBJECT else cols.numeric[watched]
        for i, v in enumerate(values.tolist()):
            anchor.update(v)
            if anchor.drift_detected:
                anchor_hits.append(seen + i)
        seen += cols.n
        part = rng.integers(0, PARTITIONS, cols.n)
        for p in range(PARTITIONS):
            engine.observe(p, offsets[p], split(cols, part, p))
            offsets[p] += 1
        closed += engine.poll_closed()
    closed += engine.flush()
    change_ms = PRE * 1000 // RATE
    out: dict[str, Any] = {"events": seen}
    for q in QUORUMS:
        dets = replay_votes(rec.raw, q)
        hits = [d for d in dets if d.subject == sc.subject and d.event_time_ms >= change_ms]
        fa = [d for d in dets if d not in hits]
        out[f"q{q}"] = (
            (hits[0].event_time_ms - change_ms) * RATE // 1000 if hits else None,
            len(fa),
        )
    column = PREDICTION if sc.subject == PREDICTION_SUBJECT else sc.subject
    wins = [
        (w.window_end_ms, v["column"]) for w in closed for v in w.stats["drift"] if v["drifted"]
    ]
    whit = [e for e, c in wins if c == column and e > change_ms]
    out["windows"] = (
        (whit[0] - change_ms) * RATE // 1000 if whit else None,
        sum(1 for e, c in wins if c != column or e <= change_ms),
    )
    ahit = [i for i in anchor_hits if i >= PRE and sc.subject]
    out["anchor"] = (ahit[0] - PRE if ahit else None, len(anchor_hits) - len(ahit))
    return out


def summarise(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    delays = [r[key][0] for r in runs if r[key][0] is not None]
    events = sum(r["events"] for r in runs)
    return {
        "delay_events_median": float(np.median(delays)) if delays else None,
        "misses": sum(1 for r in runs if r[key][0] is None),
        "false_alarms_per_million": sum(r[key][1] for r in runs) * 1e6 / events,
    }


def quality(
    config: DriftConfig | None = None, names: tuple[str, ...] | None = None, title: str = ""
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    keys = ["anchor", *[f"q{q}" for q in QUORUMS], "windows"]
    print(
        f"\nDetection quality{title}: {RUNS} runs x ({PRE:,} + {POST:,}) events, "
        f"{PARTITIONS} partitions"
    )
    print(f"{'scenario':30} {'method':14} {'delay(ev)':>10} {'misses':>7} {'FA/M ev':>8}")
    for sc in scenarios():
        if names is not None and sc.name not in names:
            continue
        runs = [run_quality(sc, seed, config) for seed in range(RUNS)]
        results[sc.name] = {k: summarise(runs, k) for k in keys}
        for k in keys:
            s = results[sc.name][k]
            label = {"anchor": "ADWIN anchor", "windows": "window tests"}.get(k, f"online {k}")
            d = "-" if s["delay_events_median"] is None else f"{s['delay_events_median']:,.0f}"
            miss = f"{s['misses']}/{RUNS}" if sc.subject else "n/a"
            print(
                f"{sc.name:30} {label:14} {d:>10} {miss:>7} "
                f"{s['false_alarms_per_million']:>8.2f}"
            )
    return results


# ---- chunk size ----------------------------------------------------------------------
def chunk_choice() -> dict[str, Any]:
    """One partition's ColumnDetectors (ADWIN + Page–Hinkley) fed every value (chunk=1)
    vs chunk means: cost per event, delay and false alarms."""
    print("\nChunk size (one partition, ADWIN+PH, 200k quiet + 50k shifted, 3 runs)")
    print(f"{'chunk':>6} {'shift':>6} {'us/event':>9} {'delay(ev)':>10} {'misses':>7} {'FA/M':>7}")
    out: dict[str, Any] = {}
    pre, post = 200_000, 50_000
    for chunk in (1, 8, 32, 128):
        for shift in (0.25, 0.5):
            delays, fa, misses, cost = [], 0, 0, 0.0
            for seed in range(3):
                rng = np.random.default_rng(seed)
                x = np.concatenate([rng.normal(size=pre), rng.normal(shift, 1, post)])
                t = np.arange(x.size)
                d = ColumnDetectors("m", "1", "x", 0, 0.0, 1.0, chunk=chunk, kswin=False)
                t0 = time.perf_counter()
                fired = []
                for a in range(0, x.size, 1_000):
                    fired += d.update(x[a : a + 1_000], t[a : a + 1_000], 0)
                cost += time.perf_counter() - t0
                after = [f.event_time_ms - pre for f in fired if f.event_time_ms >= pre]
                fa += sum(1 for f in fired if f.event_time_ms < pre)
                if after:
                    delays.append(min(after))
                else:
                    misses += 1
            row = {
                "us_per_event": cost / (3 * (pre + post)) * 1e6,
                "delay_events_median": float(np.median(delays)) if delays else None,
                "misses": misses,
                "false_alarms_per_million": fa * 1e6 / (3 * pre),
            }
            out[f"chunk{chunk}_shift{shift}"] = row
            dm = "-" if row["delay_events_median"] is None else f"{row['delay_events_median']:,.0f}"
            print(
                f"{chunk:>6} {shift:>6} {row['us_per_event']:>9.3f} {dm:>10} "
                f"{misses:>5}/3 {row['false_alarms_per_million']:>7.1f}"
            )
    return out


# ---- throughput ----------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def throughput(total: int, config: DriftConfig, label: str, checkpoints=()) -> dict[str, Any]:
    """20 numeric + 5 categorical features, 8 partitions, 1,000-event batches per
    partition; event time runs at 10k events/s so that windows open and close."""
    s = SyntheticStream(n_numeric=20, n_categorical=5, rate_per_s=10_000, seed=1)
    pool = [s.batch(0, 1_000) for _ in range(64)]
    engine = DriftEngine(config)
    engine.set_reference(s.reference())
    step_ms = 100  # 1,000 events at 10k/s
    closed = fired = 0
    marks: dict[str, float] = {}
    gc.collect()
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(total // 1_000):
        b = pool[i % len(pool)]
        cols = PredictionColumns(
            b.model, b.model_version, b.prediction_ids, b.event_time_ms + i * step_ms,
            b.latency_ms, b.status, b.numeric, b.categorical, b.score,
        )  # fmt: skip
        engine.observe(i % PARTITIONS, i // PARTITIONS, cols)
        if i % 50 == 0:
            closed += len(engine.poll_closed())
            fired += len(engine.poll_detector_firings())
        done = (i + 1) * 1_000
        if done in checkpoints:
            marks[f"rss_mb_after_{done // 1_000_000}M"] = rss_mb()
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    res = {
        "events": total, "events_per_s_wall": total / dt, "events_per_s_cpu": total / cpu,
        "windows_closed": closed, "detections": fired, **marks,
    }  # fmt: skip
    res["state_bytes"] = len(engine.state_bytes())
    rss = "".join(f"  {k} {v:.0f}" for k, v in marks.items())
    print(
        f"{label:42} {total / dt:>9,.0f} ev/s wall {total / cpu:>9,.0f} ev/s cpu  "
        f"windows closed {closed}{rss}"
    )
    return res


def throughput_all() -> dict[str, Any]:
    print("\nThroughput (engine alone, 20 numeric + 5 categorical, 8 partitions)")
    return {
        "everything_on": throughput(
            5_000_000, DriftConfig(), "everything on (KSWIN 1/1000 on the score)",
            checkpoints=(1_000_000, 5_000_000),
        ),
        "kswin_every_200": throughput(
            1_000_000, DriftConfig(kswin_sample_every=200), "KSWIN 1/200 on the score"
        ),
        "kswin_all_numeric": throughput(
            2_000_000, DriftConfig(kswin_columns=None), "KSWIN 1/1000 on all 21 numeric streams"
        ),
        "no_kswin": throughput(1_000_000, DriftConfig(kswin=False), "ADWIN + PH, no KSWIN"),
        "no_detectors": throughput(1_000_000, DriftConfig(detectors=False), "windows + tests only"),
    }


def main() -> dict[str, Any]:
    t0 = time.perf_counter()
    out = {
        "throughput": throughput_all(),
        "chunk_choice": chunk_choice(),
        "quality": quality(),
        # per-partition false alarms are rare at the defaults; a deliberately sensitive
        # setting shows what the quorum does to them
        "quality_sensitive": quality(
            DriftConfig(detector_chunk=8, ph_threshold=8.0, adwin_delta=0.02),
            ("no change (null)", "gauss mean +0.25σ", "gauss mean +0.5σ"),
            " (sensitive: chunk 8, PH threshold 8, ADWIN delta 0.02)",
        ),
    }
    out["seconds"] = time.perf_counter() - t0
    print(f"\nbench_drift: {out['seconds']:.0f} s")
    return out


if __name__ == "__main__":
    main()
