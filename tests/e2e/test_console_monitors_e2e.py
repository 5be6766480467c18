"""End to end: the browser console's monitor choice in headless Debian Chromium (Playwright)
against the real server (``tessera run``) and a real ``tessera-agent`` on a two-monitor Xvfb
(one 2048x768 screen cut into two XRandR monitors, ``tests/x11_harness.set_monitors``).

The agent starts on the undivided screen and the console shows it; the monitors are set while
both run, and the console follows the agent's new layout: it shows monitor 1 pixel for pixel,
monitor 2 once chosen, and with "All monitors" a canvas per monitor side by side with each
one's pixels; a click on the second monitor's canvas moves the X pointer to that monitor's root
coordinates (``xdotool getmouselocation``), scaled to fit and at actual size.
"""
from __future__ import annotations

import hashlib
import shutil
import time

import pytest

from tests.e2e.test_console_e2e import _need, _open_console
from tests.integration.test_agent_x11_e2e import wait_online, world  # noqa: F401 - world is a fixture
from tests.relay_harness import wait_for
from tests.x11_harness import FilledWindows, screens_now, set_monitors, start_xvfb

pytest.importorskip("playwright")

MONITORS = [(1024, 768, 0, 0), (1024, 768, 1024, 0)]  # width, height, x, y
# Each monitor its own colour, with a block of another colour at a place of its own.
AREAS = [(0, 0, 1024, 768, 0x204080), (100, 120, 200, 150, 0xE0C020),
         (1024, 0, 1024, 768, 0x802040), (1024 + 600, 400, 300, 200, 0x20C060)]
# Every screen canvas on show: [monitor id (data-screen, or the select's value for the single
# one), width, height, SHA-256 of its RGBA pixels].
CANVASES = """async () => {
  const single = document.getElementById('console-screen');
  const all = [...document.querySelectorAll('#console-monitors canvas')];
  const shown = single.hidden ? all : [single];
  const out = [];
  for (const c of shown) {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const digest = await crypto.subtle.digest('SHA-256', data);
    out.push([c.dataset.screen ?? document.getElementById('console-monitor').value, c.width, c.height,
              [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('')]);
  }
  return out;
}"""
OPTIONS = "() => [...document.getElementById('console-monitor').options].map(o => [o.value, o.textContent])"


@pytest.fixture
def xvfb(monkeypatch):
    """The ``world`` fixture's X server: 2048x768, its monitors set by the test."""
    if shutil.which("Xvfb") is None or shutil.which("xrandr") is None:
        pytest.skip("Xvfb and xrandr are needed (scripts/install-system-deps)")
    server = start_xvfb("2048x768x24")
    monkeypatch.setenv("DISPLAY", server.display)
    try:
        yield server
    finally:
        server.stop()


def _shows(page, expected, timeout=30.0):
    """Wait until the canvases on show are exactly ``expected``: [(monitor id, RGBA)]."""
    want = [[str(screen), 1024, 768, hashlib.sha256(rgba).hexdigest()] for screen, rgba in expected]
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = page.evaluate(CANVASES)
        if got == want:
            return
        time.sleep(0.25)
    raise AssertionError(f"the console never showed {[w[:3] for w in want]}: "
                         f"{[g[:3] for g in got or []]}, pixels {'equal' if got and [g[3] for g in got] == [w[3] for w in want] else 'differ'}")


def _pointer_at(xvfb) -> tuple[int, int]:
    out = dict(line.split("=", 1) for line in xvfb.run("xdotool", "getmouselocation", "--shell").split())
    return int(out["X"]), int(out["Y"])


def _pointer_lands(xvfb, x, y, slack=0):
    wait_for(lambda: all(abs(a - b) <= slack for a, b in zip(_pointer_at(xvfb), (x, y))), 15,
             message=f"the X pointer at ({x}, {y}) ±{slack} (it is at {_pointer_at(xvfb)})")


def test_choose_each_monitor_then_all_monitors_and_click_on_the_second(world, browser):
    _need("xdotool")
    xvfb = world.xvfb
    windows = FilledWindows(xvfb.display, AREAS)
    try:
        agent = world.start_agent()
        device_id = agent.device_id()
        wait_online(world, device_id, agent)
        errors = _open_console(world, browser, device_id)
        # The undivided screen: one monitor, no monitor choice.
        browser.wait_for_function("() => document.getElementById('console-screen').width === 2048")
        assert browser.locator("[data-needs-monitors]").is_hidden()

        # Two monitors set while agent and console run: the agent finds them (it looks every
        # few seconds) and the console follows, on the primary one.
        set_monitors(xvfb, MONITORS)
        left, right = screens_now(xvfb.display)
        assert left != right
        _shows(browser, [(0, left)])
        assert browser.evaluate(OPTIONS) == [
            ["0", "Monitor 1 (primary) 1024×768"], ["1", "Monitor 2 1024×768"], ["all", "All monitors"]]
        assert browser.locator("[data-needs-monitors]").is_visible()

        browser.select_option("#console-monitor", "1")
        _shows(browser, [(1, right)])

        browser.select_option("#console-monitor", "all")
        _shows(browser, [(0, left), (1, right)])
        assert browser.locator("#console-screen").is_hidden()
        first = browser.locator('#console-monitors canvas[data-screen="0"]')
        second = browser.locator('#console-monitors canvas[data-screen="1"]')
        a, b = first.bounding_box(), second.bounding_box()
        assert a["x"] + a["width"] <= b["x"], "monitor 1 left of monitor 2"
        assert abs(a["y"] - b["y"]) < 1 and abs(a["width"] - b["width"]) < 1
        stage = browser.locator("#console-stage").bounding_box()
        assert b["x"] + b["width"] <= stage["x"] + stage["width"] + 1, "both fit in the window"

        # Fit: a click at (300, 200) of monitor 2, scaled, lands at (1324, 200) on the X side.
        scale = b["width"] / 1024
        second.click(position={"x": 300 * scale, "y": 200 * scale})
        _pointer_lands(xvfb, 1024 + 300, 200, slack=2)
        assert browser.evaluate("() => document.activeElement.dataset.screen") == "1"

        # Actual size: exactly where clicked, on either monitor.
        browser.click("#console-scale")
        assert second.bounding_box()["width"] == 1024
        second.click(position={"x": 512, "y": 384})
        _pointer_lands(xvfb, 1024 + 512, 384)
        first.click(position={"x": 100, "y": 50})
        _pointer_lands(xvfb, 100, 50)

        # The remote pointer's shape is on every canvas, so on the one under the local pointer.
        look = browser.evaluate("() => [...document.querySelectorAll('#console-monitors canvas')]"
                                ".map(c => c.style.cursor)")
        assert len(set(look)) == 1 and look[0].startswith("url(")

        # Back to one monitor: the single canvas, monitor 1's pixels.
        browser.click("#console-scale")
        browser.select_option("#console-monitor", "0")
        _shows(browser, [(0, left)])
        assert browser.locator("#console-monitors").is_hidden()
        assert not errors, errors
        assert agent.process.poll() is None
    finally:
        windows.close()
