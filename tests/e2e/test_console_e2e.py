"""End to end: the browser console in headless Debian Chromium (Playwright) against the real
server (``tessera run``) and a real ``tessera-agent`` on Xvfb.

A technician allowed by a role assignment opens /devices/<id>/console: the canvas shows the X
screen pixel for pixel after a change on the host, text typed on the canvas arrives in an xterm,
a Shift locked in the toolbar makes lowercase typing arrive uppercase, text is copied both ways
(xclip on the host, the console's clipboard box), and a technician without View screen gets a
403 page instead of a console.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import time

import pytest

from tests.integration.test_agent_x11_e2e import wait_online, world  # noqa: F401 - world is a fixture
from tests.relay_harness import stop_process, wait_for
from tests.x11_harness import screen_now

pytest.importorskip("playwright")

WIDTH, HEIGHT = 1280, 800
# The canvas as the page shows it: SHA-256 of its RGBA pixels, and a few pixels.
CANVAS_SHA = """async () => {
  const c = document.getElementById('console-screen');
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const digest = await crypto.subtle.digest('SHA-256', data);
  return [c.width, c.height, [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('')];
}"""
CANVAS_PIXEL = """([x, y]) => [...document.getElementById('console-screen').getContext('2d').getImageData(x, y, 1, 1).data]"""


def _sign_in_browser(page, world, username):
    """The technician's Portal session (signed in over HTTP) in the browser's cookie jar."""
    http = world.relay.sign_in(username)
    page.context.add_cookies([{"name": c.name, "value": c.value, "url": world.server.url} for c in http.cookies])


def _open_console(world, page, device_id):
    _sign_in_browser(page, world, world.tech.username)
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    response = page.goto(f"{world.server.url}/devices/{device_id}/console")
    assert response.status == 200
    # Functions, not expression strings: Playwright evals those, which the page's CSP refuses.
    page.wait_for_function("() => document.getElementById('console-state').dataset.state === 'connected'"
                           " && document.getElementById('console-screen').width > 1", timeout=20000)
    return errors


def _canvas_matches(page, expected_rgba: bytes, timeout=20.0):
    want = [WIDTH, HEIGHT, hashlib.sha256(expected_rgba).hexdigest()]
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = page.evaluate(CANVAS_SHA)
        if got == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"the canvas never showed the X screen: {got[:2]} vs {want[:2]}")


def _online_device(world):
    world.xvfb.run("xsetroot", "-solid", "#203040")
    agent = world.start_agent()
    device_id = agent.device_id()
    wait_online(world, device_id, agent)
    return agent, device_id


def _xterm_writing_to(world, path, geometry="60x8+40+40"):
    """An xterm whose shell copies what is typed into ``path`` (line by line)."""
    xterm = subprocess.Popen(["xterm", "-geometry", geometry, "-e", "sh", "-c", f"cat > {path}"],
                             env=world.xvfb.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: subprocess.run(["xdotool", "search", "--class", "xterm"], env=world.xvfb.env,
                                    capture_output=True).returncode == 0, 10, message="the xterm window")
    return xterm


def _need(*tools):
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/install-system-deps)")


def test_canvas_shows_the_x_screen_and_typing_arrives_in_an_xterm_also_with_a_locked_shift(world, browser, tmp_path):
    _need("xterm", "xdotool")
    agent, device_id = _online_device(world)
    errors = _open_console(world, browser, device_id)

    # Pixels: a change on the host is on the canvas, exactly.
    _canvas_matches(browser, b"\x20\x30\x40\xff" * (WIDTH * HEIGHT))
    world.xvfb.run("xsetroot", "-solid", "#aa5511")
    _canvas_matches(browser, b"\xaa\x55\x11\xff" * (WIDTH * HEIGHT))
    assert browser.evaluate(CANVAS_PIXEL, [1000, 700]) == [0xAA, 0x55, 0x11, 0xFF]

    typed = tmp_path / "typed.txt"
    xterm = _xterm_writing_to(world, typed)
    try:
        _canvas_matches(browser, screen_now(world.xvfb.display))  # the xterm too, pixel for pixel
        # Without a window manager the keyboard follows the pointer: hover the xterm through
        # the canvas (the POINTER goes to the agent), then type on the canvas.
        canvas = browser.locator("#console-screen")
        box = canvas.bounding_box()
        scale = box["width"] / WIDTH
        browser.mouse.move(box["x"] + 200 * scale, box["y"] + 80 * scale)
        canvas.click(position={"x": 200 * scale, "y": 80 * scale})
        browser.keyboard.type("Hello, Tessera 42!")
        browser.keyboard.press("Enter")
        wait_for(lambda: typed.exists() and typed.read_text() == "Hello, Tessera 42!\n", 15,
                 message=f"the typed line in the xterm's file (got {typed.read_text() if typed.exists() else None!r})")

        # Shift locked in the toolbar (double click): lowercase typing arrives uppercase.
        shift = browser.locator('.console-mod[data-mod="Shift"]')
        shift.dblclick()
        assert shift.get_attribute("data-state") == "locked"
        browser.keyboard.type("abc")
        shift.click()  # released
        assert shift.get_attribute("data-state") == "off"
        browser.keyboard.type("d")
        browser.keyboard.press("Enter")
        wait_for(lambda: typed.read_text().endswith("ABCd\n"), 15,
                 message=f"ABCd in the xterm's file (got {typed.read_text()!r})")

        # A single click: Shift for the next key only.
        shift.click()
        assert shift.get_attribute("data-state") == "once"
        browser.keyboard.type("xy")
        browser.keyboard.press("Enter")
        wait_for(lambda: typed.read_text().endswith("Xy\n"), 15,
                 message=f"Xy in the xterm's file (got {typed.read_text()!r})")
        assert shift.get_attribute("data-state") == "off"
    finally:
        stop_process(xterm)
    # The zstd stream was decoded in the worker (no fallback to uncompressed frames).
    assert "without compression" not in browser.text_content("#console-message")
    status = browser.locator("#console-fps").text_content()
    assert status.endswith("fps")
    assert not errors, errors
    assert agent.process.poll() is None


def test_clipboard_travels_both_ways(world, browser):
    _need("xclip")
    agent, device_id = _online_device(world)
    errors = _open_console(world, browser, device_id)

    # Host -> page: copied on the host, it arrives in the console's clipboard box.
    subprocess.run(["xclip", "-selection", "clipboard", "-i"], input=b"copied on the host \xc3\xa9",
                   env=world.xvfb.env, check=True, timeout=10)
    browser.wait_for_function(
        "() => document.getElementById('console-clipboard-text').value === 'copied on the host \u00e9'",
        timeout=15000)

    # Page -> host: written in the box and sent, it is pasteable on the host.
    browser.click("#console-clipboard-toggle")
    browser.fill("#console-clipboard-text", "sent from the console ✓")
    browser.click("#console-clipboard-send")

    def host_clipboard():
        done = subprocess.run(["xclip", "-selection", "clipboard", "-o"], env=world.xvfb.env,
                              capture_output=True, timeout=10)
        return done.stdout.decode("utf-8", "replace")

    wait_for(lambda: host_clipboard() == "sent from the console ✓", 15,
             message="the console's text in the host's clipboard")
    assert "Sent 23 characters" in browser.text_content("#console-clipboard-note")
    assert not errors, errors


def test_technician_without_view_screen_gets_no_console(world, browser):
    agent, device_id = _online_device(world)
    # The technician's only assignment now grants Remote session and Keyboard and mouse,
    # not View screen.
    world.relay.set_assignment_active(world.assignment_id, False)
    world.relay.grant(world.account_id, ("remote_session", "keyboard_mouse"))

    _sign_in_browser(browser, world, world.tech.username)
    response = browser.goto(f"{world.server.url}/devices/{device_id}/console")
    assert response.status == 403
    assert "You cannot open the console" in browser.text_content("#error")
    assert browser.locator("#console-screen").count() == 0
