"""Native heap: freed memory goes back to the OS (glibc's ``M_MMAP_THRESHOLD``, ``malloc_trim``).

glibc serves a request of at least ``M_MMAP_THRESHOLD`` bytes (128 KiB to start with) with
its own ``mmap``, returned to the OS on ``free``. But the threshold is *dynamic*: freeing
such a block raises it to that block's size, up to 32 MiB. RocksDB's memtables are built
from arena blocks of ``write_buffer_size / 8`` (8 MiB by default) that are freed at every
flush; after the first flush, later blocks (and aiokafka's fetch buffers) are carved out
of the heap instead, and once freed they stay resident as fragmented free space. In the
soak (``tests/bench/bench_soak.py``) that free-but-resident space grew from 3 to 243 MiB
over 4M events, the largest part of the worker's RSS growth.

Setting the threshold explicitly turns the dynamic adjustment off (and the trim threshold
with it, which stays at 128 KiB): blocks of ``threshold`` bytes and more are mmapped and
unmapped again, so memtable churn leaves nothing behind. Smaller allocations (Python
objects, RocksDB's cached blocks) are unaffected; the free pages they leave inside the heap
go back to the OS on ``malloc_trim``, which a daemon thread runs every
:data:`TRIM_EVERY_S` seconds.

>>> fix_mmap_threshold() in (True, False)  # False where the C library is not glibc
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger("modelwatch.malloc_tuning")

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
MMAP_THRESHOLD = 1 << 20  # 1 MiB: memtable arena blocks and fetch buffers, not Python objects
TRIM_EVERY_S = 10.0
_done: list[bool] = []
trim_stats = {"runs": 0, "longest_s": 0.0}  # read by the memory report


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold to ``threshold`` (once per process); False if this C
    library has no ``mallopt`` (musl, macOS) or refused it."""
    if _done:
        return _done[0]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(threshold)))
    except (OSError, AttributeError):
        ok = False
    if not ok:
        log.info("mallopt(M_MMAP_THRESHOLD) unavailable: freed large blocks may stay resident")
    _done.append(ok)
    if ok:
        threading.Thread(target=_trim_forever, args=(libc,), daemon=True,
                         name="malloc-trim").start()  # fmt: skip
    return ok


def _trim_forever(libc: ctypes.CDLL) -> None:
    """Free pages inside the heap (below its top) go back to the OS only on ``malloc_trim``:
    run it every :data:`TRIM_EVERY_S` (without the GIL; it holds each arena's lock for the
    time it walks it — ``trim_stats`` keeps the longest)."""
    while True:
        time.sleep(TRIM_EVERY_S)
        t0 = time.perf_counter()
        try:
            libc.malloc_trim(ctypes.c_size_t(0))
        except Exception:  # never stop the process for a diagnostic-grade tuning
            return
        took = time.perf_counter() - t0
        trim_stats["runs"] += 1
        trim_stats["longest_s"] = max(trim_stats["longest_s"], round(took, 4))
