"""Key-value stores behind the label join: one protocol, a RocksDB one and a memory one.

Everything the join keeps (pending predictions, early labels, the expiry index, window
accumulators, per-partition applied offsets) lives in one byte-keyed store. A state change
is one :meth:`KeyValueStore.write` of puts and deletes, applied atomically: with RocksDB
that is one ``WriteBatch``, so a process killed with SIGKILL leaves either all of a batch's
effects (including its applied offset) or none of them.

>>> s = MemoryStore()
>>> s.write({b"a1": b"x", b"a2": b"y", b"b": b"z"}, [])
>>> s.get_many([b"a1", b"nope"])
[b'x', None]
>>> [k for k, _ in s.scan(b"a")]
[b'a1', b'a2']
>>> s.write({}, [b"a1"]); s.get(b"a1") is None
True
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from stream_jobs import memory_report
from stream_jobs.join.codec import seal_all, unseal
from stream_jobs.malloc_tuning import fix_mmap_threshold


@runtime_checkable
class KeyValueStore(Protocol):
    """Byte keys, byte values, atomic multi-key writes, ordered prefix scans."""

    def get(self, key: bytes) -> bytes | None: ...

    def get_many(self, keys: list[bytes]) -> list[bytes | None]: ...

    def write(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes]) -> None:
        """Apply all ``puts`` and ``deletes`` atomically (deletes first, then puts)."""
        ...

    def scan(self, prefix: bytes, upto: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Items whose key starts with ``prefix``, in key order, stopping before ``upto``."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """A dict; scans sort the matching keys (fine for unit tests, not for millions)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        get = self.data.get
        return [get(k) for k in keys]

    def write(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes]) -> None:
        for k in deletes:
            self.data.pop(k, None)
        self.data.update(puts)

    def scan(self, prefix: bytes, upto: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        keys = sorted(k for k in self.data if k.startswith(prefix))
        for k in keys:
            if upto is not None and k >= upto:
                return
            yield k, self.data[k]

    def close(self) -> None:
        pass


class RocksStore:
    """RocksDB through ``rocksdict`` (raw bytes mode, LZ4-compressed blocks, bloom filters on
    the tables and the memtable).

    Writes go through one ``WriteBatch`` per call; the WAL is on (``sync=False``: a killed
    *process* loses nothing the OS received; a power cut may lose the last writes, which
    replay from the broker then re-applies because their offsets went with them).

    **Memory stays bounded as the data grows** (the join keeps a TTL's worth of pending
    predictions, so the store grows by design; what it holds in memory must not):

    ===========================  ==========================================================
    part                         bound
    ===========================  ==========================================================
    block cache                  ``block_cache_mb`` (LRU)
    index and filter blocks      in that cache (partitioned: only the top-level index and
                                 the L0 files' blocks are pinned); RocksDB's default keeps
                                 every table's whole index and filter outside the cache,
                                 growing with the data (7.6 MB at 4M keys in the soak,
                                 ~1.9 bytes per key)
    memtables                    RocksDB's defaults (64 MB, two at most), not lowered: a
                                 smaller bound made writes stall and starved the
                                 backtest's ``/metrics`` scrapes (commit 4fb3d77)
    freed memtable arenas        returned to the OS (:mod:`stream_jobs.malloc_tuning`)
    ===========================  ==========================================================
    """

    def __init__(self, path: str | os.PathLike[str], *, block_cache_mb: int = 64) -> None:
        from rocksdict import (
            BlockBasedIndexType,
            BlockBasedOptions,
            Cache,
            DBCompressionType,
            Options,
            Rdict,
        )

        fix_mmap_threshold()  # before the first memtable arena block is allocated
        self.path = os.fspath(path)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.set_compression_type(DBCompressionType.lz4())
        # a bloom filter on the memtable too: every prediction batch looks up its ids (most
        # absent) before storing them; 400k keys in, 4.2 -> 1.0 µs per absent key
        opts.set_memtable_prefix_bloom_ratio(0.1)
        opts.set_memtable_whole_key_filtering(True)
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)
        table.set_block_cache(Cache(block_cache_mb * 1024 * 1024))
        table.set_cache_index_and_filter_blocks(True)
        table.set_index_type(BlockBasedIndexType.two_level_index_search())
        table.set_partition_filters(True)
        table.set_pin_top_level_index_and_filter(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        opts.set_block_based_table_factory(table)
        self._db = Rdict(self.path, opts)
        memory_report.register(os.path.basename(self.path), self)

    def memory_properties(self) -> dict[str, int]:
        """RocksDB's own memory figures (memtables, block cache, index/filter readers)."""
        return memory_report.rocks_properties(self._db.property_int_value)

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        return self._db.get(keys)

    def write(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes]) -> None:
        from rocksdict import WriteBatch

        wb = WriteBatch(raw_mode=True)
        delete, put = wb.delete, wb.put
        for k in deletes:
            delete(k)
        for k, v in puts.items():
            put(k, v)
        self._db.write(wb)

    def scan(self, prefix: bytes, upto: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            k = it.key()
            if not k.startswith(prefix) or (upto is not None and k >= upto):
                return
            yield k, it.value()
            it.next()

    def flush(self) -> None:
        self._db.flush()

    def disk_bytes(self) -> int:
        total = 0
        for root, _, files in os.walk(self.path):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        return total

    def close(self) -> None:
        self._db.close()


class VersionedStore:
    """A store whose every value is sealed with the state codec's version byte
    (:mod:`stream_jobs.join.codec`): written sealed, read back unsealed, a record of an
    unknown version raises :class:`~stream_jobs.join.codec.StateVersionError`.

    >>> s = VersionedStore(MemoryStore())
    >>> s.write({b"a": b"x"}, []); s.get(b"a"), s.inner.get(b"a")
    (b'x', b'\\x01x')
    """

    def __init__(self, inner: KeyValueStore) -> None:
        self.inner = inner

    def get(self, key: bytes) -> bytes | None:
        v = self.inner.get(key)
        return None if v is None else unseal(v, repr(key[:1]))

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        found = self.inner.get_many(keys)
        if found.count(None) == len(found):  # all absent (fresh prediction ids): no unseal
            return found
        return [None if v is None else unseal(v) for v in found]

    def write(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes]) -> None:
        self.inner.write(seal_all(puts), deletes)

    def scan(self, prefix: bytes, upto: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        for k, v in self.inner.scan(prefix, upto):
            yield k, unseal(v, repr(k[:1]))

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # flush, disk_bytes, data (tests) of the inner
        return getattr(self.inner, name)
