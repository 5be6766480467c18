"""Confirm access in the browser console, end to end: headless Debian Chromium, the real server,
a real ``tessera-agent`` on Xvfb showing its Tk prompt. The console says "Waiting for
confirmation…" while the prompt is up; denied at the host, it says so in words and offers
Reconnect; reconnecting and allowing at the host shows the X screen on the canvas."""
from __future__ import annotations

import pytest

from tests.e2e.test_console_e2e import WIDTH, HEIGHT, _canvas_matches  # noqa: F401
from tests.integration.test_confirm_access_x11_e2e import press, prompt_window, world  # noqa: F401

pytest.importorskip("playwright")
pytest.importorskip("tkinter")

STATE = "() => document.getElementById('console-state').dataset.state"
NOTICE = "() => document.getElementById('console-notice').hidden ? '' : document.getElementById('console-notice-text').textContent"


def test_console_waits_for_the_host_then_shows_denial_and_after_reconnect_the_screen(world, browser):
    page, xvfb = browser, world.xvfb
    xvfb.run("xsetroot", "-solid", "#3b2a6f")
    world.confirm_role(confirm_on_host=True)
    _, device_id = world.start_agent()

    http = world.server.sign_in(world.tech.username)
    page.context.add_cookies([{"name": c.name, "value": c.value, "url": world.server.url} for c in http.cookies])
    assert page.goto(f"{world.server.url}/devices/{device_id}/console").status == 200
    page.wait_for_function(f"() => ({STATE})() === 'waiting'", timeout=20000)
    assert "Waiting for confirmation" in page.evaluate(NOTICE)

    press(xvfb, prompt_window(xvfb), "Escape")
    page.wait_for_function(f"() => ({STATE})() === 'closed'", timeout=20000)
    assert "Access to this device was not confirmed." in page.evaluate(NOTICE)
    assert page.evaluate("() => document.getElementById('console-notice-detail').textContent")
    assert page.is_visible("#console-reconnect")

    page.click("#console-reconnect")
    page.wait_for_function(f"() => ({STATE})() === 'waiting'", timeout=20000)
    press(xvfb, prompt_window(xvfb), "alt+a")
    page.wait_for_function(f"() => ({STATE})() === 'connected'", timeout=20000)
    _canvas_matches(page, b"\x3b\x2a\x6f\xff" * (WIDTH * HEIGHT))
