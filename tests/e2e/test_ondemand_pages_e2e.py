"""End to end in headless Debian Chromium (Playwright) against a live ``tessera run``: a
technician's My sessions page and the public link page of an OnDemand session.

The technician creates a session, copies its link (Clipboard API), turns browser notifications
on ("Notify me", the permission granted to the browser context); the agent's arrival is
simulated in the server's database by ``services.connected`` (the real agent's end to end is
tests/integration/test_ondemand_x11_e2e.py and the launcher's test_ondemand_launcher.py): the
queue shows the waiting computer without a reload, with its reported name as text, and a
notification is raised (seen by wrapping the Notification constructor before the page loads).
Reject takes the row away. The visitor's side: the warning, "I understand", the download for
Linux, the key and the QR code.
"""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from app.models.ondemand import OnDemandSession, OnDemandState
from tests.integration.relay_world import start_relay_server
from tests.relay_harness import PASSWORD

pytestmark = pytest.mark.e2e

# Runs before any script of the page: records each notification the page raises.
RECORD_NOTIFICATIONS = """
(() => {
  const Original = window.Notification;
  window.__notified = [];
  if (!Original) { return; }
  class Recording extends Original {
    constructor(title, options) {
      window.__notified.push({title, body: (options && options.body) || ""});
      super(title, options);
    }
  }
  window.Notification = Recording;
})();
"""
HOSTNAME = 'visitor-pc <img src=x id="injected">'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from start_relay_server(tmp_path_factory)


def _technician(server):
    from app.users.services import create_account, create_user
    from app.models import UserType
    from tests.integration.ondemand_world import enable_ondemand

    with server.app.app_context():
        account = create_account(f"E2E {uuid.uuid4().hex[:6]}", f"owner-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
        user = create_user(account, f"tech-{uuid.uuid4().hex[:8]}@example.com", PASSWORD, UserType.user,
                           first_name="Tina", last_name="Tech").user
        enable_ondemand(user, account.id)
        return user.username, account.id


def _signed_in(page, server, username):
    http = server.sign_in(username)
    page.context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in http.cookies])


def _watch_errors(page) -> list[str]:
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    return errors


def _row(server, session_id):
    from app.extensions import db

    with server.app.app_context():
        row = db.session.get(OnDemandSession, session_id)
        if row is not None:
            db.session.expunge(row)
        return row


def test_the_queue_shows_an_arriving_visitor_without_reload_and_notifies(server, browser):
    page = browser
    context = page.context
    context.grant_permissions(["notifications", "clipboard-read", "clipboard-write"], origin=server.url)
    context.add_init_script(script=RECORD_NOTIFICATIONS)
    username, account_id = _technician(server)
    _signed_in(page, server, username)
    errors = _watch_errors(page)

    page.goto(f"{server.url}/sessions")
    expect(page.locator("#queue-empty")).to_be_visible()
    page.click("#create-session")
    key = page.locator("#session-key").inner_text()
    assert re.fullmatch(r"\d{3} \d{3} \d{3}", key)
    link = page.locator("#session-link").input_value()
    assert re.fullmatch(re.escape(server.url) + r"/ondemand/[A-Za-z0-9_-]{32}", link)
    session_id = int(page.locator("#new-session").get_attribute("data-session-id"))

    # Copy link: the Clipboard API has it.
    page.click("button[data-copy-target='#session-link']")
    expect(page.locator("[data-copy-status]")).to_have_text("Copied the link.")
    assert page.evaluate("() => navigator.clipboard.readText()") == link

    # Notify me: the permission is granted, the button says notifications are on.
    page.click("#notify-me")
    expect(page.locator("#notify-me")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#notify-me [data-notify-label]")).to_have_text("Notifications on")

    unused = page.locator(f'#ondemand-queue tr[data-session-id="{session_id}"]')
    expect(unused).to_have_attribute("data-state", "created")
    page.evaluate("() => { window.__sameDocument = true; }")

    # The agent connects (simulated in the server's database, as the relay does).
    from app.ondemand import services

    with server.app.app_context():
        from app.extensions import db

        services.connected(db.session.get(OnDemandSession, session_id),
                           services.Visitor(HOSTNAME, "Debian GNU/Linux 12", "ann", "0.1.0"), "e2e")

    waiting = page.locator(f'#ondemand-queue tr[data-session-id="{session_id}"][data-state="waiting"]')
    expect(waiting).to_be_visible(timeout=20000)
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
    expect(waiting.locator(".visitor-host")).to_have_text(HOSTNAME)  # as text, never as markup
    assert page.locator("#injected").count() == 0
    start = waiting.locator("a[data-action=start]")
    expect(start).to_have_attribute("href", f"/sessions/{session_id}/console")
    expect(start).to_have_attribute("target", "_blank")
    expect(waiting).to_contain_text("Asked when you start")

    page.wait_for_function("() => window.__notified.length > 0", timeout=15000)
    notified = page.evaluate("() => window.__notified")
    assert notified == [{"title": "OnDemand session waiting", "body": f"{HOSTNAME} is waiting in your queue."}]

    # Reject: the row goes (HTMX), the session is gone, the key void.
    waiting.locator("button[data-action=reject]").click()
    expect(page.locator(f'#ondemand-queue tr[data-session-id="{session_id}"]')).to_have_count(0)
    assert _row(server, session_id) is None
    assert page.evaluate("() => window.__sameDocument === true")
    assert errors == [], errors


def test_the_visitor_reads_the_warning_understands_and_gets_the_download_and_key(server, browser):
    page = browser
    username, account_id = _technician(server)
    from app.ondemand import services
    from tests.integration.ondemand_world import membership_of

    with server.app.app_context():
        from app.extensions import db
        from app.models import User
        from sqlalchemy import select

        user = db.session.scalar(select(User).where(User.username == username))
        row = services.create_session(membership_of(user, account_id))
        key, grouped, token = row.key, row.grouped_key, row.link_token
    errors = _watch_errors(page)

    page.goto(f"{server.url}/ondemand/{token}")
    expect(page.locator("#control-warning")).to_contain_text("This lets someone control this computer.")
    expect(page.locator("#session-key")).to_have_count(0)
    page.click("#understand-form button[type=submit]")
    expect(page.locator("p.error")).to_contain_text("Tick the box")
    page.check("input[name=understand]")
    page.click("#understand-form button[type=submit]")

    expect(page.locator("#session-key")).to_have_text(grouped)
    download = page.locator("#download-linux")  # Chromium on Linux: the Linux download first
    expect(download).to_have_attribute("href", f"/ondemand/{token}/download/linux")
    expect(page.locator("#open-app")).to_have_attribute(
        "href", f"tessera-ondemand://connect?server={server.url.replace(':', '%3A').replace('/', '%2F')}&key={key}")
    assert page.evaluate("() => { const img = document.getElementById('link-qr');"
                         " return img.complete && img.naturalWidth > 0; }"), "the QR code did not render"
    with page.expect_download() as fetched:
        download.click()
    assert fetched.value.suggested_filename == f"tessera-ondemand-{key}.sh"
    assert _row(server, row.id).state is OnDemandState.created
    # The unticked submit's answer (422) is the only complaint in the console.
    assert [e for e in errors if "status of 422" not in e] == [], errors
