"""The demo's worker accepts the simulator's accelerated event time for the whole run.

At --speedup 30 the simulator's event time leads the wall clock by 29 s per second; with
the production bound (900 s ahead) every record after ~31 s was dead-lettered, and the
demo never showed its concept drift or performance drop."""

from __future__ import annotations

import numpy as np
import pytest

from modelwatch.demo import SIMULATOR_DEFAULT_S, worker_env
from modelwatch.settings import load_settings
from stream_jobs.decode import _event_time_rules
from stream_jobs.input_rules import InputRules


def _rules_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> InputRules:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return InputRules(**load_settings().input_rules)


def _rejected(rules: InputRules, event_ms: np.ndarray, now_ms: int) -> np.ndarray:
    masks = _event_time_rules(event_ms, now_ms, rules).values()
    return np.logical_or.reduce(list(masks))


@pytest.mark.parametrize("speedup, simulator_s", [(30.0, 150.0), (30.0, SIMULATOR_DEFAULT_S)])
def test_demo_worker_accepts_the_whole_simulated_run(
    monkeypatch: pytest.MonkeyPatch, speedup: float, simulator_s: float
) -> None:
    start_ms = 1_800_000_000_000
    wall_s = np.linspace(0.0, simulator_s, 1001)  # seconds since the simulator started
    now_ms = (start_ms + wall_s * 1000).astype(np.int64)
    event_ms = (start_ms + speedup * wall_s * 1000).astype(np.int64)
    rules = _rules_from_env(monkeypatch, worker_env({}, 9108, speedup, simulator_s))
    demo = [_rejected(rules, event_ms[i : i + 1], int(now_ms[i]))[0] for i in range(len(wall_s))]
    assert not any(demo)


def test_production_bound_rejects_the_demo_after_half_a_minute() -> None:
    """What the demo did before: its worker used the production bound."""
    start_ms = 1_800_000_000_000
    wall_s = np.arange(0.0, 60.0, 0.1)
    rejected = [
        _rejected(InputRules(), np.array([start_ms + int(30_000 * w)]), start_ms + int(1000 * w))[0]
        for w in wall_s
    ]
    first = wall_s[rejected.index(True)]
    assert 30.0 < first < 32.0 and all(rejected[rejected.index(True) :])


def test_absurd_event_times_are_still_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = _rules_from_env(monkeypatch, worker_env({}, 9108, 30.0, 150.0))
    now_ms = 1_800_000_000_000
    far = np.array([now_ms + 10 * 86_400_000, 0], dtype=np.int64)  # 10 days ahead; unset
    assert _rejected(rules, far, now_ms).tolist() == [True, True]
