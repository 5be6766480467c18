"""Check permissions (B6): the page (user + device + date, time and timezone), and the
``tessera check-permissions`` and ``tessera assign`` commands, which use the same services."""
from __future__ import annotations

import json
import re

from sqlalchemy import select

from app.extensions import db
from app.models import Assignment, EnrolmentState, GroupKind, Membership, RoleType
from tests.integration import access_world as w


def _account(user):
    return db.session.scalar(select(Membership).where(Membership.user_id == user.id)).account


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def _world(account, factory):
    user = factory.user(account, "user", email="tech@example.com")
    member = w.membership_of(user, account)
    pc = w.device(account, "reception-pc")
    team = w.group(account, "Helpdesk", members=[member])
    front = w.group(account, "Front desk", GroupKind.device, devices=[pc])
    viewer = w.role(account, "Viewer", permissions=["view_screen", "chat"])
    w.assignment(account, "Helpdesk office hours", viewer, user_groups=[team], device_groups=[front],
                 schedule=w.office_hours(account))
    w.assignment(account, "Paused", w.role(account, "Files", permissions=["file_transfer"]), everyone=True,
                 everything=True, active=False)
    return user, pc


def test_the_page_lists_granted_permissions_with_their_assignments_and_why_others_do_not_apply(client, login_as, factory):
    manager = login_as("group_manager")
    account = _account(manager)
    _world(account, factory)

    # Monday 3 June 2024, 10:00 in Copenhagen: inside office hours.
    page = _text(client.get("/role-assignments/check?user=tech@example.com&device=reception-pc"
                            "&date=2024-06-03&time=10:00&timezone=Europe/Copenhagen"))
    assert "2 permissions granted." in page
    assert re.search(r"View screen</td><td>Helpdesk office hours <span class=\"muted\">\(Viewer\)", page)
    assert re.search(r"Chat</td><td>Helpdesk office hours", page)
    assert re.search(r"Paused.*?The assignment is not active\.", page)
    assert "File transfer" not in page

    # The same wall-clock moment read in New York is 16:00 in Copenhagen; 12:00 New York is 18:00.
    late = _text(client.get("/role-assignments/check?user=tech@example.com&device=reception-pc"
                            "&date=2024-06-03&time=12:00&timezone=America/New_York"))
    assert "No assignment grants anything to this user on this device at that time." in late
    assert "Outside its schedule \u201cOffice hours\u201d." in late


def test_the_page_explains_a_pending_device_and_refuses_unknown_names_and_zones(client, login_as, factory):
    admin = login_as("administrator")
    account = _account(admin)
    _world(account, factory)
    w.device(account, "new-pc", state=EnrolmentState.pending)

    pending = _text(client.get("/role-assignments/check?user=tech@example.com&device=new-pc"))
    assert "The device is pending: an administrator has to enroll it first." in pending

    unknown = client.get("/role-assignments/check?user=nobody@example.com&device=reception-pc")
    assert unknown.status_code == 404 and "No user &#39;nobody@example.com&#39; in this account." in _text(unknown)
    zone = client.get("/role-assignments/check?user=tech@example.com&device=reception-pc&timezone=Mars/Base")
    assert zone.status_code == 422 and "Mars/Base is not a known timezone." in _text(zone)


def test_users_and_devices_of_another_account_cannot_be_checked(client, login_as, factory):
    login_as("administrator")
    other = factory.account()
    _world(other, factory)
    response = client.get("/role-assignments/check?user=tech@example.com&device=reception-pc")
    assert response.status_code == 404
    assert "No user" in _text(response)


def test_the_page_opens_empty_with_now_in_the_accounts_zone(client, login_as):
    login_as("group_manager")
    page = _text(client.get("/role-assignments/check"))
    assert "What may a user do on a device, and when?" in page
    assert 'name="date" type="date" value="20' in page


# ------------------------------------------------------------------------------ CLI
def test_cli_check_permissions_prints_the_same_answer_as_json(app, factory):
    account = factory.account("Checkers")
    _world(account, factory)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["check-permissions", "--company", "Checkers", "--user", "tech@example.com",
                                 "--device", "reception-pc", "--at", "2024-06-03T10:00", "--tz", "Europe/Copenhagen"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data["granted"]) == ["view_screen", "chat"]
    assert data["granted"]["chat"][0]["assignment"] == "Helpdesk office hours"
    assert data["utc"] == "2024-06-03T08:00:00+00:00"
    paused = next(a for a in data["assignments"] if a["assignment"] == "Paused")
    assert paused["reasons"] == ["The assignment is not active."]

    outside = json.loads(runner.invoke(args=["check-permissions", "--company", "Checkers", "--user",
                                             "tech@example.com", "--device", "reception-pc", "--at",
                                             "2024-06-03T20:00:00+02:00"]).output)
    assert outside["granted"] == {}


def test_cli_check_permissions_fails_clearly_on_bad_input(app, factory):
    account = factory.account("Checkers")
    _world(account, factory)
    runner = app.test_cli_runner()
    base = ["check-permissions", "--company", "Checkers", "--user", "tech@example.com", "--device", "reception-pc"]
    for extra, message in ((["--at", "yesterday"], "is not an ISO-8601 date and time"),
                           (["--tz", "Nowhere/Land"], "Nowhere/Land is not a known timezone")):
        result = runner.invoke(args=base + extra)
        assert result.exit_code == 1 and message in result.output
    missing = runner.invoke(args=["check-permissions", "--company", "Nope", "--user", "x", "--device", "y"])
    assert missing.exit_code == 1 and "No account named 'Nope'" in missing.output


def test_cli_assign_creates_through_the_same_rules_as_the_page(app, factory):
    account = factory.account("Assigners")
    w.role(account, "Support")
    w.role(account, "OnDemand helpers", RoleType.ondemand, permissions=["chat"])
    w.group(account, "Team")
    w.group(account, "Lab", GroupKind.device)
    runner = app.test_cli_runner()

    ok = runner.invoke(args=["assign", "--company", "Assigners", "--name", "Team on lab", "--role", "support",
                             "--user-group", "Team", "--device-group", "Lab"])
    assert ok.exit_code == 0, ok.output
    made = db.session.scalar(select(Assignment).where(Assignment.name == "Team on lab"))
    assert [g.name for g in made.user_groups] == ["Team"] and [g.name for g in made.device_groups] == ["Lab"]

    failures = [
        (["--name", "Team on lab", "--role", "Support", "--everyone", "--everything"], "exists already"),
        (["--name", "X", "--role", "Nope", "--everyone", "--everything"], "No role named 'Nope'"),
        (["--name", "X", "--role", "Support", "--user-group", "Ghosts", "--everything"], "No user group named 'Ghosts'"),
        (["--name", "X", "--role", "Support", "--everyone"], "Choose Everything or at least one device group"),
        (["--name", "X", "--role", "OnDemand helpers", "--everyone", "--everything"], "is an OnDemand role"),
        (["--name", "X", "--role", "Support", "--everyone", "--user-group", "Team", "--everything"],
         "Choose Everyone or user groups, not both"),
    ]
    for extra, message in failures:
        result = runner.invoke(args=["assign", "--company", "Assigners", *extra])
        assert result.exit_code == 1, extra
        assert message in result.output, (extra, result.output)
    assert db.session.scalar(select(Assignment.id).where(Assignment.name == "X")) is None
