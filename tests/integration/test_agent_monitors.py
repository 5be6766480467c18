"""The Host agent's capture on a two-monitor X server: Xvfb has one CRTC, but XRandR 1.5
monitors (``xrandr --setmonitor``, ``tests/x11_harness.start_xvfb(monitors=...)``) are what
``mss`` lists, so :class:`~agents.host.capture.X11Capture` sees each as a screen of its own,
grabs its own pixels, and follows a layout changed while it runs (``refresh``, which the
agent's capture thread calls every few seconds before sending a new ``SCREEN_INFO``).
"""
from __future__ import annotations

import shutil

import pytest

from agents.host.capture import Screen, X11Capture
from tests.x11_harness import FilledWindows, screens_now, set_monitors, start_xvfb

LEFT, RIGHT = (1024, 768, 0, 0), (1024, 768, 1024, 0)


@pytest.fixture
def wide_xvfb():
    """A 2048x768 Xvfb with no monitors set (XRandR's one monitor for its output)."""
    if shutil.which("Xvfb") is None or shutil.which("xrandr") is None:
        pytest.skip("Xvfb and xrandr are needed (scripts/install-system-deps)")
    server = start_xvfb("2048x768x24")
    try:
        yield server
    finally:
        server.stop()


def test_capture_lists_each_xrandr_monitor_as_a_screen_with_its_own_pixels():
    if shutil.which("Xvfb") is None or shutil.which("xrandr") is None:
        pytest.skip("Xvfb and xrandr are needed (scripts/install-system-deps)")
    server = start_xvfb("2048x768x24", monitors=[LEFT, RIGHT])
    windows = None
    try:
        windows = FilledWindows(server.display, [(0, 0, 1024, 768, 0x204080), (1024, 0, 1024, 768, 0x802040),
                                                 (1024 + 10, 20, 30, 40, 0xE0C020)])
        capture = X11Capture(server.display)
        try:
            assert [(s.index, s.left, s.top, s.width, s.height, s.primary) for s in capture.screens()] == [
                (0, 0, 0, 1024, 768, True), (1, 1024, 0, 1024, 768, False)]
        finally:
            capture.close()
        left, right = screens_now(server.display)
        assert left == b"\x20\x40\x80\xff" * (1024 * 768)
        assert right[:4] == b"\x80\x20\x40\xff"
        assert right[(20 * 1024 + 10) * 4:][:4] == b"\xe0\xc0\x20\xff"  # the block at +10+20 of monitor 2
    finally:
        if windows is not None:
            windows.close()
        server.stop()


def test_capture_follows_monitors_set_and_removed_while_it_runs(wide_xvfb):
    capture = X11Capture(wide_xvfb.display)
    try:
        assert [(s.width, s.height) for s in capture.screens()] == [(2048, 768)]
        assert capture.refresh() is False

        set_monitors(wide_xvfb, [LEFT, RIGHT])
        assert capture.refresh() is True
        [first, second] = capture.screens()
        assert (first.left, first.width, first.primary) == (0, 1024, True)
        assert (second.left, second.width, second.primary) == (1024, 1024, False)
        assert len(capture.grab(second)) == 1024 * 768 * 4

        wide_xvfb.run("xrandr", "--delmonitor", "M2")
        wide_xvfb.run("xrandr", "--delmonitor", "M1")
        assert capture.refresh() is True
        [whole] = capture.screens()
        assert isinstance(whole, Screen) and (whole.width, whole.height) == (2048, 768)
    finally:
        capture.close()
