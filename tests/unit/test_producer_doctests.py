"""The runnable examples in the producers' docstrings are tests too."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "producers.partitioner",
    "producers.columns",
    "producers.rows",
    "producers.replay",
    "producers.simulator.scenario",
    "producers.simulator.model",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
