"""The join store's memory stays bounded as its data grows, and the memory report sees it."""

from __future__ import annotations

import json
import logging
import platform

import pytest

from stream_jobs import memory_report
from stream_jobs.join.store import RocksStore
from stream_jobs.malloc_tuning import fix_mmap_threshold


def _fill(store: RocksStore, tables: int, keys: int = 50_000) -> None:
    for t in range(tables):
        store.write({b"p%09d" % (t * keys + i): b"x" * 40 for i in range(keys)}, [])
        store.flush()


def test_index_and_filter_blocks_live_in_the_block_cache(tmp_path):
    """RocksDB's default holds every table's index and filter outside the cache (~1.5 bytes
    per key here: 310 kB at 200k keys); charged to the cache, what stays outside is the
    partitioned index's top level only, and does not grow with the keys."""
    store = RocksStore(tmp_path / "db", block_cache_mb=8)
    _fill(store, 1)
    one = store.memory_properties()
    _fill(store, 3)
    four = store.memory_properties()
    assert four["keys"] >= 200_000
    assert four["table_readers"] < 32_000, four  # 310_400 with RocksDB's defaults
    assert four["table_readers"] < 4 * one["table_readers"] + 16_000, (one, four)
    assert four["block_cache"] <= 8 * 2**20
    assert store.get(b"p%09d" % 123_456) == b"x" * 40  # lookups still find their keys
    assert store.get_many([b"p%09d" % 7, b"absent"]) == [b"x" * 40, None]
    store.close()


def test_memory_report_names_rocksdb_parts_of_each_open_store(tmp_path):
    store = RocksStore(tmp_path / "join-x")
    store.write({b"a": b"b"}, [])
    report = memory_report.report()
    assert report["rss_mib"] > 0 and report["py_blocks"] > 0
    rocks = report["rocks"]["join-x"]
    assert rocks["memtables"] > 0 and rocks["live_versions"] == 1
    assert {"block_cache", "table_readers", "sst_bytes"} <= set(rocks)
    store.close()
    del store
    assert "join-x" not in memory_report.report().get("rocks", {})


def test_memory_report_thread_logs_json_lines(caplog):
    with caplog.at_level(logging.WARNING, logger="modelwatch.memory_report"):
        thread = memory_report.start(0.05)
        try:
            thread.join(0.5)
        finally:
            thread.stop.set()  # type: ignore[attr-defined]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("memory")]
    assert lines, caplog.text
    assert json.loads(lines[0][len(memory_report.PREFIX):])["rss_mib"] > 0


def test_mmap_threshold_is_pinned_on_glibc():
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt(M_MMAP_THRESHOLD) is glibc's")
    assert fix_mmap_threshold() is True
    assert fix_mmap_threshold() is True  # once per process, then remembered
