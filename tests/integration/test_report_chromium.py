"""``modelwatch report`` end to end: records on a real embedded broker → the CLI → an HTML
page rendered by headless Chromium (not blank, no script errors, expected elements)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from schemas.codec import default_codec
from schemas.topics import TopicNames
from tests.unit.test_report_render import (
    T0,
    WINDOW_MS,
    make_alerts,
    make_reference,
    make_windows,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)  # fmt: skip
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
TOPICS = TopicNames()
pytestmark = pytest.mark.integration


# ---- a tiny PNG reader (stdlib only) ----------------------------------------------------


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def png_pixels(data: bytes) -> np.ndarray:
    """The ``(height, width, 3)`` RGB pixels of an 8-bit, non-interlaced RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = ctype = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if ctype == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        f, line = raw[y, 0], raw[y, 1:]
        if f == 0:
            cur = line.copy()
        elif f == 1:  # sub: running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint64) & 0xFF
            cur = cur.astype(np.uint8).reshape(stride)
        elif f == 2:  # up
            cur = line + prev
        else:  # average / paeth: sequential
            cur = bytearray(line.tobytes())
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = int(prev[i]), int(prev[i - bpp]) if i >= bpp else 0
                pred = (a + b) // 2 if f == 3 else _paeth(a, b, c)
                cur[i] = (cur[i] + pred) & 0xFF
            cur = np.frombuffer(bytes(cur), dtype=np.uint8)
        out[y] = cur
        prev = out[y]
    return out.reshape(height, width, bpp)[:, :, :3]


def colour_stats(png: bytes) -> tuple[int, float]:
    """Distinct colours of a screenshot and the share of pixels that are not the most
    common (background) colour."""
    pixels = png_pixels(png)
    packed = (pixels[:, :, 0].astype(np.uint32) << 16) | (pixels[:, :, 1].astype(np.uint32) << 8)
    packed |= pixels[:, :, 2]
    _, counts = np.unique(packed, return_counts=True)
    return len(counts), 1 - counts.max() / packed.size


# ---- headless chromium ------------------------------------------------------------------


@dataclass
class Rendered:
    """What Chromium made of a page: the screenshot, the DOM and its console errors."""

    png: bytes
    dom: str
    console_errors: list[str]


CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
]  # fmt: skip
CONSOLE_ERROR = re.compile(r"Uncaught|ERROR:CONSOLE|CONSOLE\(\d+\)\].*(Error|error)")


