"""A simulated churn classifier: features with known distributions, a logistic model, a
true concept that labels follow, latencies, errors and fallbacks — generated a batch of
rows at a time with numpy (no per-row Python apart from id slicing).

:func:`generate` is pure (no Kafka, no wall clock): the same scenario, count and seed give
the same batches.

>>> from producers.simulator.scenario import Scenario
>>> batches = list(generate(Scenario(), 3000, seed=7, batch_size=1000, labels=False))
>>> sum(p.n for p, _ in batches), len(batches[0][0].numeric), len(batches[0][0].categorical)
(3000, 20, 5)
>>> again = list(generate(Scenario(), 3000, seed=7, batch_size=1000, labels=False))
>>> again[1][0].prediction_ids[:2] == batches[1][0].prediction_ids[:2]
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from producers.simulator.scenario import Phase, Scenario
from schemas.columnar import CategoricalArray, LabelColumns, PredictionColumns

F8 = np.dtype("<f8")
I4 = np.dtype("<i4")
I1 = np.dtype("i1")
I8 = np.dtype("<i8")

Sampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class NumericFeature:
    name: str
    sample: Sampler
    lo: float = -np.inf
    hi: float = np.inf
    integer: bool = False

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x = np.clip(self.sample(rng, n).astype(F8, copy=False), self.lo, self.hi)
        return np.round(x) if self.integer else x


NUMERIC: tuple[NumericFeature, ...] = (
    NumericFeature("age", lambda r, n: r.normal(41.0, 12.0, n), 18, 95, integer=True),
    NumericFeature("income", lambda r, n: r.lognormal(10.8, 0.5, n)),
    NumericFeature("tenure_months", lambda r, n: r.integers(0, 121, n), integer=True),
    NumericFeature("account_balance", lambda r, n: r.lognormal(7.5, 1.2, n)),
    NumericFeature("credit_score", lambda r, n: r.normal(680.0, 70.0, n), 300, 850, integer=True),
    NumericFeature("utilization", lambda r, n: r.beta(2.0, 5.0, n)),
    NumericFeature("num_products", lambda r, n: r.integers(1, 7, n), integer=True),
    NumericFeature("transactions_30d", lambda r, n: r.poisson(14.0, n), integer=True),
    NumericFeature("avg_txn_amount", lambda r, n: r.lognormal(3.6, 0.7, n)),
    NumericFeature("days_since_login", lambda r, n: r.exponential(6.0, n)),
    NumericFeature("session_minutes", lambda r, n: r.lognormal(2.2, 0.6, n)),
    NumericFeature("pages_per_session", lambda r, n: r.poisson(5.0, n) + 1, integer=True),
    NumericFeature("support_tickets_90d", lambda r, n: r.poisson(0.6, n), integer=True),
    NumericFeature("discount_rate", lambda r, n: r.uniform(0.0, 0.3, n)),
    NumericFeature("late_payments_12m", lambda r, n: r.poisson(0.4, n), integer=True),
    NumericFeature("distance_km", lambda r, n: r.lognormal(2.0, 0.9, n)),
    NumericFeature("hour_of_day", lambda r, n: r.integers(0, 24, n), integer=True),
    NumericFeature("contract_months_left", lambda r, n: r.integers(0, 25, n), integer=True),
    NumericFeature("satisfaction", lambda r, n: r.normal(7.0, 1.5, n), 0, 10),
    NumericFeature("risk_index", lambda r, n: r.normal(0.0, 1.0, n)),
)
NUMERIC_NAMES = tuple(f.name for f in NUMERIC)

CATEGORICAL: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "plan": (("basic", "plus", "premium", "enterprise"), (0.5, 0.3, 0.15, 0.05)),
    "channel": (("web", "mobile_app", "partner", "call_center"), (0.45, 0.35, 0.12, 0.08)),
    "payment_method": (("card", "paypal", "bank_transfer", "invoice"), (0.55, 0.2, 0.15, 0.1)),
    "country": (
        ("US", "GB", "DE", "FR", "IN", "BR", "JP"),
        (0.35, 0.12, 0.12, 0.10, 0.13, 0.10, 0.08),
    ),
    "browser": (("chrome", "safari", "firefox", "edge", "other"), (0.6, 0.2, 0.08, 0.08, 0.04)),
}
REGIONS = ("na", "eu", "apac", "latam")
COUNTRY_REGION = np.array([0, 1, 1, 1, 2, 3, 2], dtype=I4)  # per CATEGORICAL["country"]
DEVICES = ("desktop", "mobile", "tablet")
CLASS_NAMES = ["no_churn", "churn"]
ERROR_TYPES = ["Timeout", "FeatureStoreError", "ValueError"]

# The deployed model: logistic on standardised features (z-scores of the baseline).
MODEL_INTERCEPT = -1.1
MODEL_COEF: dict[str, float] = {
    "credit_score": -1.0,
    "utilization": 0.9,
    "support_tickets_90d": 0.7,
    "days_since_login": 0.8,
    "tenure_months": -0.8,
    "late_payments_12m": 0.6,
    "satisfaction": -0.7,
    "contract_months_left": -0.5,
}
MODEL_CAT_COEF: dict[tuple[str, str], float] = {
    ("plan", "premium"): -0.4,
    ("plan", "enterprise"): -0.8,
    ("channel", "partner"): 0.5,
    ("payment_method", "invoice"): 0.3,
}
# Labels follow the same relationship, sharper (so a good model is ~85-90 % accurate);
# concept-drift phases replace coefficients of this true concept.
TRUE_SHARPNESS = 2.5

BASE_ERROR_RATE = 0.004
BASE_FALLBACK_RATE = 0.01
FALLBACK_SCORE = 0.2
LATENCY_MEDIAN_MS = 22.0
LATENCY_SIGMA = 0.35
DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@lru_cache(maxsize=1)
def baseline_moments() -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of every numeric feature (fixed-seed 200k sample)."""
    rng = np.random.default_rng(12345)
    out = {}
    for f in NUMERIC:
        x = f.draw(rng, 200_000)
        out[f.name] = (float(x.mean()), float(x.std()) or 1.0)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _strength(phase: Phase, offsets_s: np.ndarray) -> np.ndarray:
    """Per-row strength in [0, 1] of ``phase`` (0 outside it; linear during its ramp)."""
    inside = (offsets_s >= phase.start_s) & (offsets_s < phase.end_s)
    if phase.ramp_s > 0:
        ramp = np.clip((offsets_s - phase.start_s) / phase.ramp_s, 0.0, 1.0)
        return np.where(inside, ramp, 0.0)
    return inside.astype(F8)


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    h = rng.bytes(16 * n).hex()
    return [h[i : i + 32] for i in range(0, 32 * n, 32)]


