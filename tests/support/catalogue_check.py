"""Compare a ``/metrics`` exposition with the metric catalogue, in both directions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from schemas.metrics_catalogue import CATALOGUE, PROCESS

HISTOGRAM_ONLY = {"le"}


def disagreements(text: str, components: set[str]) -> list[str]:
    """Every way the exposition ``text`` of a process running ``components`` and the catalogue
    disagree: a ``modelwatch_*`` family exported but not listed, a listed family not
    exported (registered families show in an exposition even before their first sample),
    a different type or help, a sample whose label names differ from the listed ones."""
    families = {f.name: f for f in text_string_to_metric_families(text)}
    listed = {m.base: m for m in CATALOGUE if components & set(m.exported_by)}
    out = []
    for name in sorted(families):
        if name.endswith("_created") and name.removesuffix("_created") in listed:
            continue  # prometheus_client's creation time of a counter or histogram
        if name.startswith("modelwatch_") and name not in listed:
            out.append(f"{name}: exported, not in schemas/metrics_catalogue.py")
    for base, m in listed.items():
        fam = families.get(base)
        if fam is None:
            out.append(f"{m.name}: in the catalogue for {sorted(components)}, not exported")
            continue
        if fam.type != m.type:
            out.append(f"{m.name}: exported as a {fam.type}, listed as a {m.type}")
        if PROCESS not in m.exported_by and fam.documentation != m.help:
            out.append(f"{m.name}: help {fam.documentation!r} differs from the catalogue")
        for sample in fam.samples:
            labels = set(sample.labels) - (HISTOGRAM_ONLY if m.type == "histogram" else set())
            if labels != set(m.labels):
                out.append(
                    f"{sample.name}: labels {sorted(labels)}, catalogue {sorted(m.labels)}"
                )
                break
    return out
