"""Diagnostic: where the worker's memory is — Python heap, C heap (glibc), RocksDB.

Enabled by ``MODELWATCH_MEMORY_REPORT_S=N`` (unset: off, no cost): every N seconds a thread
logs one line ``memory report {json}`` with

* ``rss_mib`` / ``anon_mib``: resident set and its anonymous part (``/proc/self/status``);
* ``py_blocks``: live blocks of CPython's allocator (``sys.getallocatedblocks``);
* ``malloc_*_mib``: glibc's ``mallinfo2`` summed over arenas — ``in_use`` (live C and
  large Python allocations), ``free`` (freed but kept by malloc), ``mmap`` (large blocks);
* ``rocks``: per registered RocksDB store, its memtables (active and pinned), block cache,
  index/filter blocks held outside the cache, live versions and iterators' pins.

Unlike ``MODELWATCH_TRACEMALLOC_S`` it costs nothing between reports, so a soak runs at
full speed; ``python -m tests.bench.bench_soak`` reads these lines back per million events.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable

log = logging.getLogger("modelwatch.memory_report")

PREFIX = "memory report "
# RocksDB properties reported per store (bytes unless named num-/estimate-num-)
ROCKS_PROPERTIES = {
    "memtables": "rocksdb.cur-size-all-mem-tables",  # active + unflushed immutable
    "memtables_pinned": "rocksdb.size-all-mem-tables",  # + those pinned by iterators
    "immutable_memtables": "rocksdb.num-immutable-mem-table",
    "block_cache": "rocksdb.block-cache-usage",
    "block_cache_pinned": "rocksdb.block-cache-pinned-usage",
    "table_readers": "rocksdb.estimate-table-readers-mem",  # index/filter outside the cache
    "live_versions": "rocksdb.num-live-versions",
    "sst_bytes": "rocksdb.total-sst-files-size",
    "keys": "rocksdb.estimate-num-keys",
}

_sources: list[tuple[str, weakref.ReferenceType]] = []
_lock = threading.Lock()


def register(name: str, owner: object) -> None:
    """Report ``owner.memory_properties()`` (a dict of numbers) under ``name`` while it lives."""
    with _lock:
        _sources.append((name, weakref.ref(owner)))


def rocks_properties(prop: Callable[[str], int | None]) -> dict[str, int]:
    """The reported RocksDB properties, read with ``prop`` (e.g. ``Rdict.property_int_value``)."""
    out = {}
    for name, key in ROCKS_PROPERTIES.items():
        try:
            v = prop(key)
        except Exception:  # a closed store or an unknown property: leave it out
            continue
        if v is not None:
            out[name] = int(v)
    return out


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]  # fmt: skip


def _mallinfo() -> dict[str, float]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):  # not glibc ≥ 2.33
        return {}
    fn.restype = _Mallinfo2
    m = fn()
    mib = 2**20
    return {"malloc_in_use_mib": round((m.uordblks + m.hblkhd) / mib, 1),
            "malloc_free_mib": round(m.fordblks / mib, 1),
            "malloc_mmap_mib": round(m.hblkhd / mib, 1)}  # fmt: skip


def _status() -> dict[str, float]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    out["rss_mib" if key == "VmRSS" else "anon_mib"] = round(
                        int(rest.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def report() -> dict:
    """One snapshot of the figures above."""
    out: dict = {**_status(), "py_blocks": sys.getallocatedblocks(), **_mallinfo()}
    with _lock:
        live = [(name, ref()) for name, ref in _sources]
        _sources[:] = [(n, r) for n, r in _sources if r() is not None]
    stores = {}
    for name, owner in live:
        if owner is not None:
            try:
                stores[name] = owner.memory_properties()  # type: ignore[attr-defined]
            except Exception as exc:  # a closed store
                stores[name] = {"error": str(exc)[:100]}
    if stores:
        out["rocks"] = stores
    from stream_jobs.malloc_tuning import trim_stats

    if trim_stats["runs"]:
        out["malloc_trim"] = dict(trim_stats)
    return out


def install_from_env() -> threading.Thread | None:
    raw = os.environ.get("MODELWATCH_MEMORY_REPORT_S")
    return start(float(raw)) if raw else None


def start(every_s: float) -> threading.Thread:
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                log.warning("%s%s", PREFIX, json.dumps(report(), separators=(",", ":")))
            except Exception:  # a diagnostic never stops the worker
                log.exception("memory report failed")

    thread = threading.Thread(target=run, daemon=True, name="memory-report")
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread
