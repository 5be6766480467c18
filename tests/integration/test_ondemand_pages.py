"""OnDemand pages (spec D1, D3): My sessions (create, the key and its link, email through a real
SMTP listener, the queue partial, reject, expiry), the public key entry under its rate limits,
the public link page's two steps, platforms and QR code, and the Linux launcher's content.

The clock is controlled by writing rows with past timestamps (tests/integration/ondemand_world.py).
"""
from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from app.models import AuditEvent
from app.models.ondemand import OnDemandSession, OnDemandState
from app.ondemand import links
from tests.conftest import csrf_token, sign_in
from tests.fixtures_live import free_port
from tests.integration.ondemand_world import age, enable_ondemand, make_active, make_waiting, new_session

LINUX_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
WINDOWS_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
MAC_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
CROS_UA = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


# --- helpers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Tech:
    id: int
    username: str
    account_id: int


@pytest.fixture
def tech(client, factory) -> Tech:
    """A signed-in technician (type User) who may use OnDemand sessions."""
    account = factory.account(company="Acme Support")
    user = factory.user(account, "user")
    enable_ondemand(user, account.id)
    assert sign_in(client, user.username).status_code == 200
    return Tech(user.id, user.username, account.id)


def _token(client, path="/sessions"):
    return csrf_token(client, path)


def _create(client) -> OnDemandSession:
    from app.extensions import db

    response = client.post("/sessions", data={"csrf_token": _token(client)})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    found = re.search(r"/sessions\?session=(\d+)$", response.headers["Location"])
    assert found, response.headers["Location"]
    row = db.session.get(OnDemandSession, int(found.group(1)))
    assert row is not None
    return row


def _audit(action: str) -> list[AuditEvent]:
    from app.extensions import db

    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _text(response) -> str:
    return response.get_data(as_text=True)


# --- who may use My sessions -------------------------------------------------------------------

def test_my_sessions_and_its_menu_item_need_ondemand_enabled_and_an_ondemand_role_assignment(client, factory):
    account = factory.account()
    user = factory.user(account, "administrator")
    sign_in(client, user.username)

    page = client.get("/sessions")
    assert page.status_code == 403
    assert "OnDemand sessions are not enabled for your user" in _text(page)
    assert 'href="/sessions"' not in _text(client.get("/my-devices"))  # not in the sidebar either

    enable_ondemand(user, account.id, with_role=False)
    page = client.get("/sessions")
    assert page.status_code == 403
    assert "No OnDemand role assignment applies to you now." in _text(page)
    assert client.post("/sessions", data={"csrf_token": _token(client, "/my-devices")}).status_code == 403
    assert 'href="/sessions"' not in _text(client.get("/my-devices"))  # a page that would say 403

    enable_ondemand(user, account.id)
    page = client.get("/sessions")
    assert page.status_code == 200
    assert "Create session" in _text(page)
    assert re.search(r'<a href="/sessions" class="active" aria-current="page"', _text(page))
    assert 'href="/sessions"' in _text(client.get("/my-devices"))  # in the sidebar everywhere


def test_a_user_without_the_switch_does_not_see_my_sessions_in_the_menu(client, factory):
    account = factory.account()
    user = factory.user(account, "user")
    sign_in(client, user.username)
    body = _text(client.get("/my-devices"))
    assert "My devices" in body and "My sessions" not in body


# --- create, the key, the link, email ------------------------------------------------------------

def test_create_session_shows_the_grouped_key_and_the_absolute_link_and_is_audited(client, tech):
    row = _create(client)
    assert re.fullmatch(r"\d{9}", row.key)
    assert row.state is OnDemandState.created and row.user_id == tech.id
    assert row.expires_at - row.created_at == timedelta(hours=24)
    assert len(row.link_token) >= 32  # token_urlsafe(24): 192 bits

    page = client.get(f"/sessions?session={row.id}")
    body = _text(page)
    grouped = f"{row.key[:3]} {row.key[3:6]} {row.key[6:]}"
    assert row.grouped_key == grouped
    assert f'<p class="ondemand-key" id="session-key">{grouped}</p>' in body
    assert f'value="http://localhost/ondemand/{row.link_token}"' in body
    assert 'data-copy-target="#session-link"' in body and "Copy link" in body
    assert "ondemand/sessions.js" in body and 'type="module"' in body
    assert page.headers["Cache-Control"] == "no-store"
    created = _audit("ondemand.created")
    assert [e.target for e in created] == [grouped]


