"""Smoke test of bench/console_latency.py: its short run (``--quick``) brings up Xvfb with an
xterm, ``tessera run`` with a real agent, x11vnc + websockify serving noVNC from npm, and
headless Chromium, and reports the keystroke-to-paint latency of both viewers (every key
measured by the pixels of its character cell, nothing drawn while idle) and the console worker's decode + paint of a 1080p key
frame (with the WebAssembly zstd decoder, as the worker script's CSP allows it). The latency
and time targets are the benchmark's business, not asserted here."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.relay_harness import ROOT

pytest.importorskip("playwright")
pytest.importorskip("websockify")

TOOLS = ("Xvfb", "xterm", "xdotool", "xsetroot", "x11vnc", "npm")
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
SCRIPT = ROOT / "bench" / "console_latency.py"


def _novnc_reachable() -> str | None:
    """None when noVNC is in the benchmark's cache or the npm registry answers; else why not."""
    version = re.search(r'^NOVNC_VERSION = "([^"]+)"', SCRIPT.read_text(), re.M).group(1)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tessera-bench"
    if (cache / f"novnc-{version}" / "package" / "core" / "rfb.js").exists():
        return None
    try:
        done = subprocess.run(["npm", "view", f"@novnc/novnc@{version}", "version"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "npm view timed out"
    return None if done.returncode == 0 and version in done.stdout else done.stderr.strip()[-300:]


def test_quick_console_latency_run_measures_tessera_and_novnc_and_the_worker_decode():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/install-system-deps)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package")
    why = _novnc_reachable()
    if why is not None:
        pytest.skip(f"the npm registry is not reachable, so noVNC cannot be fetched: {why}")

    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)

    assert report["benchmark"] == "console_latency"
    for side in ("tessera", "novnc"):
        figures = report[side]
        assert figures["keys"] == 30 and figures["missed"] == 0, (side, figures)
        assert figures["runs"] == 30
        assert 0 < figures["min_ms"] <= figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"], figures
        assert figures["p95_ms"] < 1000, figures  # a key's echo, not the next key's
        assert figures["idle_draws"] == 0, (side, figures)  # nothing but the keys changes the screen
        first = figures["first_draw_on_the_cell"]
        assert first["runs"] == 30 and 0 < first["p50_ms"] <= figures["p50_ms"], (side, first)
    assert report["ratio_p50"] > 0 and report["ratio_p95"] > 0
    assert isinstance(report["met"], bool)
    assert re.fullmatch(r"\d+\.\d+\.\d+", report["setup"]["novnc"])
    assert report["setup"]["x11vnc"].startswith("x11vnc")

    decode = report["decode"]
    assert decode["frame"]["width"] == 1920 and decode["frame"]["height"] == 1080
    assert 0 < decode["frame"]["compressed_bytes"] < decode["frame"]["raw_payload_bytes"]
    for part in ("total", "worker", "paint"):
        assert decode[part]["runs"] == 9 and decode[part]["p50_ms"] > 0, (part, decode[part])
    assert decode["total"]["p50_ms"] >= decode["worker"]["p50_ms"]
    # The worker decompressed with libzstd in WebAssembly (its script's CSP allows compiling it),
    # not with the fzstd fallback.
    assert decode["decoder"] == "wasm"
    for part in ("zstd", "apply_rects", "regions"):
        assert decode["worker_breakdown"][part]["runs"] == 9, (part, decode["worker_breakdown"])
    assert decode["worker_breakdown"]["zstd"]["p50_ms"] > 0
    assert decode["new_console"]["runs"] == 3 and decode["new_console"]["p50_ms"] > 0
    # The peer: the same worker with WebAssembly refused by its script's CSP, decoding with fzstd.
    assert decode["fzstd_peer"]["total"]["runs"] == 4 and decode["fzstd_peer"]["zstd"]["p50_ms"] > 0
    assert decode["fzstd_peer"]["speedup_p50"] > 0
    assert isinstance(decode["met"], bool)
