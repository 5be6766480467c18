"""Smoke test of bench/wire.py: its shortened run (``--quick``) brings up Xvfb, ``tessera run``,
a real agent, x11vnc and both viewers, and reports bytes and frames for each side and phase,
with Tessera's framebuffer equal to the X screen at the end. The size and frame targets are
the benchmark's business, not asserted here."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.relay_harness import ROOT

TOOLS = ("Xvfb", "xterm", "xdotool", "xsetroot", "x11vnc", "less")


def test_quick_wire_run_reports_both_viewers_and_a_lossless_tessera_screen():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/install-system-deps)")
    done = subprocess.run([sys.executable, "bench/wire.py", "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout)

    for side in ("tessera", "x11vnc"):
        assert report["initial"][side]["frames"] >= 1 and report["initial"][side]["bytes"] > 0
        assert report["total"][side]["bytes"] > 0 and report["total"][side]["frames"] > 0
        for name, phase in report["phases"].items():
            assert phase[side]["bytes"] > 0 and phase[side]["frames"] > 0, (name, side, phase[side])
    assert set(report["phases"]) == {"typing", "scroll_pages", "scroll_lines", "output_lines", "window_move"}
    assert report["lossless"]["tessera_equals_x_screen"], report["lossless"]
    assert report["lossless"]["x11vnc_jpeg_rects"] == 0
    assert isinstance(report["total"]["met"], bool)