def test_create_without_the_form_token_changes_nothing(client, tech):
    from app.extensions import db

    response = client.post("/sessions", data={})
    assert response.status_code == 400
    assert db.session.scalars(select(OnDemandSession)).all() == []


def test_two_sessions_have_different_keys_and_links(client, tech):
    first, second = _create(client), _create(client)
    assert first.key != second.key and first.link_token != second.link_token


def test_send_link_by_email_through_a_real_smtp_listener(app, client, tech, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    row = _create(client)
    response = client.post(f"/sessions/{row.id}/email",
                           data={"csrf_token": _token(client), "email": "Visitor@Example.com"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/sessions?session={row.id}")
    message = smtp_server.wait_for("visitor@example.com", "remote support session")
    text = message.get_body(("plain",)).get_content()
    assert f"http://localhost/ondemand/{row.link_token}" in text
    assert row.grouped_key in text
    assert "Warning: this lets" in text and "see your screen" in text
    html = message.get_body(("html",)).get_content()
    assert f'href="http://localhost/ondemand/{row.link_token}"' in html

    from app.extensions import db

    db.session.refresh(row)
    assert row.emailed_to == "visitor@example.com"
    emailed = _audit("ondemand.emailed")
    assert len(emailed) == 1 and '"to": "visitor@example.com"' in emailed[0].details
    assert "The link and the key were sent to visitor@example.com" in _text(client.get(response.headers["Location"]))


def test_a_bad_address_is_a_form_error_and_nothing_is_sent(app, client, tech, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    row = _create(client)
    response = client.post(f"/sessions/{row.id}/email", data={"csrf_token": _token(client), "email": "not an address"})
    assert response.status_code == 422
    body = _text(response)
    assert 'class="field has-error"' in body and "not a valid email address" in body
    assert smtp_server.messages == [] and _audit("ondemand.emailed") == []


def test_a_mail_server_that_is_down_gives_the_email_not_sent_page(app, client, tech):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nobody listens there
    row = _create(client)
    response = client.post(f"/sessions/{row.id}/email", data={"csrf_token": _token(client), "email": "ann@example.com"})
    assert response.status_code == 503
    assert "Email not sent" in _text(response)
    from app.extensions import db

    db.session.refresh(row)
    assert row.emailed_to == "" and _audit("ondemand.emailed") == []


def test_a_used_key_is_not_emailed(app, client, tech, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    row = make_waiting(_create(client))
    response = client.post(f"/sessions/{row.id}/email", data={"csrf_token": _token(client), "email": "ann@example.com"})
    assert response.status_code == 303
    assert "was used or has expired" in _text(client.get(response.headers["Location"]))
    assert smtp_server.messages == []


# --- the queue -------------------------------------------------------------------------------------

def test_the_queue_partial_shows_visitors_escaped_with_permissions_and_start(client, tech):
    waiting = make_waiting(_create(client), hostname="<script>alert(1)</script>", os_name="Debian <b>12</b>",
                           user="ann & bob", at=None)
    age(waiting, connected=timedelta(minutes=7))
    active = make_active(make_waiting(_create(client), hostname="pc-active"), granted=["view_screen", "keyboard_mouse"])
    unused = _create(client)

    response = client.get("/sessions/queue", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store"
    body = _text(response)
    assert body.lstrip().startswith('<section class="panel ondemand-queue" id="ondemand-queue"')
    assert "<html" not in body and 'hx-trigger="every 3s"' in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "Debian &lt;b&gt;12&lt;/b&gt;" in body and "ann &amp; bob" in body

    rows = re.findall(r'<tr data-session-id="(\d+)" data-state="(\w+)"', body)
    assert rows == [(str(waiting.id), "waiting"), (str(active.id), "active"), (str(unused.id), "created")]
    waiting_row = body[body.index(f'data-session-id="{waiting.id}"'):body.index(f'data-session-id="{active.id}"')]
    assert "waiting 7 minutes" in waiting_row
    assert f'href="/sessions/{waiting.id}/console" target="_blank" rel="noopener" data-action="start"' in waiting_row
    assert waiting.grouped_key in waiting_row
    active_row = body[body.index(f'data-session-id="{active.id}"'):body.index(f'data-session-id="{unused.id}"')]
    assert 'data-action="start"' not in active_row
    assert re.search(r'<li title="View screen" data-permission="view_screen">.*?<span class="visually-hidden">View screen</span>',
                     active_row, re.S)
    assert 'data-permission="keyboard_mouse"' in active_row and "Keyboard and mouse" in active_row
    unused_row = body[body.index(f'data-session-id="{unused.id}"'):]
    assert "expires in 23 hours" in unused_row and f"/sessions?session={unused.id}" in unused_row

    plain = client.get("/sessions/queue")
    assert plain.status_code == 303 and plain.headers["Location"].endswith("/sessions")


def test_reject_removes_the_row_and_voids_the_key(client, tech):
    from app.extensions import db

    row = make_waiting(_create(client))
    key, row_id = row.key, row.id
    response = client.post(f"/sessions/{row_id}/reject", data={"csrf_token": _token(client)},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert f'data-session-id="{row_id}"' not in _text(response)
    assert 'id="ondemand-queue"' in _text(response)
    db.session.expire_all()
    assert db.session.get(OnDemandSession, row_id) is None
    rejected = _audit("ondemand.rejected")
    assert len(rejected) == 1 and rejected[0].target == f"{key[:3]} {key[3:6]} {key[6:]}"

    # The key no longer leads anywhere.
    public = client.post("/ondemand", data={"csrf_token": _token(client, "/ondemand"), "key": key})
    assert public.status_code == 422


def test_reject_without_htmx_comes_back_to_the_page(client, tech):
    row = _create(client)
    response = client.post(f"/sessions/{row.id}/reject", data={"csrf_token": _token(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/sessions")
    assert "its key no longer works" in _text(client.get("/sessions"))


def test_another_technicians_session_does_not_exist_for_me(client, factory, tech):
    from app.extensions import db
    from app.models import Account

    colleague = factory.user(db.session.get(Account, tech.account_id), "administrator")
    theirs = new_session(colleague, tech.account_id)
    token = _token(client)
    assert client.post(f"/sessions/{theirs.id}/reject", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/sessions/{theirs.id}/email", data={"csrf_token": token, "email": "a@example.com"}).status_code == 404
    page = _text(client.get(f"/sessions?session={theirs.id}"))
    assert theirs.key[:3] + " " not in page and theirs.link_token not in page
    assert db.session.get(OnDemandSession, theirs.id) is not None


def test_expired_keys_and_sessions_waiting_too_long_vanish_when_the_queue_loads(client, tech):
    from app.extensions import db

    old_key, long_wait, fresh = _create(client), _create(client), _create(client)
    age(old_key, created=timedelta(hours=25))
    age(make_waiting(long_wait), connected=timedelta(minutes=61))
    age(make_waiting(fresh), connected=timedelta(minutes=59))
    gone = {old_key.id, long_wait.id}

    body = _text(client.get("/sessions/queue", headers={"HX-Request": "true"}))
    assert f'data-session-id="{fresh.id}"' in body
    assert all(f'data-session-id="{i}"' not in body for i in gone)
    db.session.expire_all()
    assert all(db.session.get(OnDemandSession, i) is None for i in gone)
    reasons = sorted(e.details for e in _audit("ondemand.expired"))
    assert len(reasons) == 2
    assert any("more than an hour" in r for r in reasons) and any("within 24 hours" in r for r in reasons)


# --- the public key page ------------------------------------------------------------------------

def _try_key(client, key, address="198.51.100.7"):
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/ondemand", data={"csrf_token": _token(client, "/ondemand"), "key": key})


def test_a_valid_key_leads_to_the_link_page_and_is_audited_with_its_account(app, factory):
    from app.extensions import db

    account = factory.account()
    row = new_session(factory.user(account, "user"), account.id)
    visitor = app.test_client()
    page = visitor.get("/ondemand")
    assert page.status_code == 200 and 'name="key"' in _text(page)
    assert 'class="sidebar"' not in _text(page)

    response = _try_key(visitor, f" {row.key[:3]}-{row.key[3:6]} {row.key[6:]} ")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/ondemand/{row.link_token}")
    tried = _audit("ondemand.key_tried")
    assert len(tried) == 1
    assert tried[0].account_id == account.id and '"ok": true' in tried[0].details
    assert tried[0].ip == "198.51.100.7" and '"address": "198.51.100.7"' in tried[0].details
    assert db.session.get(OnDemandSession, row.id).state is OnDemandState.created  # not spent by looking


def test_a_wrong_key_is_a_form_error_audited_without_an_account(app, factory):
    account = factory.account()
    row = new_session(factory.user(account, "user"), account.id)
    wrong = f"{(int(row.key) + 1) % 10 ** 9:09d}"
    visitor = app.test_client()
    for typed in (wrong, "12345", "abc def ghi"):
        response = _try_key(visitor, typed)
        assert response.status_code == 422
        assert "This session key is not valid" in _text(response)
        assert 'class="field has-error"' in _text(response)
    tried = _audit("ondemand.key_tried")
    assert len(tried) == 3
    assert all(e.account_id is None and '"ok": false' in e.details for e in tried)


def test_a_used_key_is_refused_with_its_reason(app, factory):
    account = factory.account()
    row = make_waiting(new_session(factory.user(account, "user"), account.id))
    response = _try_key(app.test_client(), row.key)
    assert response.status_code == 422 and "already used" in _text(response)
    tried = _audit("ondemand.key_tried")
    assert tried[-1].account_id == account.id and '"ok": false' in tried[-1].details


def test_a_guessing_run_from_one_address_gets_429(app, factory):
    app.config["ONDEMAND_KEY_LIMIT_PER_ADDRESS"] = "5 per 10 minutes"
    app.config["ONDEMAND_KEY_LIMIT_GLOBAL"] = "1000 per hour"
    account = factory.account()
    row = new_session(factory.user(account, "user"), account.id)
    attacker = app.test_client()
    answers = [_try_key(attacker, f"{n:09d}", address="203.0.113.66").status_code for n in range(8)]
    assert answers[:5] == [422] * 5 and answers[5:] == [429] * 3
    throttled = _try_key(attacker, row.key, address="203.0.113.66")  # even the right key now
    assert throttled.status_code == 429
    assert "Too many session keys were tried" in _text(throttled) and throttled.headers.get("Retry-After")
    # Someone else, from another address, is not held up by the attacker.
    assert _try_key(app.test_client(), row.key, address="192.0.2.10").status_code == 303
    assert len(_audit("ondemand.key_tried")) == 6  # refused by the limiter before any key was looked at
    throttled = _audit("ondemand.key_throttled")   # ...and audited as such, every one of them
    assert len(throttled) == 4 and all(e.account_id is None and "203.0.113.66" in e.details for e in throttled)


def test_the_global_counter_throttles_a_run_spread_over_many_addresses(app, factory):
    app.config["ONDEMAND_KEY_LIMIT_PER_ADDRESS"] = "100 per 10 minutes"
    app.config["ONDEMAND_KEY_LIMIT_GLOBAL"] = "4 per hour"
    answers = [_try_key(app.test_client(), f"{n:09d}", address=f"203.0.113.{n + 1}").status_code for n in range(6)]
    assert answers == [422, 422, 422, 422, 429, 429]


def test_the_key_page_get_is_not_counted(app):
    app.config["ONDEMAND_KEY_LIMIT_PER_ADDRESS"] = "2 per 10 minutes"
    visitor = app.test_client()
    for _ in range(5):
        assert visitor.get("/ondemand").status_code == 200


# --- the public link page -------------------------------------------------------------------------

@pytest.fixture
def link_row(factory):
    account = factory.account(company="Acme's \"Best\" $(support)")
    return new_session(factory.user(account, "user"), account.id)


def _understood(client, row, ua=LINUX_UA):
    token = _token(client, f"/ondemand/{row.link_token}")
    response = client.post(f"/ondemand/{row.link_token}", data={"csrf_token": token, "understand": "y"},
                           headers={"User-Agent": ua})
    assert response.status_code == 303
    return response.headers["Location"]


def test_the_link_page_warns_and_asks_i_understand_before_the_download(app, link_row):
    visitor = app.test_client()
    first = visitor.get(f"/ondemand/{link_row.link_token}", headers={"User-Agent": LINUX_UA})
    body = _text(first)
    assert first.status_code == 200
    assert "This lets someone control this computer." in body
    assert "Acme&#39;s &#34;Best&#34; $(support)" in body  # the company name, escaped
    assert 'name="understand"' in body and "I understand" in body
    assert "download/linux" not in body and link_row.grouped_key not in body and "data:image/svg+xml" not in body
    assert first.headers["Referrer-Policy"] == "no-referrer" and first.headers["Cache-Control"] == "no-store"

    unticked = visitor.post(f"/ondemand/{link_row.link_token}",
                            data={"csrf_token": _token(visitor, f"/ondemand/{link_row.link_token}")})
    assert unticked.status_code == 422 and "Tick the box" in _text(unticked)

    location = _understood(visitor, link_row)
    assert urlsplit(location).path == f"/ondemand/{link_row.link_token}"
    assert parse_qs(urlsplit(location).query)["understood"]
    second = visitor.get(location, headers={"User-Agent": LINUX_UA})
    body = _text(second)
    assert second.status_code == 200
    assert f'href="/ondemand/{link_row.link_token}/download/linux"' in body and "Download for Linux" in body
    assert f"bash tessera-ondemand-{link_row.key}.sh" in body
    assert f'<p class="ondemand-key" id="session-key">{link_row.grouped_key}</p>' in body
    open_url = f"tessera-ondemand://connect?server=http%3A%2F%2Flocalhost&amp;key={link_row.key}"
    assert f'id="open-app" href="{open_url}"' in body
    qr = re.search(r'<img class="qr" id="link-qr" src="(data:image/svg\+xml[^"]+)"', body)
    assert qr and "%3Csvg" in qr.group(1)
    assert "img-src 'self' data:" in second.headers["Content-Security-Policy"]
    # The other platforms are listed as planned.
    assert re.search(r'data-platform="windows"><strong>Windows</strong>\s*<span class="badge">Planned</span>', body)
    assert re.search(r'data-platform="macos"><strong>macOS</strong>\s*<span class="badge">Planned</span>', body)

    # A tampered or missing "understood" is step one again.
    assert 'name="understand"' in _text(visitor.get(f"/ondemand/{link_row.link_token}?understood=forged"))


def test_the_qr_code_holds_the_link(app, link_row):
    segno = pytest.importorskip("segno")
    expected = segno.make(f"http://localhost/ondemand/{link_row.link_token}", error="m", micro=False)
    visitor = app.test_client()
    body = _text(visitor.get(_understood(visitor, link_row)))
    assert expected.svg_data_uri(scale=4, border=2, dark="#111", light="#fff").replace("&", "&amp;") in body


@pytest.mark.parametrize("ua, platform", [
    (LINUX_UA, "linux"), (CROS_UA, "linux"), (WINDOWS_UA, "windows"), (MAC_UA, "macos"),
    (ANDROID_UA, None), (IPHONE_UA, None), ("", None), ("curl/8.5.0", None),
])
def test_platform_detection(ua, platform):
    assert links.detect_platform(ua) == platform


def test_a_windows_visitor_reads_planned_and_can_choose_linux(app, link_row):
    visitor = app.test_client()
    location = _understood(visitor, link_row, ua=WINDOWS_UA)
    body = _text(visitor.get(location, headers={"User-Agent": WINDOWS_UA}))
    assert 'id="platform-planned" data-platform="windows"' in body and "planned, but not available yet" in body
    assert "download/linux" not in body
    choose = re.search(r'<li class="platform" data-platform="linux"><strong>Linux</strong>\s*<a href="([^"]+)"', body)
    assert choose, body
    chosen = _text(visitor.get(choose.group(1).replace("&amp;", "&"), headers={"User-Agent": WINDOWS_UA}))
    assert f'href="/ondemand/{link_row.link_token}/download/linux"' in chosen


def test_a_phone_visitor_is_told_to_open_the_page_on_the_computer(app, link_row):
    visitor = app.test_client()
    body = _text(visitor.get(_understood(visitor, link_row, ua=IPHONE_UA), headers={"User-Agent": IPHONE_UA}))
    assert 'id="platform-unknown"' in body and "Choose your computer" in body


def test_a_signed_in_reader_sees_the_bare_public_page(client, tech):
    row = _create(client)
    body = _text(client.get(f"/ondemand/{row.link_token}"))
    assert 'class="sidebar"' not in body and "This lets someone control this computer." in body


def test_unknown_used_and_expired_links_say_to_ask_for_a_new_one(app, factory):
    visitor = app.test_client()
    unknown = visitor.get("/ondemand/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert unknown.status_code == 404 and "Ask the technician who sent it for a new link" in _text(unknown)
    assert visitor.get("/ondemand/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/download/linux").status_code == 404

    account = factory.account()
    user = factory.user(account, "user")
    used = make_waiting(new_session(user, account.id))
    for path in (f"/ondemand/{used.link_token}", f"/ondemand/{used.link_token}/download/linux"):
        answer = visitor.get(path)
        assert answer.status_code == 410 and "already used" in _text(answer)
        assert "Ask the technician for a new link" in _text(answer)
    expired = new_session(user, account.id)
    age(expired, created=timedelta(hours=24, seconds=1))
    answer = visitor.get(f"/ondemand/{expired.link_token}")
    assert answer.status_code == 410 and "has expired" in _text(answer)


# --- the Linux launcher -----------------------------------------------------------------------------

def test_the_linux_launcher_carries_quoted_values_and_is_valid_bash(app, link_row):
    from app.extensions import db
    from app.models import Account

    app.config["AGENT_PIP_SPEC"] = "tessera-agent==0.1.0"  # no wheel build for this test
    account = db.session.get(Account, link_row.account_id)
    account.logo_square, account.logo_square_type = b"\x89PNG fake", "image/png"
    db.session.commit()
    response = app.test_client().get(f"/ondemand/{link_row.link_token}/download/linux")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/x-shellscript")
    assert response.headers["Content-Disposition"] == f'attachment; filename="tessera-ondemand-{link_row.key}.sh"'
    assert response.headers["Cache-Control"] == "no-store"
    script = _text(response)
    assert script.startswith("#!/usr/bin/env bash\n")
    assert f"PORTAL_URL={shlex.quote('http://localhost')}\n" in script
    assert f"SESSION_KEY={link_row.key}\n" in script
    assert f"ACCOUNT_NAME={shlex.quote(account.company)}\n" in script
    assert f"LOGO_URL=http://localhost/account/{account.id}/logo/square\n" in script
    assert "DEFAULT_PIP_SPEC=tessera-agent==0.1.0\n" in script
    assert "MimeType=x-scheme-handler/tessera-ondemand;" in script
    assert "xdg-mime default tessera-ondemand.desktop x-scheme-handler/tessera-ondemand" in script
    assert 'exec "$COMMAND" "${args[@]}"' in script
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr
    # The shell reads back exactly the values the Portal put in.
    values = subprocess.run(["bash", "-c", script.split("set -euo pipefail\n", 1)[1].split("\nfail()", 1)[0]
                             + '\nprintf "%s\\n" "$PORTAL_URL" "$SESSION_KEY" "$ACCOUNT_NAME" "$LOGO_URL"'],
                            text=True, capture_output=True, env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin"})
    assert values.stdout.splitlines() == ["http://localhost", link_row.key, account.company,
                                          f"http://localhost/account/{account.id}/logo/square"]


def test_the_linux_launcher_downloads_the_portals_wheel_by_default(app, link_row):
    from app.downloads import agent_wheel

    wheel = agent_wheel.wheel_for_app(app)
    script = _text(app.test_client().get(f"/ondemand/{link_row.link_token}/download/linux"))
    assert f"AGENT_WHEEL_URL=http://localhost/downloads/agent/{wheel.filename}\n" in script
    assert f"AGENT_WHEEL_SHA256={wheel.sha256}\n" in script
    assert "DEFAULT_PIP_SPEC=''\n" in script
    assert 'Tessera OnDemand: could not download' in script  # the shared download step, named for this script
