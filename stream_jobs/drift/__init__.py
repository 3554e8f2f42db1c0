"""Drift: window tests against reference profiles, the engine facade and its metrics."""

from stream_jobs.drift.config import DriftConfig, FeatureTest
from stream_jobs.drift.engine import DriftEngine
from stream_jobs.drift.evaluate import ClosedWindow, evaluate_window

__all__ = ["ClosedWindow", "DriftConfig", "DriftEngine", "FeatureTest", "evaluate_window"]
