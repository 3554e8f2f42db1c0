"""``make bench``: run every benchmark module's ``main()`` and write a JSON summary.

Benchmarks report figures; they do not assert timings (this machine is shared and noisy).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

import tests.bench as bench_pkg


def main(argv: list[str]) -> int:
    # benchmarks run against the embedded broker: its client profile (fast group joins)
    os.environ.setdefault("MODELWATCH_PROFILE", "embedded")
    wanted = set(argv)
    results: dict[str, object] = {}
    failed = []
    for info in sorted(pkgutil.iter_modules(bench_pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("bench_") or (wanted and info.name not in wanted):
            continue
        print(f"\n##### {info.name}", flush=True)
        t0 = time.perf_counter()
        try:
            results[info.name] = importlib.import_module(f"tests.bench.{info.name}").main()
        except Exception as exc:  # report and go on with the other benchmarks
            failed.append(info.name)
            results[info.name] = {"error": repr(exc)}
            print(f"!! {info.name} failed: {exc!r}", flush=True)
        print(f"({info.name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    out = Path("bench-results") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
