"""Role assignments and Schedules pages: listing with status, add/edit/remove one or many,
applying a schedule to several assignments, the rules (OnDemand, duplicates, foreign ids) with
clear errors and nothing half-written, and the audit trail."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.extensions import db
from app.models import Assignment, AuditEvent, GroupKind, Membership, Recurrence, RoleType, Schedule
from tests.conftest import csrf_token
from tests.integration import access_world as w


def _account(user):
    return db.session.scalar(select(Membership).where(Membership.user_id == user.id)).account


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def _count(model, account) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(model.account_id == account.id))


def _actions(account) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.account_id == account.id)
                                    .order_by(AuditEvent.id)))


def test_listing_shows_sides_roles_schedules_and_status_in_the_schedules_zone(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    role = w.role(account, "Helpdesk role")
    team = w.group(account, "Team")
    lab = w.group(account, "Lab", GroupKind.device)
    now = datetime.now(timezone.utc)
    # Kiritimati (UTC+14) is always a day or two ahead of Pago Pago (UTC-11): "today in
    # Kiritimati" is covered there and never in Pago Pago, whatever the hour of the test.
    kiri_today = now.astimezone(ZoneInfo("Pacific/Kiritimati")).date()
    here = w.schedule(account, "Kiritimati today", timezone="Pacific/Kiritimati", start_date=kiri_today,
                      end_date=kiri_today)
    there = w.schedule(account, "Pago Pago that day", timezone="Pacific/Pago_Pago", start_date=kiri_today,
                       end_date=kiri_today)
    w.assignment(account, "On now", role, everyone=True, everything=True, schedule=here)
    w.assignment(account, "Off now", role, user_groups=[team], device_groups=[lab], schedule=there)
    w.assignment(account, "Switched off", role, everyone=True, everything=True, active=False)
    w.assignment(account, "Orphan", None, everyone=True, everything=True, active=False,
                 disabled_reason="Role removed")

    page = _text(client.get("/role-assignments/?rows=25"))

    assert "On now" in page and "Active, due to schedule" in page
    assert re.search(r"Off now.*?Team.*?Lab.*?Pago Pago that day.*?Not active, due to schedule", page)
    assert re.search(r"On now.*?Everyone.*?Everything", page)
    assert "Disabled: Role removed" in page
    assert re.search(r"Switched off.*?Not active<", page)
    assert 'href="/role-assignments/new"' in page


def test_group_manager_reads_the_listing_without_change_controls(client, login_as):
    manager = login_as("group_manager")
    account = _account(manager)
    w.assignment(account, "Visible", w.role(account, "R"), everyone=True, everything=True)
    page = _text(client.get("/role-assignments/"))
    assert "Visible" in page
    assert "Add role assignment" not in page and "/role-assignments/remove" not in page


def _form(client, **fields):
    data = {"csrf_token": csrf_token(client, "/role-assignments/new"), "active": "y"}
    data.update(fields)
    return data


def test_adding_an_assignment_with_groups_and_a_schedule(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    role = w.role(account, "Support")
    team = w.group(account, "Team")
    ldap = w.group(account, "cn=ops", GroupKind.ldap)
    lab = w.group(account, "Lab", GroupKind.device)
    office = w.office_hours(account)

    response = client.post("/role-assignments/new", data=_form(
        client, name="Team on lab", role=str(role.id), user_groups=[str(team.id), str(ldap.id)],
        device_groups=[str(lab.id)], schedule=str(office.id), description="Weekdays only"))

    assert response.status_code == 302
    made = db.session.scalar(select(Assignment).where(Assignment.name == "Team on lab"))
    assert made.role is role and made.schedule is office and made.active
    assert sorted(g.name for g in made.user_groups) == ["Team", "cn=ops"]
    assert [g.name for g in made.device_groups] == ["Lab"]
    assert not made.everyone and not made.everything
    assert _actions(account)[-1] == "assignment.created"
    assert "Team on lab" in _text(client.get("/role-assignments/"))


def test_ondemand_role_refuses_devices_with_a_clear_message_and_writes_nothing(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    ondemand = w.role(account, "OnDemand helpers", RoleType.ondemand, permissions=["chat"])

    response = client.post("/role-assignments/new", data=_form(
        client, name="OD", role=str(ondemand.id), everyone="y", everything="y"))

    assert response.status_code == 422
    assert "is an OnDemand role" in _text(response) and "leave the device groups and Everything empty" in _text(response)
    assert _count(Assignment, account) == 0
    ok = client.post("/role-assignments/new", data=_form(client, name="OD", role=str(ondemand.id), everyone="y"))
    assert ok.status_code == 302
    page = _text(client.get("/role-assignments/"))
    assert "None (OnDemand)" in page


def test_duplicate_names_missing_sides_and_foreign_ids_are_refused_and_nothing_is_written(client, login_as, factory):
    admin = login_as("administrator")
    account = _account(admin)
    role = w.role(account, "Support")
    w.assignment(account, "Existing", role, everyone=True, everything=True)
    other = factory.account()
    their_group = w.group(other, "Theirs", GroupKind.device)
    their_role = w.role(other, "Their role")
    their_schedule = w.schedule(other, "Their schedule")

    cases = [
        (dict(name="existing", role=str(role.id), everyone="y", everything="y"), 409, "exists already"),
        (dict(name="New", role=str(role.id), everything="y"), 422, "Choose Everyone or at least one user group"),
        (dict(name="New", role=str(role.id), everyone="y"), 422, "Choose Everything or at least one device group"),
        (dict(name="New", role=str(their_role.id), everyone="y", everything="y"), 422, "Choose a role of this account"),
        (dict(name="New", role=str(role.id), everyone="y", device_groups=[str(their_group.id)]), 422,
         "One of the chosen device groups does not exist in this account"),
        (dict(name="New", role=str(role.id), everyone="y", everything="y", schedule=str(their_schedule.id)), 422,
         "Choose a schedule of this account"),
        (dict(name="  ", role=str(role.id), everyone="y", everything="y"), 422, "Give the role assignment a name"),
    ]
    for fields, status, message in cases:
        response = client.post("/role-assignments/new", data=_form(client, **fields))
        assert response.status_code == status, (fields, _text(response)[:300])
        assert message in _text(response), fields
    assert _count(Assignment, account) == 1
    assert "assignment.created" not in _actions(account)


def test_editing_changes_everything_and_clears_a_system_disable(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    old, new = w.role(account, "Old"), w.role(account, "New")
    team = w.group(account, "Team")
    made = w.assignment(account, "Edit me", old, everyone=True, everything=True, active=False,
                        disabled_reason="Every whitelisted application is disabled")
    form = client.get(f"/role-assignments/{made.id}/edit")
    assert "Edit me" in _text(form) and "Disabled: Every whitelisted application is disabled" in _text(form)

    response = client.post(f"/role-assignments/{made.id}/edit", data=_form(
        client, name="Edited", role=str(new.id), user_groups=[str(team.id)], everything="y"))

    assert response.status_code == 302
    db.session.expire_all()
    made = db.session.get(Assignment, made.id)
    assert (made.name, made.role.name, made.everyone, made.disabled_reason) == ("Edited", "New", False, "")
    assert [g.name for g in made.user_groups] == ["Team"]
    assert _actions(account)[-1] == "assignment.updated"


def test_another_accounts_assignment_cannot_be_opened_or_edited(client, login_as, factory):
    login_as("administrator")
    other = factory.account()
    theirs = w.assignment(other, "Theirs", w.role(other, "R"), everyone=True, everything=True)
    assert client.get(f"/role-assignments/{theirs.id}/edit").status_code == 404
    response = client.post(f"/role-assignments/{theirs.id}/edit", data=_form(client, name="Mine"))
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Assignment, theirs.id).name == "Theirs"


def test_remove_one_and_many_with_confirmation_and_all_or_nothing(client, login_as, factory):
    admin = login_as("administrator")
    account = _account(admin)
    role = w.role(account, "R")
    a, b, c = (w.assignment(account, n, role, everyone=True, everything=True) for n in ("A", "B", "C"))
    theirs = w.assignment(factory.account(), "X", None, everyone=True, everything=True)
    token = csrf_token(client, "/role-assignments/")

    confirm = client.get(f"/role-assignments/{a.id}/remove")
    assert "Remove 1 role assignment?" in _text(confirm)
    assert client.post(f"/role-assignments/{a.id}/remove", data={"csrf_token": token}).status_code == 302

    mixed = client.post("/role-assignments/remove", data={"csrf_token": token, "confirm": "yes",
                                                         "selected": [str(b.id), str(theirs.id)]})
    assert mixed.status_code == 404
    assert _count(Assignment, account) == 2

    step_one = client.post("/role-assignments/remove", data={"csrf_token": token, "selected": [str(b.id), str(c.id)]})
    assert "Remove 2 role assignments?" in _text(step_one)
    done = client.post("/role-assignments/remove", data={"csrf_token": token, "confirm": "yes",
                                                        "selected": [str(b.id), str(c.id)]})
    assert done.status_code == 302
    assert _count(Assignment, account) == 0
    assert _actions(account).count("assignment.removed") == 2


def test_one_schedule_applied_to_several_assignments_and_removed_again(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    role = w.role(account, "R")
    a, b = (w.assignment(account, n, role, everyone=True, everything=True) for n in ("A", "B"))
    office = w.office_hours(account)
    token = csrf_token(client, "/role-assignments/")
    selected = [str(a.id), str(b.id)]

    step_one = client.post("/role-assignments/schedule", data={"csrf_token": token, "selected": selected})
    assert "Schedule for 2 role assignments" in _text(step_one)
    client.post("/role-assignments/schedule", data={"csrf_token": token, "selected": selected, "confirm": "yes",
                                                   "schedule": str(office.id)})
    db.session.expire_all()
    assert {x.schedule_id for x in db.session.scalars(select(Assignment))} == {office.id}

    client.post("/role-assignments/schedule", data={"csrf_token": token, "selected": selected, "confirm": "yes",
                                                   "schedule": ""})
    db.session.expire_all()
    assert {x.schedule_id for x in db.session.scalars(select(Assignment))} == {None}
    assert _actions(account).count("assignment.schedule_set") == 2


# ------------------------------------------------------------------------------ schedules pages
def _schedule_form(client, **fields):
    data = {"csrf_token": csrf_token(client, "/role-assignments/schedules/new"), "name": "Weekly",
            "start_date": "2024-01-01", "timezone": "Europe/Copenhagen", "recurrence": "weekly",
            "interval": "1", "weekdays": ["0", "2"], "start_time": "09:00", "end_time": "17:00",
            "daily_mode": "every_n", "month_day": "1"}
    data.update(fields)
    return data


def test_adding_a_weekly_schedule_and_seeing_it_described(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    response = client.post("/role-assignments/schedules/new", data=_schedule_form(client), follow_redirects=True)
    assert response.status_code == 200
    made = db.session.scalar(select(Schedule).where(Schedule.account_id == account.id))
    assert (made.recurrence, made.weekdays, made.all_day) == (Recurrence.weekly, [0, 2], False)
    page = _text(client.get("/role-assignments/schedules"))
    assert "Every week on Monday and Wednesday, 09:00\u201317:00 (Europe/Copenhagen time), from 2024-01-01" in page
    assert "schedule.created" in _actions(account)


def test_bad_schedules_get_a_message_under_the_field_and_nothing_is_saved(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    w.schedule(account, "Taken")
    cases = [
        (dict(timezone="Mars/Olympus"), "Mars/Olympus is not a known timezone"),
        (dict(start_time="17:00", end_time="09:00"), "The end time must be after the start time"),
        (dict(end_date="2023-12-31"), "The end date cannot be before the start date"),
        (dict(weekdays=[]), "Choose at least one day of the week"),
        (dict(recurrence="monthly", month_day="40"), "Choose a day of the month from 1 to 31"),
        (dict(recurrence="fortnightly"), "Choose a recurrence from the list"),
        (dict(name="taken"), "exists already"),
        (dict(interval="0"), "The interval must be from 1 to 999"),
    ]
    for fields, message in cases:
        response = client.post("/role-assignments/schedules/new", data=_schedule_form(client, **fields))
        assert response.status_code in (409, 422), fields
        assert message in _text(response), (fields, _text(response)[-800:])
    assert _count(Schedule, account) == 1


def test_schedule_without_start_date_starts_today_in_its_zone(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    client.post("/role-assignments/schedules/new", data=_schedule_form(
        client, start_date="", recurrence="none", all_day="y", timezone="Pacific/Kiritimati"))
    made = db.session.scalar(select(Schedule).where(Schedule.account_id == account.id))
    assert made.start_date == datetime.now(ZoneInfo("Pacific/Kiritimati")).date()


def test_editing_a_schedule_and_removing_it_keeps_its_assignments_unscheduled(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    office = w.office_hours(account)
    a = w.assignment(account, "Uses it", w.role(account, "R"), everyone=True, everything=True, schedule=office)

    edit = client.get(f"/role-assignments/schedules/{office.id}/edit")
    assert "Used by Uses it" in _text(edit)
    response = client.post(f"/role-assignments/schedules/{office.id}/edit", data=_schedule_form(
        client, name="Office hours", recurrence="monthly", month_day="0", all_day="y"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Schedule, office.id).month_day == 0

    confirm = _text(client.get(f"/role-assignments/schedules/{office.id}/remove"))
    assert "Uses it" in confirm and "at all times" in confirm
    done = client.post(f"/role-assignments/schedules/{office.id}/remove",
                       data={"csrf_token": csrf_token(client, "/role-assignments/schedules")}, follow_redirects=True)
    assert "These assignments now apply at all times while active: Uses it." in _text(done)
    db.session.expire_all()
    assert db.session.get(Assignment, a.id).schedule_id is None
    assert _count(Schedule, account) == 0
    assert _actions(account)[-2:] == ["schedule.updated", "schedule.removed"]


def test_user_typed_names_are_escaped_on_every_page(client, login_as):
    admin = login_as("administrator")
    account = _account(admin)
    evil = "<script>alert(1)</script>"
    w.assignment(account, evil, w.role(account, evil), user_groups=[w.group(account, evil)], everything=True,
                 schedule=w.schedule(account, evil))
    for url in ("/role-assignments/", "/role-assignments/schedules"):
        body = client.get(url).get_data(as_text=True)
        assert evil not in body and "&lt;script&gt;" in body
