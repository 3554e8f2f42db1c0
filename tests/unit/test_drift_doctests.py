"""The runnable examples in the drift and label modules' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import stream_jobs.concept
import stream_jobs.detectors
import stream_jobs.drift
import stream_jobs.join
import stream_jobs.merge
import stream_jobs.performance
import stream_jobs.reference
import stream_jobs.state
import stream_jobs.windows

PACKAGES = (stream_jobs.windows, stream_jobs.reference, stream_jobs.drift, stream_jobs.detectors)
MODULES = sorted(
    f"{pkg.__name__}.{m.name}" for pkg in PACKAGES for m in pkgutil.iter_modules(pkg.__path__)
)
# packages of adapters as well as computations: examples where there are some
LABEL_PACKAGES = (stream_jobs.join, stream_jobs.performance, stream_jobs.concept,
                  stream_jobs.merge, stream_jobs.state)
LABEL_MODULES = sorted(
    f"{pkg.__name__}.{m.name}"
    for pkg in LABEL_PACKAGES
    for m in pkgutil.iter_modules(pkg.__path__)
)


@pytest.mark.parametrize("name", MODULES + LABEL_MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_concept_module_has_an_example() -> None:
    finder = doctest.DocTestFinder()
    without = [
        n for n in MODULES
        if not any(t.examples for t in finder.find(importlib.import_module(n)))
    ]  # fmt: skip
    allowed = {
        "stream_jobs.detectors.firing", "stream_jobs.drift.result",
        "stream_jobs.windows._codec", "stream_jobs.windows.spec",
    }  # fmt: skip
    assert set(without) <= allowed, set(without) - allowed