def render(page: Path, tmp: Path) -> Rendered:
    """Screenshot and DOM of ``page`` in headless Chromium, with console errors."""
    assert CHROMIUM is not None
    url = page.resolve().as_uri()
    shot = tmp / "shot.png"
    common = [CHROMIUM, *CHROME_FLAGS]
    a = subprocess.run(
        [*common, f"--user-data-dir={tmp / 'ud1'}", f"--screenshot={shot}",
         "--window-size=1280,2000", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    b = subprocess.run(
        [*common, f"--user-data-dir={tmp / 'ud2'}", "--dump-dom", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shot.exists(), f"no screenshot: rc={a.returncode} {a.stderr[-2000:]}"
    errors = [line for line in (a.stderr + b.stderr).splitlines() if CONSOLE_ERROR.search(line)]
    return Rendered(shot.read_bytes(), b.stdout, errors)


# ---- publishing and the CLI -------------------------------------------------------------


def publish(bootstrap: str, model: str) -> None:
    """Six windows, a reference (plus an older one) and four alerts of ``model``."""
    codec = default_codec()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    old = dict(make_reference(model, created_at_ms=1), source="OLD-REFERENCE")
    for ref in (old, make_reference(model)):  # same key: the last one wins
        producer.produce(TOPICS.references, key=f"{model}/".encode(),
                         value=codec.encode("ReferenceProfile", ref))  # fmt: skip
    for w in make_windows(model=model):
        producer.produce(TOPICS.window_stats, key=model.encode(),
                         value=codec.encode("WindowStats", w))  # fmt: skip
    producer.produce(TOPICS.window_stats, key=model.encode(), value=b"garbage")
    for a in make_alerts(model):
        producer.produce(TOPICS.alerts, key=a["fingerprint"].encode(),
                         value=codec.encode("AlertEvent", a))  # fmt: skip
    assert producer.flush(30) == 0


def run_cli(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m modelwatch.cli report ...`` against ``bootstrap``."""
    env = {**os.environ, "MODELWATCH_BOOTSTRAP": bootstrap, "COLUMNS": "300", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "modelwatch.cli", "report", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model(kafka_bootstrap: str) -> str:
    """A fresh model name with its records published (the broker is shared)."""
    name = f"churn-{uuid.uuid4().hex[:8]}"
    publish(kafka_bootstrap, name)
    return name


@needs_chromium
def test_report_renders_in_chromium(kafka_bootstrap: str, model: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = run_cli(kafka_bootstrap, "--model", model, "--out", str(out), "--timeout", "30")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "6 window(s), 2 alert(s)" in proc.stdout
    html = out.read_text()
    assert "OLD-REFERENCE" not in html and "train.parquet" in html  # last reference wins
    assert "Skipped 1 undecodable record(s)" in html
    assert "<script" not in html and not re.search(r"https?://", html)

    got = render(out, tmp_path)
    assert got.console_errors == []
    colours, ink = colour_stats(got.png)
    assert colours > 50, f"screenshot looks blank: {colours} colours"
    assert ink > 0.05, f"screenshot looks blank: {ink:.1%} non-background"
    features = re.findall(r'data-feature="([^"]+)" data-drifted="(true|false)"', got.dom)
    assert ("age", "true") in features and ("plan", "true") in features
    assert ("income", "false") in features
    assert len(re.findall(r"<svg\b", got.dom)) >= 12
    assert len(re.findall(r'<tr class="alert', got.dom)) == 2


@needs_chromium
def test_empty_range_page(kafka_bootstrap: str, model: str, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    later = str(T0 + 1000 * WINDOW_MS)
    proc = run_cli(kafka_bootstrap, "--model", model, "--from", later, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "no windows in the range (6 outside it)" in proc.stdout
    got = render(out, tmp_path)
    assert got.console_errors == []
    assert 'id="empty-range"' in got.dom and "No window statistics in this range" in got.dom
    assert colour_stats(got.png)[0] > 5


def test_iso_range_selects_windows(kafka_bootstrap: str, model: str, tmp_path: Path) -> None:
    out = tmp_path / "range.html"
    from datetime import UTC, datetime

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")

    proc = run_cli(kafka_bootstrap, "--model", model, "--from", iso(T0 + 2 * WINDOW_MS),
                   "--to", iso(T0 + 3 * WINDOW_MS), "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 window(s), 0 alert(s)" in proc.stdout


def test_unknown_model_fails_clearly(kafka_bootstrap: str, model: str, tmp_path: Path) -> None:
    out = tmp_path / "none.html"
    proc = run_cli(kafka_bootstrap, "--model", "no-such-model", "--out", str(out))
    assert proc.returncode == 1
    assert "no data for model 'no-such-model'" in proc.stderr
    assert model in proc.stderr  # names the models that do have window stats
    assert not out.exists()


def test_bad_time_is_a_usage_error(kafka_bootstrap: str, tmp_path: Path) -> None:
    proc = run_cli(kafka_bootstrap, "--model", "x", "--from", "yesterday",
                   "--out", str(tmp_path / "x.html"))  # fmt: skip
    assert proc.returncode == 2
    assert "epoch milliseconds or an ISO datetime" in proc.stderr


@needs_chromium
def test_the_checks_catch_blank_pages_and_script_errors(tmp_path: Path) -> None:
    """The blank-page and console-error checks above can fail: a broken page trips both."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script>"
                    "</body></html>")  # fmt: skip
    got = render(page, tmp_path)
    assert any("Uncaught" in e for e in got.console_errors), got.console_errors
    colours, ink = colour_stats(got.png)
    assert colours <= 2 and ink < 0.01


def test_unreachable_kafka_fails_clearly_and_quickly(tmp_path: Path) -> None:
    proc = run_cli("127.0.0.1:1", "--model", "x", "--timeout", "3",
                   "--out", str(tmp_path / "x.html"))  # fmt: skip
    assert proc.returncode == 1  # a runtime failure, not a usage error
    assert "error: cannot reach Kafka at 127.0.0.1:1" in proc.stderr
    assert "FAIL|rdkafka" not in proc.stderr
