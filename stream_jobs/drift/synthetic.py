"""Synthetic prediction streams with known change points (tests, bench, demos).

>>> s = SyntheticStream(n_numeric=3, n_categorical=1, rate_per_s=1_000, seed=1)
>>> cols = s.batch(t0_ms=0, n=500)
>>> cols.n, sorted(cols.numeric), int(cols.event_time_ms[-1])
(500, ['f0', 'f1', 'f2'], 499)
>>> s.shift["f1"] = 1.0            # from now on f1 moves by one standard deviation
>>> round(float(s.batch(500, 5_000).numeric["f1"].mean()), 1)
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.columnar import CategoricalArray, PredictionColumns
from stream_jobs.reference.profile import build_profile

CATEGORIES = [f"v{i}" for i in range(8)]
CAT_P = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])


class SyntheticStream:
    """``f*`` ~ N(shift, scale), ``c*`` ~ CAT_P over 8 values, score ~ U(0,1) + shift."""

    def __init__(
        self,
        n_numeric: int = 20,
        n_categorical: int = 5,
        rate_per_s: float = 1_000.0,
        seed: int = 0,
        model: str = "m",
        version: str = "1",
    ) -> None:
        self.n_numeric, self.n_categorical = n_numeric, n_categorical
        self.rate = rate_per_s
        self.rng = np.random.default_rng(seed)
        self.model, self.version = model, version
        self.shift: dict[str, float] = {}
        self.scale: dict[str, float] = {}
        self.cat_p: dict[str, np.ndarray] = {}

    def numeric_names(self) -> list[str]:
        return [f"f{i}" for i in range(self.n_numeric)]

    def categorical_names(self) -> list[str]:
        return [f"c{i}" for i in range(self.n_categorical)]

    def _num(self, name: str, n: int) -> np.ndarray:
        return self.rng.normal(self.shift.get(name, 0.0), self.scale.get(name, 1.0), n)

    def _cat(self, name: str, n: int) -> CategoricalArray:
        p = self.cat_p.get(name, CAT_P)
        codes = self.rng.choice(len(CATEGORIES), size=n, p=p).astype(np.int32)
        return CategoricalArray(CATEGORIES, codes)

    def batch(self, t0_ms: int, n: int) -> PredictionColumns:
        """``n`` events from ``t0_ms`` at ``rate_per_s`` (event times strictly ordered)."""
        t = t0_ms + (np.arange(n) * (1000.0 / self.rate)).astype(np.int64)
        score = np.clip(self.rng.random(n) + self.shift.get("score", 0.0), 0, 1)
        return PredictionColumns(
            model=self.model,
            model_version=self.version,
            prediction_ids=[""] * n,
            event_time_ms=t,
            latency_ms=self.rng.gamma(2.0, 10.0, n),
            status=(self.rng.random(n) < 0.01).astype(np.int8),
            numeric={k: self._num(k, n) for k in self.numeric_names()},
            categorical={k: self._cat(k, n) for k in self.categorical_names()},
            score=score,
        )

    def reference(self, n: int = 50_000, **kw: Any) -> dict[str, Any]:
        """A reference profile of the undisturbed stream (ignores current shifts)."""
        rng = np.random.default_rng(12345)
        return build_profile(
            self.model,
            "",
            numeric={k: rng.normal(0.0, 1.0, n) for k in self.numeric_names()},
            categorical={
                k: CategoricalArray(
                    CATEGORIES, rng.choice(len(CATEGORIES), size=n, p=CAT_P).astype(np.int32)
                )
                for k in self.categorical_names()
            },
            prediction=rng.random(n),
            source="synthetic",
            **kw,
        )
