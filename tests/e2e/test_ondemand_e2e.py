"""An OnDemand session end to end, as the issue tells it: headless Debian Chromium for the
technician and for the visitor, the real server (``tessera run``) mailing through a real SMTP
listener, and a real ``tessera-ondemand`` on Xvfb whose Tk windows are answered with xdotool.

The technician creates a session and emails the link; the visitor opens the emailed link,
passes "I understand" and reads the key; ``tessera-ondemand`` connects with that key and waits;
the technician's queue shows it without a reload; Start opens the console in a new tab; the
consent window is answered allowing View screen only; the console shows the X screen, and
the technician's clicks and keys never reach the display (the console holds them back, and the
relay would refuse them: tests/integration/test_relay_ondemand.py sends them by hand);
Ctrl+Shift+X on the host ends it at once and the console says so; the key cannot be used
again. Rejected and expired keys and the throttle on guessing are covered against the same
real parts in tests/integration/test_relay_ondemand.py, test_ondemand_x11_e2e.py and
test_ondemand_pages.py.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.fixtures_live import SmtpSink
from tests.integration.relay_world import start_relay_server, wait_for
from tests.integration.test_ondemand_x11_e2e import (CONSENT, LIMITS, OnDemandProcess, close_the_end, find,
                                                     press, window)
from tests.integration.test_relay_ondemand import World

pytestmark = pytest.mark.e2e
pytest.importorskip("tkinter")
pytest.importorskip("aiosmtpd")

ROOT_COLOUR = (0x2e, 0x8b, 0x57)  # xsetroot -solid seagreen
STATE = "() => document.getElementById('console-state').dataset.state"
NOTICE = "() => document.getElementById('console-notice-text').textContent"
PIXEL = "([x, y]) => [...document.getElementById('console-screen').getContext('2d').getImageData(x, y, 1, 1).data]"
VISITOR = "visitor@example.net"


@pytest.fixture(scope="module")
def smtp():
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp):
    yield from start_relay_server(tmp_path_factory, TESSERA_SMTP_URL=smtp.url, **LIMITS)


@pytest.fixture
def world(server, xvfb):
    for tool in ("xdotool", "xsetroot"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (scripts/install-system-deps)")
    return World(server)


def pointer(xvfb) -> tuple[int, int]:
    out = xvfb.run("xdotool", "getmouselocation", "--shell")
    values = dict(line.split("=", 1) for line in out.split())
    return int(values["X"]), int(values["Y"])


def test_a_visitor_is_helped_once_with_the_emailed_link_and_ends_it_with_ctrl_shift_x(world, smtp, xvfb, browser,
                                                                                      tmp_path):
    page = browser
    server = world.server
    xvfb.run("xsetroot", "-solid", "seagreen")
    http = server.sign_in(world.tech.username)
    page.context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in http.cookies])
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))

    # The technician creates a session and emails its link.
    page.goto(f"{server.url}/sessions")
    page.click("#create-session")
    shown_key = page.locator("#session-key").inner_text()
    link = page.locator("#session-link").input_value()
    session_id = int(page.locator("#new-session").get_attribute("data-session-id"))
    page.fill("#new-session input[name=email]", VISITOR)
    page.click("#new-session form.email-link button[type=submit]")
    mail = smtp.wait_for(VISITOR, "remote support session", timeout=20)
    body = mail.get_body(("plain",)).get_content()
    assert link in body and shown_key in body
    page.evaluate("() => { window.__sameDocument = true; }")

    # The visitor opens the emailed link in a browser of their own, understands, reads the key.
    visitor = page.context.browser.new_context().new_page()
    emailed = re.search(r"https?://\S+/ondemand/[A-Za-z0-9_-]+", body).group(0)
    assert visitor.goto(emailed).status == 200
    visitor.check("input[name=understand]")
    visitor.click("#understand-form button[type=submit]")
    key = visitor.locator("#session-key").inner_text()
    assert key == shown_key
    visitor.close()

    # tessera-ondemand connects with that key and waits in the technician's queue (no reload).
    agent = OnDemandProcess(server.url, xvfb.display, tmp_path, "--key", key)
    try:
        waiting = page.locator(f'#ondemand-queue tr[data-session-id="{session_id}"][data-state="waiting"]')
        expect(waiting).to_be_visible(timeout=45000)
        assert page.evaluate("() => window.__sameDocument === true"), "the queue page was reloaded"

        # Start: the console opens in a new tab and waits for the person at the computer.
        with page.context.expect_page() as opened:
            waiting.locator("a[data-action=start]").click()
        console = opened.value
        console.on("pageerror", lambda err: errors.append(str(err)))
        console.wait_for_function(f"() => ({STATE})() === 'waiting'", timeout=30000)
        assert "Waiting for the person at the computer" in console.locator("#console-notice-detail").inner_text()

        # The consent window names the technician; allow View screen only.
        consent = window(xvfb, CONSENT, agent)
        press(xvfb, consent, "alt+v")
        press(xvfb, consent, "alt+a")
        console.wait_for_function(f"() => ({STATE})() === 'connected'", timeout=30000)
        wait_for(lambda: console.evaluate(PIXEL, [640, 700])[:3] == list(ROOT_COLOUR), 30, every=0.2,
                 message="the canvas to show the X screen")

        # No keyboard and mouse: the technician's clicks and keys do not reach the display.
        before = pointer(xvfb)
        box = console.locator("#console-screen").bounding_box()
        console.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
        console.keyboard.type("nope")
        assert pointer(xvfb) == before
        granted = [json.loads(e.details) for e in world.audit("ondemand.consent")]
        assert [d for d in granted if d.get("session") == session_id][-1]["allowed"] == ["view_screen"]

        # Ctrl+Shift+X on the host ends it at once; the console says who ended it.
        xvfb.run("xdotool", "key", "--clearmodifiers", "ctrl+shift+x")
        console.wait_for_function(f"() => ({STATE})() === 'closed'", timeout=20000)
        assert console.evaluate(NOTICE) == "The person at the computer ended the session."
        assert not console.is_visible("#console-reconnect")
        assert close_the_end(xvfb, agent, "Return") == 0
    finally:
        agent.stop()

    # The session is gone from the queue and the database; the audit log tells its story.
    expect(page.locator(f'#ondemand-queue tr[data-session-id="{session_id}"]')).to_have_count(0, timeout=20000)
    assert world.row(session_id) is None
    for action in ("created", "emailed", "key_tried", "connected", "consent", "started", "ended"):
        assert world.audit(f"ondemand.{action}"), f"no ondemand.{action} event"

    # The key cannot be used again.
    again = OnDemandProcess(server.url, xvfb.display, tmp_path, "--key", key)
    try:
        assert close_the_end(xvfb, again, "Return", title="Session key not accepted") != 0
        assert "This session key is not valid" in again.output()
    finally:
        again.stop()
    assert not find(xvfb, CONSENT)
    assert errors == [], errors