class ChurnModel:
    """Draws rows, applies a scenario's phases, scores them and draws their true labels."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        self.rng = np.random.default_rng(seed)
        self.moments = baseline_moments()
        self.cat_probs = {k: np.array(p, dtype=F8) for k, (_, p) in CATEGORICAL.items()}

    # ---- one batch -----------------------------------------------------------------
    def rows(
        self, times_ms: np.ndarray, offsets_s: np.ndarray, model: str, version: str
    ) -> tuple[PredictionColumns, np.ndarray]:
        """Prediction columns for rows at ``times_ms`` and their true labels (0/1)."""
        rng, n = self.rng, len(times_ms)
        numeric = {f.name: f.draw(rng, n) for f in NUMERIC}
        cat_dicts = {k: list(v) for k, (v, _) in CATEGORICAL.items()}
        cat_codes = {
            k: rng.choice(len(p), size=n, p=p).astype(I4) for k, p in self.cat_probs.items()
        }
        region = COUNTRY_REGION[cat_codes["country"]]
        device = rng.choice(3, size=n, p=[0.7, 0.2, 0.1]).astype(I4)
        device[cat_codes["channel"] == 1] = 1  # mobile_app → mobile
        seg_codes = {"region": region, "device": device}
        seg_dicts = {"region": list(REGIONS), "device": list(DEVICES)}

        def where_mask(phase: Phase) -> np.ndarray:
            mask = np.ones(n, dtype=bool)
            for key, value in phase.where.items():
                if key in cat_codes:
                    codes, names = cat_codes[key], cat_dicts[key]
                elif key in seg_codes:
                    codes, names = seg_codes[key], seg_dicts[key]
                else:
                    raise ValueError(f"phase {phase.name}: unknown 'where' key {key!r}")
                mask &= codes == (names.index(value) if value in names else -2)
            return mask

        def strength(phase: Phase) -> np.ndarray:
            return _strength(phase, offsets_s) * where_mask(phase)

        # feature drift: values first (labels follow true values), missingness after
        missing: list[tuple[str, np.ndarray]] = []
        for phase in self.scenario.active("feature_drift"):
            st = strength(phase)
            if not st.any():
                continue
            name, p = phase.params["feature"], phase.params
            if name in numeric:
                x = numeric[name]
                mean = self.moments[name][0]
                scale = float(p.get("scale", 1.0))
                x = mean + (x - mean) * (1.0 + (scale - 1.0) * st) + float(p.get("shift", 0.0)) * st
                numeric[name] = x
            elif name in cat_codes:
                codes = cat_codes[name]
                if "weights" in p:
                    w = np.array([float(p["weights"].get(c, 0.0)) for c in cat_dicts[name]])
                    redraw = rng.random(n) < st
                    codes[redraw] = rng.choice(len(w), size=int(redraw.sum()), p=w / w.sum())
                if "new_category" in p:
                    new = str(p["new_category"])
                    if new not in cat_dicts[name]:
                        cat_dicts[name].append(new)
                    hit = rng.random(n) < st * float(p.get("new_category_rate", 0.3))
                    codes[hit] = cat_dicts[name].index(new)
            else:
                raise ValueError(f"feature_drift on unknown feature {name!r}")
            if "missing_rate" in p:
                missing.append((name, rng.random(n) < st * float(p["missing_rate"])))

        z_true = {k: (numeric[k] - self.moments[k][0]) / self.moments[k][1] for k in MODEL_COEF}
        cat_term = np.zeros(n)
        for (feat, value), coef in MODEL_CAT_COEF.items():
            cat_term += coef * (cat_codes[feat] == cat_dicts[feat].index(value))

        for name, hole in missing:
            if name in numeric:
                numeric[name] = np.where(hole, np.nan, numeric[name])
            else:
                cat_codes[name] = np.where(hole, -1, cat_codes[name]).astype(I4)

        # the model sees the (possibly missing) inputs and imputes the baseline mean
        logit = np.full(n, MODEL_INTERCEPT) + cat_term
        for k, coef in MODEL_COEF.items():
            z = (numeric[k] - self.moments[k][0]) / self.moments[k][1]
            logit += coef * np.nan_to_num(z, nan=0.0)
        for phase in self.scenario.active("prediction_drift"):
            logit += strength(phase) * float(phase.params.get("logit_shift", 1.0))
        score = _sigmoid(logit)

        # the true concept (labels) uses true values; concept drift blends in new coefs
        base_true = np.full(n, MODEL_INTERCEPT) + cat_term
        for k, coef in MODEL_COEF.items():
            base_true += coef * z_true[k]
        true_logit = base_true
        for phase in self.scenario.active("concept_drift"):
            st = strength(phase)
            if not st.any():
                continue
            drifted = base_true + float(phase.params.get("intercept_shift", 0.0))
            for k, coef in (phase.params.get("coefficients") or {}).items():
                if k not in numeric:
                    raise ValueError(f"concept_drift coefficient for unknown feature {k!r}")
                zk = z_true.get(k)
                if zk is None:
                    zk = (numeric[k] - self.moments[k][0]) / self.moments[k][1]
                drifted = drifted + (float(coef) - MODEL_COEF.get(k, 0.0)) * np.nan_to_num(zk)
            true_logit = true_logit + st * (drifted - true_logit)
        truth = (rng.random(n) < _sigmoid(TRUE_SHARPNESS * true_logit)).astype(np.int8)

        # serving: latency, errors, fallbacks
        latency = rng.lognormal(np.log(LATENCY_MEDIAN_MS), LATENCY_SIGMA, n)
        for phase in self.scenario.active("latency_spike"):
            st = strength(phase)
            latency = latency * (1.0 + (float(phase.params.get("factor", 5.0)) - 1.0) * st)
            latency = latency + float(phase.params.get("add_ms", 0.0)) * st
        err_rate = np.full(n, BASE_ERROR_RATE)
        err_type = np.full(n, -1, dtype=I4)
        for phase in self.scenario.active("error_burst"):
            st = strength(phase)
            err_rate = np.maximum(err_rate, st * float(phase.params.get("error_rate", 0.3)))
        fb_rate = np.full(n, BASE_FALLBACK_RATE)
        for phase in self.scenario.active("fallback_storm"):
            st = strength(phase)
            fb_rate = np.maximum(fb_rate, st * float(phase.params.get("fallback_rate", 0.4)))
        u = rng.random(n)
        is_err = u < err_rate
        is_fb = ~is_err & (u < err_rate + fb_rate)
        status = np.zeros(n, dtype=I1)
        status[is_err] = 1
        status[is_fb] = 2
        error_dict = list(ERROR_TYPES)
        err_type[is_err] = rng.choice(len(ERROR_TYPES), size=int(is_err.sum()), p=[0.6, 0.25, 0.15])
        for phase in self.scenario.active("error_burst"):
            forced = phase.params.get("error_type")
            if forced:
                if forced not in error_dict:
                    error_dict.append(str(forced))
                in_phase = is_err & (strength(phase) > 0)
                err_type[in_phase] = error_dict.index(str(forced))
        timeout = is_err & (err_type == 0)
        latency[timeout] = 1000.0 + rng.exponential(200.0, int(timeout.sum()))
        latency[is_fb] = rng.lognormal(np.log(4.0), 0.3, int(is_fb.sum()))
        score[is_fb] = FALLBACK_SCORE
        score[is_err] = np.nan
        pred = (score >= 0.5).astype(I4)
        pred[is_err] = -1
        probs = np.column_stack([1.0 - score, score])

        req = (600 + rng.poisson(40, n)).astype(I4)
        resp = np.where(is_err, 120, 180).astype(I4)
        cols = PredictionColumns(
            model=model,
            model_version=version,
            prediction_ids=_hex_ids(rng, n),
            event_time_ms=times_ms.astype(I8),
            latency_ms=latency,
            status=status,
            numeric=numeric,
            categorical={k: CategoricalArray(cat_dicts[k], cat_codes[k]) for k in cat_codes},
            score=score,
            predicted_class=CategoricalArray(list(CLASS_NAMES), pred),
            class_names=list(CLASS_NAMES),
            class_probabilities=probs,
            error_type=CategoricalArray(error_dict, err_type) if is_err.any() else None,
            request_bytes=req,
            response_bytes=resp,
            segments={
                k: CategoricalArray(seg_dicts[k], v.astype(I4)) for k, v in seg_codes.items()
            },
        )
        return cols, truth


def _outage(scenario: Scenario, offsets_s: np.ndarray) -> np.ndarray:
    down = np.zeros(len(offsets_s), dtype=bool)
    for phase in scenario.active("outage"):
        down |= (offsets_s >= phase.start_s) & (offsets_s < phase.end_s)
    return down


def generate(
    scenario: Scenario,
    n_events: int | None,
    seed: int = 0,
    *,
    batch_size: int = 10_000,
    start_ms: int = DEFAULT_START_MS,
    model: str = "churn-classifier",
    version: str = "v1",
    labels: bool = True,
    rate: float | None = None,
    speedup: float | None = None,
    duration_s: float | None = None,
    drain_labels: bool = True,
) -> Iterator[tuple[PredictionColumns | None, LabelColumns | None]]:
    """Yield ``(predictions, labels)`` batches of the scenario, without Kafka or a clock.

    Event time starts at ``start_ms`` and advances ``speedup / rate`` seconds per event on
    average (Poisson arrivals): ``rate`` is events per wall-clock second and ``speedup`` how
    much faster event time runs, so the runner that paces wall time can use the event times
    as they are. Outage phases yield no predictions (``predictions`` is None for a batch that
    fell entirely in an outage). Labels are yielded once their event time (prediction time +
    delay) has passed the batch's last event time; with ``drain_labels`` the remainder comes
    in a final ``(None, labels)``. Stops after ``n_events`` predictions or ``duration_s`` of
    event time, whichever first (None = no limit).
    """
    rate = float(rate if rate is not None else scenario.rate)
    speedup = float(speedup if speedup is not None else scenario.speedup)
    if rate <= 0 or speedup <= 0:
        raise ValueError("rate and speedup must be positive")
    mean_gap_ms = 1000.0 * speedup / rate
    sim = ChurnModel(scenario, seed)
    rng = sim.rng
    produced, t_last = 0, float(start_ms)
    pend_ids: list[str] = []
    pend_t = np.empty(0, dtype=I8)
    pend_y = np.empty(0, dtype=np.int8)
    delay_mu = np.log(max(scenario.label_delay_median_s, 1e-3) * 1000.0)
    end_ms = np.inf if duration_s is None else start_ms + duration_s * 1000.0
    while (n_events is None or produced < n_events) and t_last < end_ms:
        want = batch_size if n_events is None else min(batch_size, n_events - produced)
        times = t_last + np.cumsum(rng.exponential(mean_gap_ms, want))
        t_last = float(times[-1])
        times = times[times < end_ms]
        offsets = (times - start_ms) / 1000.0
        times = times[~_outage(scenario, offsets)]
        offsets = (times - start_ms) / 1000.0
        preds: PredictionColumns | None = None
        if len(times):
            preds, truth = sim.rows(np.floor(times).astype(I8), offsets, model, version)
            produced += preds.n
            if labels:
                got = rng.random(preds.n) < scenario.label_fraction
                delay = rng.lognormal(delay_mu, scenario.label_delay_sigma, preds.n)
                idx = np.flatnonzero(got)
                pend_ids.extend(preds.prediction_ids[i] for i in idx.tolist())
                pend_t = np.concatenate([pend_t, (times[idx] + delay[idx]).astype(I8)])
                pend_y = np.concatenate([pend_y, truth[idx]])
        due_labels = None
        if labels and len(pend_t):
            due = pend_t <= t_last
            if due.any():
                due_labels, pend_ids, pend_t, pend_y = _take_labels(
                    model, pend_ids, pend_t, pend_y, due
                )
        if preds is not None or due_labels is not None:
            yield preds, due_labels
    if labels and drain_labels and len(pend_t):
        rest, *_ = _take_labels(model, pend_ids, pend_t, pend_y, np.ones(len(pend_t), bool))
        yield None, rest


def _take_labels(
    model: str, ids: list[str], t: np.ndarray, y: np.ndarray, due: np.ndarray
) -> tuple[LabelColumns, list[str], np.ndarray, np.ndarray]:
    idx = np.flatnonzero(due)
    order = idx[np.argsort(t[idx], kind="stable")]
    keep = np.flatnonzero(~due)
    cols = LabelColumns(
        model=model,
        prediction_ids=[ids[i] for i in order.tolist()],
        event_time_ms=t[order],
        label_value=y[order].astype(F8),
        label_class=CategoricalArray(list(CLASS_NAMES), y[order].astype(I4)),
    )
    return cols, [ids[i] for i in keep.tolist()], t[keep], y[keep]
