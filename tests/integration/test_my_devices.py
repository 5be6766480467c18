"""My devices: exactly the devices some applying assignment lets the user reach now, with the
default remote control action, favourites first, and an empty state that says why."""
from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from app.extensions import db
from app.models import EnrolmentState, GroupKind, Membership
from tests.integration import access_world as w


def _member(user):
    return db.session.scalar(select(Membership).where(Membership.user_id == user.id))


def _rows(response) -> list[str]:
    body = response.get_data(as_text=True)
    return re.findall(r'<td data-column="name"><b>([^<]+)</b>', body)


def _favourites(response) -> list[str]:
    return re.findall(r'<li data-device="\d+"><b>([^<]+)</b>', response.get_data(as_text=True))


def test_empty_state_when_no_assignment_reaches_any_device(client, login_as):
    user = login_as("user")
    w.device(_member(user).account, "unreachable-pc")
    page = client.get("/my-devices").get_data(as_text=True)
    assert 'id="my-devices-empty"' in page and "No devices yet" in page
    assert "unreachable-pc" not in page


def test_lists_exactly_the_reachable_devices_favourites_first_with_the_default_action(client, login_as):
    user = login_as("user")
    member = _member(user)
    account = member.account
    member.default_action = "viewer"
    db.session.commit()
    alpha, bravo, charlie, delta = (w.device(account, name) for name in ("alpha", "bravo", "charlie", "delta"))
    w.device(account, "pending-pc", state=EnrolmentState.pending)
    w.device(account, "revoked-pc", revoked=True)
    team = w.group(account, "Team", members=[member])
    mine = w.group(account, "Mine", GroupKind.device, devices=[alpha, bravo, charlie])
    w.group(account, "Not mine", GroupKind.device, devices=[delta])
    w.assignment(account, "Team devices", w.role(account, "Support"), user_groups=[team], device_groups=[mine])
    w.favourite(user, charlie)

    response = client.get("/my-devices")

    # Favourites first (only those within reach), then every reachable device by name.
    assert _favourites(response) == ["charlie"]
    assert _rows(response) == ["alpha", "bravo", "charlie"]
    page = re.sub(r"\s+", " ", response.get_data(as_text=True))
    assert page.index("Favourites") < page.index("All my devices")
    assert "1 - 3 of 3" in page
    assert page.count('data-action="viewer"') == 4
    assert "Remote control opens with: <b>Control with the installed viewer</b>" in page


def test_a_favourite_out_of_reach_is_not_shown(client, login_as):
    user = login_as("user")
    account = _member(user).account
    near, far = w.device(account, "near"), w.device(account, "far")
    w.assignment(account, "Near only", w.role(account, "Support"), everyone=True,
                 device_groups=[w.group(account, "Near", GroupKind.device, devices=[near])])
    w.favourite(user, far)
    response = client.get("/my-devices")
    assert _favourites(response) == [] and _rows(response) == ["near"]


def test_scheduled_assignments_only_show_devices_inside_the_schedule(client, login_as):
    user = login_as("user")
    account = _member(user).account
    w.device(account, "night-pc")
    # A schedule that ended long ago never covers now.
    over = w.schedule(account, "Over", end_date=date(2024, 1, 2))
    w.assignment(account, "Old", w.role(account, "Support"), everyone=True, everything=True, schedule=over)
    assert 'id="my-devices-empty"' in client.get("/my-devices").get_data(as_text=True)


def test_filtering_to_favourites_keeps_the_listing_and_htmx_gets_the_partial(client, login_as):
    user = login_as("user")
    account = _member(user).account
    one, two = w.device(account, "one"), w.device(account, "two")
    w.assignment(account, "All", w.role(account, "Support"), everyone=True, everything=True)
    w.favourite(user, two)

    assert _rows(client.get("/my-devices?f.favourite=yes")) == ["two"]
    partial = client.get("/my-devices?f.favourite=no", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert _rows(partial) == ["one"] and "<html" not in body and partial.headers["Vary"].startswith("HX-Request")


def test_presence_updates_only_what_the_user_may_reach_and_escapes_what_the_agent_said(client, login_as):
    """The pollers on My devices ask /devices/presence; the answer is out-of-band swaps for the
    devices the user may reach, never for others, with agent-reported text escaped."""
    user = login_as("user")
    member = _member(user)
    account = member.account
    mine_pc, other_pc = w.device(account, "mine-pc"), w.device(account, "other-pc")
    team = w.group(account, "Team", members=[member])
    mine = w.group(account, "Mine", GroupKind.device, devices=[mine_pc])
    w.assignment(account, "Team devices", w.role(account, "Support"), user_groups=[team], device_groups=[mine])

    page = client.get("/my-devices").get_data(as_text=True)
    poller = re.search(r'hx-get="(/devices/presence\?ids=[^"]+)" hx-trigger="every 10s" hx-swap="none"', page)
    assert poller, "My devices polls the presence of its rows"
    assert f"presence-status-{mine_pc.id}" in page

    mine_pc.online, mine_pc.logged_in_user = True, "<b>eve</b>"
    other_pc.online = True
    db.session.commit()
    answer = client.get(f"/devices/presence?ids={mine_pc.id},{other_pc.id}")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.get_data(as_text=True)
    assert f'hx-swap-oob="outerHTML:.presence-status-{mine_pc.id}"' in body
    assert "Online" in body and "&lt;b&gt;eve&lt;/b&gt;" in body and "<b>eve</b>" not in body
    assert f"presence-status-{other_pc.id}" not in body, "a device out of reach is not reported"


def test_presence_refuses_bad_id_lists(client, login_as):
    login_as("user")
    for query in ("", "?ids=", "?ids=1,x", "?ids=" + ",".join(str(i) for i in range(1, 202))):
        response = client.get(f"/devices/presence{query}")
        assert response.status_code == 400, query
