"""The dashboard's numbers against data the tests create, and the My devices empty state."""
from __future__ import annotations

import re
from datetime import timedelta

from app.models import AuditEvent, UserSession, utcnow
from tests.conftest import sign_in


def number(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*>\s*(\d+)\s*<', html)
    assert match, f"no #{element_id} on the page"
    return int(match.group(1))


def test_dashboard_counts_users_online_and_directory_users(app, db, client, factory):
    account = factory.account()
    other = factory.account()  # its users must not count
    factory.user(other, "user")
    ldap = [factory.user(account, "user") for _ in range(2)]
    saml = factory.user(account, "user")
    online = factory.user(account, "group_manager")
    for user in ldap:
        user.source = "ldap"
    saml.source = "saml"
    # A browser of someone seen long ago does not make them online.
    stale = factory.user(account, "user")
    db.session.add(UserSession(id="stale-session", user_id=stale.id, account_id=account.id,
                               session_version=1, created_at=utcnow() - timedelta(hours=2),
                               last_seen_at=utcnow() - timedelta(hours=1)))
    db.session.commit()

    second = app.test_client()
    sign_in(second, online.username)
    sign_in(client, account.owner.username)
    html = client.get("/dashboard").get_data(as_text=True)

    assert number(html, "users-total") == 6  # owner + 2 LDAP + SAML + manager + stale
    assert number(html, "users-online") == 2  # the owner and the manager in the second browser
    assert number(html, "users-ldap") == 2
    assert number(html, "users-saml") == 1
    assert number(html, "kpi-directory-users") == 3


def test_account_info_shows_company_owner_and_timezone(client, factory):
    account = factory.account("Nordic Widgets", timezone="Europe/Oslo")
    account.owner.first_name, account.owner.last_name = "Nora", "Nordmann"
    sign_in(client, account.owner.username)
    html = client.get("/dashboard").get_data(as_text=True)
    panel = html.split('id="panel-account"', 1)[1].split("</section>", 1)[0]
    assert "Nordic Widgets" in panel
    assert "Nora Nordmann" in panel and account.owner.email in panel
    assert "Europe/Oslo" in panel
    assert "No expiry" in panel


def expiry_cell(client) -> str:
    html = client.get("/dashboard").get_data(as_text=True)
    return re.search(r'<dd id="expiry" class="([^"]*)">(.*?)</dd>', html, re.S).group(0)


def test_expiry_date_turns_red_within_15_days(db, client, factory):
    account = factory.account()
    sign_in(client, account.owner.username)
    account.expires_at = utcnow() + timedelta(days=20)
    db.session.commit()
    assert 'class=""' in expiry_cell(client)
    account.expires_at = utcnow() + timedelta(days=14, hours=12)
    db.session.commit()
    cell = expiry_cell(client)
    assert 'class="red"' in cell and "14 days left" in cell
    assert (account.expires_at.strftime("%Y-%m-%d") in cell
            or (account.expires_at + timedelta(days=1)).strftime("%Y-%m-%d") in cell)


def test_trial_expiry_turns_red_only_within_7_days(db, client, factory):
    account = factory.account(is_trial=True)
    sign_in(client, account.owner.username)
    account.expires_at = utcnow() + timedelta(days=10)
    db.session.commit()
    cell = expiry_cell(client)
    assert 'class=""' in cell and "trial" in cell
    account.expires_at = utcnow() + timedelta(days=6, hours=12)
    db.session.commit()
    assert 'class="red"' in expiry_cell(client)


def test_expired_account_is_red_and_says_so(db, client, factory):
    account = factory.account()
    sign_in(client, account.owner.username)
    account.expires_at = utcnow() - timedelta(days=2)
    db.session.commit()
    cell = expiry_cell(client)
    assert 'class="red"' in cell and "expired" in cell


def test_activity_compares_this_week_with_the_week_before(db, client, factory):
    account = factory.account()
    other = factory.account()
    a, b, c = (factory.user(account, "user") for _ in range(3))
    now = utcnow()

    def event(user, action, days_ago, account_id=account.id):
        db.session.add(AuditEvent(at=now - timedelta(days=days_ago), account_id=account_id,
                                  actor_id=user.id, actor=user.username, action=action))

    event(a, "sign_in.success", 1)
    event(a, "sign_in.success", 2)  # the same person twice is one active user
    event(b, "sign_in.success", 3)
    event(c, "sign_in.failed", 1)  # failures are not activity
    event(c, "sign_in.success", 9)  # the week before
    event(c, "sign_in.success", 20)  # older: not counted at all
    event(a, "sign_in.success", 1, account_id=other.id)  # another account
    event(a, "session.started", 9)
    event(a, "session.started", 10)
    db.session.commit()

    sign_in(client, account.owner.username)  # the owner signs in now: a third active user
    html = client.get("/dashboard").get_data(as_text=True)
    active = html.split('id="activity-active-users"', 1)[1].split("</li>", 1)[0]
    sessions = html.split('id="activity-remote-sessions"', 1)[1].split("</li>", 1)[0]
    devices = html.split('id="activity-enrolled-devices"', 1)[1].split("</li>", 1)[0]
    assert '<strong class="trend-value">3</strong>' in active
    assert "2 more than the week before" in active
    assert '<strong class="trend-value">0</strong>' in sessions
    assert "2 fewer than the week before" in sessions
    assert '<strong class="trend-value">0</strong>' in devices
    assert "the same as the week before" in devices


def test_recent_events_and_logs_link_for_managers(client, login_as):
    user = login_as("group_manager")
    html = client.get("/dashboard").get_data(as_text=True)
    recent = html.split('id="panel-recent"', 1)[1].split("</section>", 1)[0]
    assert "sign_in.success" in recent and user.username in recent
    assert 'href="/logs/"' in html


def test_getting_started_links_all_open(client, login_as):
    login_as("group_manager")
    html = client.get("/dashboard").get_data(as_text=True)
    panel = html.split('id="panel-start"', 1)[1].split("</section>", 1)[0]
    links = re.findall(r'href="([^"]+)"', panel)
    assert links
    assert "/account/configuration" not in links  # a group manager may not open it
    for href in links:
        assert client.get(href).status_code == 200, href


def test_regular_user_cannot_open_the_dashboard(client, login_as):
    login_as("user")
    response = client.get("/dashboard")
    assert response.status_code == 403
    assert "You do not have permission" in response.get_data(as_text=True)


def test_my_devices_shows_a_real_empty_state(client, login_as):
    login_as("user")
    html = client.get("/my-devices").get_data(as_text=True)
    assert "No devices yet" in html
    assert "Devices appear here when an administrator assigns them to you" in html
