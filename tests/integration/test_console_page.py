"""The console page, GET /devices/<id>/console: who may open it (the relay's own rule,
``app.relay.services.view_access``), what it carries for static/console/console.js, escaping of
what the agent reported, and the links to it from My devices, Devices and the device details."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.models import EnrolmentState, Membership
from tests.integration import access_world as w

VIEW = ["remote_session", "view_screen", "keyboard_mouse", "clipboard"]


def _member(user):
    return db.session.scalar(select(Membership).where(Membership.user_id == user.id))


def _allowed_device(user, hostname="console-pc", permissions=VIEW, **kw):
    account = _member(user).account
    device = w.device(account, hostname, **kw)
    w.assignment(account, f"Support {hostname}", w.role(account, f"Helpdesk {hostname}", permissions=permissions),
                 everyone=True, everything=True)
    return device


def test_an_allowed_technician_gets_the_canvas_and_the_websocket_address(client, login_as):
    user = login_as("user")
    device = _allowed_device(user, os="Microsoft Windows 11 Pro")

    response = client.get(f"/devices/{device.id}/console")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<canvas class="console-screen" id="console-screen"' in page
    assert f'data-ws="/relay/devices/{device.id}/view"' in page
    assert 'type="module" src="/static/console/console.js"' in page
    assert 'data-worker="/static/console/worker.js"' in page
    # Windows modifier set; keyboard, mouse and clipboard granted, remote management not.
    assert re.findall(r'data-mod="([^"]+)"', page) == ["Win", "Ctrl", "Alt", "Shift"]
    mask = int(re.search(r'data-permissions="(\d+)"', page).group(1))
    assert mask == 0b100111  # remote_session, view_screen, keyboard_mouse, clipboard
    assert "<script>" not in page and "onclick" not in page  # the CSP forbids inline script
    assert response.headers["Cache-Control"] == "no-store"


def test_only_the_decoding_worker_may_compile_webassembly(client, login_as):
    """The worker decompresses with libzstd compiled to WebAssembly: its script's response
    (a dedicated worker runs under that policy) allows 'wasm-unsafe-eval', nothing else does,
    and nothing allows 'unsafe-eval'."""
    user = login_as("user")
    device = _allowed_device(user)
    worker = client.get("/static/console/worker.js")
    assert worker.status_code == 200
    assert "script-src 'self' 'wasm-unsafe-eval';" in worker.headers["Content-Security-Policy"]
    for response in (client.get(f"/devices/{device.id}/console"), client.get("/static/console/console.js"),
                     client.get("/static/console/zstd.js")):
        assert response.status_code == 200
        assert "wasm-unsafe-eval" not in response.headers["Content-Security-Policy"]
    for response in (worker, client.get("/static/console/zstd.js")):
        assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    wasm = client.get("/static/vendor/zstddec-stream-0.3.4.wasm")
    assert wasm.status_code == 200 and wasm.mimetype == "application/wasm"
    assert wasm.data[:4] == b"\0asm"


def test_modifier_keys_follow_the_reported_os(client, login_as):
    user = login_as("user")
    mac = _allowed_device(user, "mac-pc", os="macOS 14.2 (Darwin)")
    linux = _allowed_device(user, "linux-pc", os="Debian GNU/Linux 12 (bookworm)")
    assert re.findall(r'data-mod="([^"]+)"', client.get(f"/devices/{mac.id}/console").get_data(as_text=True)) \
        == ["Cmd", "Control", "Option", "Shift"]
    assert re.findall(r'data-mod="([^"]+)"', client.get(f"/devices/{linux.id}/console").get_data(as_text=True)) \
        == ["Super", "Ctrl", "Alt", "Shift"]


def test_without_view_screen_the_page_is_refused_with_a_reason(client, login_as):
    user = login_as("user")
    device = _allowed_device(user, permissions=["remote_session", "keyboard_mouse"])

    response = client.get(f"/devices/{device.id}/console")

    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "You cannot open the console of console-pc" in page
    assert "console-screen" not in page


def test_without_any_assignment_the_page_is_refused(client, login_as):
    user = login_as("administrator")  # managing devices is not the same as viewing their screens
    device = w.device(_member(user).account, "lonely-pc")
    assert client.get(f"/devices/{device.id}/console").status_code == 403


def test_a_revoked_device_is_refused(client, login_as):
    user = login_as("user")
    device = _allowed_device(user, revoked=True)
    response = client.get(f"/devices/{device.id}/console")
    assert response.status_code == 403


def test_another_accounts_device_is_not_found(client, login_as, factory):
    login_as("owner")
    other = factory.account()
    device = w.device(other, "their-pc")
    w.assignment(other, "Theirs", w.role(other, "Theirs"), everyone=True, everything=True)
    response = client.get(f"/devices/{device.id}/console")
    assert response.status_code == 404
    assert "their-pc" not in response.get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_sign_in(client, factory):
    device = w.device(factory.account(), "pc")
    response = client.get(f"/devices/{device.id}/console")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_agent_reported_strings_are_escaped(client, login_as):
    user = login_as("user")
    evil = '<img src=x onerror="alert(1)">'
    device = _allowed_device(user, "evil-pc", os=f"Linux {evil}", logged_in_user=f"ann{evil}")
    device.hostname = f"pc{evil}"
    db.session.commit()

    page = client.get(f"/devices/{device.id}/console").get_data(as_text=True)

    assert evil not in page
    assert "pc&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "Linux &lt;img" in page and "ann&lt;img" in page


def test_my_devices_links_the_console_in_a_new_tab_when_the_default_action_is_browser(client, login_as):
    user = login_as("user")
    device = _allowed_device(user)
    page = client.get("/my-devices").get_data(as_text=True)
    assert re.search(rf'<a [^>]*href="/devices/{device.id}/console"[^>]*target="_blank"', page)

    member = _member(user)
    member.default_action = "viewer"
    db.session.commit()
    page = client.get("/my-devices").get_data(as_text=True)
    assert f"/devices/{device.id}/console" not in page


def test_devices_listing_and_details_offer_remote_control_for_enrolled_devices_only(client, login_as):
    user = login_as("group_manager")
    account = _member(user).account
    enrolled = w.device(account, "enrolled-pc")
    pending = w.device(account, "pending-pc", state=EnrolmentState.pending)
    revoked = w.device(account, "revoked-pc", revoked=True)

    listing = client.get("/devices/").get_data(as_text=True)
    assert f'href="/devices/{enrolled.id}/console"' in listing
    assert f'href="/devices/{pending.id}/console"' not in listing
    assert f'href="/devices/{revoked.id}/console"' not in listing

    details = client.get(f"/devices/{enrolled.id}").get_data(as_text=True)
    assert re.search(rf'<a [^>]*href="/devices/{enrolled.id}/console"[^>]*>.*?Remote control', details, re.S)
    assert f"/devices/{pending.id}/console" not in client.get(f"/devices/{pending.id}").get_data(as_text=True)
