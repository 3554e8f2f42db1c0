"""Load the scripts under ``infra/`` (not a package) as modules for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_module(name: str, path: Path) -> ModuleType:
    """Import ``path`` as module ``name`` (registered, so dataclasses and pickling work)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def metrics_reference() -> ModuleType:
    return load_module("infra_metrics_reference", ROOT / "infra" / "metrics_reference.py")


def dashboards() -> ModuleType:
    return load_module("infra_grafana_generate", ROOT / "infra" / "grafana" / "generate.py")


def rules() -> ModuleType:
    return load_module("infra_prometheus_generate", ROOT / "infra" / "prometheus" / "generate.py")
