"""The notifier's persistent record of delivered idempotency keys (a local append-only file).

Why a local file and not a topic: it is written before the offset commit and fsync'd, so a
notifier killed at any point and restarted on the same state directory never re-sends what
a sink acknowledged (at most the one notification in flight at the kill can repeat). The
trade-off: a notifier that takes over partitions on *another* machine does not see this
file, and may re-send the current epoch's notification once. Run notifiers with a
persistent volume for ``--state-dir``.

One line per key: ``<sent_at_ms>\\t<key>``. Lines older than ``max_age_ms`` are dropped
when the file is opened (it is rewritten atomically then).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

WEEK_MS = 7 * 86_400_000


class SentLog:
    def __init__(self, path: Path | str, max_age_ms: int = WEEK_MS) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys: dict[str, int] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = int(time.time() * 1000)
        dropped = 0
        if self.path.exists():
            for line in self.path.read_text(errors="replace").splitlines():
                stamp, sep, key = line.partition("\t")
                if not sep or not stamp.isdigit():
                    dropped += 1  # a torn last line after a kill
                    continue
                if now - int(stamp) > max_age_ms:
                    dropped += 1
                    continue
                self._keys[key] = int(stamp)
        if dropped:
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text("".join(f"{t}\t{k}\n" for k, t in self._keys.items()))
            os.replace(tmp, self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, keys: Iterable[str]) -> None:
        """Record keys durably (flush + fsync) before returning."""
        now = int(time.time() * 1000)
        with self._lock:
            new = [k for k in keys if k not in self._keys]
            if not new:
                return
            self._file.write("".join(f"{now}\t{k}\n" for k in new))
            self._file.flush()
            os.fsync(self._file.fileno())
            for k in new:
                self._keys[k] = now

    def __len__(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        with self._lock:
            self._file.close()
