"""End to end: an xterm scrolling on Xvfb reaches a viewer as ``COPY`` rectangles.

The real ``tessera-agent`` process, the real server (``tessera run``) and a signed-in viewer
(the fixtures of ``test_agent_x11_e2e.py``); the xterm prints a few hundred lines, one at a
time, so it scrolls while the agent captures. The viewer must have received at least one
``COPY`` rectangle (the agent found the scroll and the relay forwarded it), and once the
xterm is still its framebuffer must equal the X screen, pixel for pixel.
"""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from agents.common import protocol as p
from tests.relay_harness import stop_process
from tests.integration.test_agent_x11_e2e import (  # noqa: F401 - world is a fixture
    open_viewer, screen_now, viewer_shows, wait_online, world,
)

pytest.importorskip("websockets")

LINES = 300


def test_scrolling_xterm_arrives_as_copy_rectangles_and_the_viewer_ends_exact(world, tmp_path):
    if shutil.which("xterm") is None:
        pytest.skip("xterm not installed (scripts/install-system-deps)")
    xvfb = world.xvfb
    xvfb.run("xsetroot", "-solid", "#203040")
    agent = world.start_agent()
    device_id = agent.device_id()
    wait_online(world, device_id, agent)
    viewer, _ = open_viewer(world, device_id)
    viewer.expect(p.ScreenInfo)
    viewer_shows(viewer, b"\x20\x30\x40\xff" * (1280 * 800))

    done = tmp_path / "printed"
    script = (f"sleep 1; i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); "
              f"echo \"line $i of what scrolls past\"; sleep 0.02; done; touch {done}; sleep 600")
    xterm = subprocess.Popen(["xterm", "-geometry", "90x40+30+30", "-e", "sh", "-c", script],
                             env=xvfb.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not done.exists():  # keep reading (and acking) while it scrolls
            assert time.monotonic() < deadline, "the xterm never finished printing"
            assert xterm.poll() is None, "the xterm exited"
            try:
                viewer.recv(timeout=0.5)
            except TimeoutError:
                pass
        time.sleep(0.5)  # the last lines drawn
        viewer_shows(viewer, screen_now(xvfb.display), timeout=20)
        copies = [rect for update in viewer.updates for rect in update.rects
                  if isinstance(rect, p.CopyRect)]
        assert copies, f"no COPY rectangle in {len(viewer.updates)} updates"
        # Scrolling: the xterm's lines moved up, nothing moved sideways.
        assert any(c.src_x == c.x and c.src_y > c.y for c in copies)
    finally:
        stop_process(xterm)
    viewer.close()
    assert agent.process.poll() is None  # the agent is still running
