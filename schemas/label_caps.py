"""Caps on producer-controlled Prometheus label values, each with an ``other`` bucket.

A model server decides what goes into ``model``, ``model_version``, ``error_type``, class
names, categories and segment tags. Each becomes a label value, and every distinct value
is one more series in every metric that carries it: 5,000 error strings and 200 versions
gave 14,236 series. Here the first ``limit`` distinct values **per parent** are admitted
(stable over time: a value once admitted keeps its series) and later ones become
``other``; every replacement is counted in
``modelwatch_label_values_capped_total{label}``. Under a parent that is itself ``other``
every value is ``other``.

==============  ==========================  =================
label           parent (cap applies per)    default limit
==============  ==========================  =================
``model``       the process                 100
``version``     model                       5
``error_type``  model, version              10
``class``       model                       50
``category``    model, feature              50
``segment``     model                       20
==============  ==========================  =================

So one process exports at most ``(models + 1) × (versions + 1) × (error_types + 1)`` error
series (101 × 6 × 11 = 6,666 with the defaults, against unbounded) whatever producers
send; ``tests/unit/test_label_caps.py`` measures a hostile mix (5,000 error strings over
200 versions of 10 models: 8,761 series uncapped, 467 with small caps).
:meth:`LabelCaps.forget` frees a model's slots (the model registry's TTL) and tells every
collector that subscribed (:meth:`LabelCaps.on_forget`) to remove the model's series.

>>> caps = LabelCaps(LabelCapsConfig(versions=2))
>>> [caps.version("m", v) for v in ("1", "2", "3", "1")]
['1', '2', 'other', '1']
>>> caps.forget("m"); caps.version("m", "3")
'3'
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field

OTHER = "other"


class LabelCapsConfig(BaseModel):
    """Distinct values admitted per parent (see the module table); strict: unknown keys fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: int = Field(100, ge=1)
    versions: int = Field(5, ge=1, description="per model")
    error_types: int = Field(10, ge=1, description="per model and version")
    classes: int = Field(50, ge=1, description="per model")
    categories: int = Field(50, ge=1, description="per model and feature")
    segments: int = Field(20, ge=1, description="per model")


_LIMIT_OF = {
    "model": "models",
    "version": "versions",
    "error_type": "error_types",
    "class": "classes",
    "category": "categories",
    "segment": "segments",
}


class LabelCaps:
    """Admits label values per (label, parent); thread-safe (scrapes run on another thread)."""

    def __init__(
        self, config: LabelCapsConfig | None = None, registry: CollectorRegistry | None = None
    ) -> None:
        self.config = config or LabelCapsConfig()
        self._seen: dict[tuple[str, tuple[str, ...]], set[str]] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self._capped = self._forgotten = None
        if registry is not None:
            from schemas.metrics_catalogue import counter

            self._capped = counter("modelwatch_label_values_capped_total", registry)
            self._forgotten = counter("modelwatch_models_forgotten_total", registry)

    def admit(self, label: str, parent: tuple[str, ...], value: str) -> str:
        """``value`` if it is (or can become) one of the first N of its parent, else ``other``."""
        limit = getattr(self.config, _LIMIT_OF[label])
        key = (label, parent)
        if OTHER in parent:  # under an overflowed parent everything is `other`
            return OTHER
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                seen = self._seen[key] = set()
            if value in seen:
                return value
            if len(seen) < limit:
                seen.add(value)
                return value
        if self._capped is not None:
            self._capped.labels(label).inc()
        return OTHER

    def model(self, model: str) -> str:
        return self.admit("model", (), model)

    def version(self, model: str, version: str) -> str:
        """``version`` under the *capped* model name."""
        return self.admit("version", (model,), version)

    def model_version(self, model: str, version: str) -> tuple[str, str]:
        m = self.model(model)
        return m, self.version(m, version)

    def error_type(self, model: str, version: str, error_type: str) -> str:
        return self.admit("error_type", (model, version), error_type)

    def on_forget(self, callback: Callable[[str], None]) -> None:
        """``callback(model)`` runs when a model is forgotten (remove its series there)."""
        self._listeners.append(callback)

    def forget(self, model: str) -> None:
        """Free every slot of ``model`` and remove its series from every subscribed collector."""
        with self._lock:
            self._seen.get(("model", ()), set()).discard(model)
            for key in [k for k in self._seen if k[1][:1] == (model,)]:
                del self._seen[key]
        for callback in list(self._listeners):
            callback(model)
        if self._forgotten is not None:
            self._forgotten.inc()


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, LabelCaps] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def caps_for(registry: CollectorRegistry, config: LabelCapsConfig | None = None) -> LabelCaps:
    """The one :class:`LabelCaps` of a registry: the composition root creates it first with
    the configured limits; every collector of that registry then shares it (one budget, one
    ``forget``). A ``config`` that differs from the existing one is an error."""
    with _registry_lock:
        caps = _by_registry.get(registry)
        if caps is None:
            caps = _by_registry[registry] = LabelCaps(config, registry)
        elif config is not None and config != caps.config:
            raise ValueError("label caps of this registry are already configured differently")
        return caps
