"""Applications through the pages: add, edit, remove, required and unique fields, other
accounts' ids, administrators only; and the cascade to role assignments: disabling or removing
the last enabled application of a whitelist role disables its assignments, enabling one again
brings back exactly the assignments that rule switched off."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.applications import services
from app.models import Application, Assignment, AuditEvent, RoleType
from app.models.roles import role_application
from app.roles.services import RoleInput, create_role, update_role
from tests.conftest import csrf_token, sign_in


def post(client, url, data=None, page="/applications/"):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})})


def app_named(db, account, name) -> Application | None:
    return db.session.scalar(select(Application).where(Application.account_id == account.id,
                                                       Application.name == name))


def assignment(db, name) -> Assignment:
    db.session.expire_all()
    return db.session.scalar(select(Assignment).where(Assignment.name == name))


def fields(name, enabled=True, **kw):
    return {"name": name, "executable": kw.pop("executable", f"{name.lower()}.exe"),
            "path": kw.pop("path", ""), "description": kw.pop("description", ""),
            **({"enabled": "y"} if enabled else {}), **kw}


@pytest.fixture
def admin_account(factory):
    account = factory.account()
    return account, factory.user(account, "administrator")


@pytest.fixture
def whitelist(db, admin_account):
    """A whitelist role of two enabled applications, an active assignment using it, and an
    assignment of the same role an administrator switched off by hand."""
    account, admin = admin_account
    notepad = services.create_application(account.id, name="Notepad", executable="notepad.exe")
    paint = services.create_application(account.id, name="Paint", executable="mspaint.exe")
    role = create_role(account.id, RoleInput("Office apps", RoleType.whitelist,
                                             application_ids=[notepad.id, paint.id]))
    db.session.add_all([
        Assignment(account_id=account.id, name="Office support", role_id=role.id, active=True,
                   everyone=True, everything=True),
        Assignment(account_id=account.id, name="Paused by hand", role_id=role.id, active=False,
                   everyone=True, everything=True),
    ])
    db.session.commit()
    return account, admin, notepad, paint, role


def test_add_edit_and_list_applications(client, db, admin_account):
    account, admin = admin_account
    sign_in(client, admin.username)
    response = post(client, "/applications/add", fields("Notepad", path=r"%windir%\system32",
                                                         executable="notepad.exe", description="Text editor"))
    assert response.status_code == 302
    notepad = app_named(db, account, "Notepad")
    assert (notepad.path, notepad.executable, notepad.enabled) == (r"%windir%\system32", "notepad.exe", True)
    post(client, "/applications/add", fields("Calculator", enabled=False, executable="calc.exe"))
    html = client.get("/applications/?sort=name").get_data(as_text=True)
    assert re.findall(r'data-column="name"><a href="/applications/\d+/edit">([^<]+)</a>', html) == ["Calculator", "Notepad"]
    assert "Text editor" in html and "Disabled" in html
    assert "Calculator" not in client.get("/applications/?f.enabled=yes").get_data(as_text=True).split("<tbody>")[1]

    response = post(client, f"/applications/{notepad.id}/edit", fields("Notepad++", executable="notepad++.exe"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Application, notepad.id).executable == "notepad++.exe"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "application.updated"))
    assert event.target == "Notepad++"


@pytest.mark.parametrize("data, status, message", [
    (fields("Notepad", executable=""), 422, "Enter the executable"),
    (fields(""), 422, "Enter a name for the application."),
    (fields("NOTEPAD"), 409, "There is already an application named"),
    (fields("Long", path="x" * 1001), 422, "Field cannot be longer than 1000 characters."),
])
def test_bad_input_is_refused_and_nothing_is_added(client, db, admin_account, data, status, message):
    account, admin = admin_account
    services.create_application(account.id, name="Notepad", executable="notepad.exe")
    sign_in(client, admin.username)
    response = post(client, "/applications/add", data)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Application.id)).where(Application.account_id == account.id)) == 1


def test_disabling_every_application_disables_the_assignment_and_enabling_one_brings_it_back(client, db, whitelist):
    account, admin, notepad, paint, role = whitelist
    sign_in(client, admin.username)
    assert post(client, f"/applications/{notepad.id}/edit", fields("Notepad", enabled=False)).status_code == 302
    assert assignment(db, "Office support").active  # Paint is still enabled

    assert post(client, f"/applications/{paint.id}/edit", fields("Paint", enabled=False)).status_code == 302
    office = assignment(db, "Office support")
    assert (office.active, office.disabled_reason) == (False, "All whitelisted applications are disabled")
    page = client.get("/applications/").get_data(as_text=True)
    assert "so they were disabled: Office support." in page

    assert post(client, f"/applications/{paint.id}/edit", fields("Paint")).status_code == 302
    office = assignment(db, "Office support")
    assert (office.active, office.disabled_reason) == (True, "")
    assert "were enabled: Office support." in client.get("/applications/").get_data(as_text=True)
    # The assignment someone paused by hand stays paused.
    paused = assignment(db, "Paused by hand")
    assert (paused.active, paused.disabled_reason) == (False, "")
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.target == "Office support")
                                 .order_by(AuditEvent.id)).all()
    assert actions == ["assignment.disabled", "assignment.enabled"]


def test_removing_the_last_enabled_application_disables_the_assignment(client, db, whitelist):
    account, admin, notepad, paint, role = whitelist
    services.update_application(account.id, notepad.id, name="Notepad", executable="notepad.exe",
                                path="", description="", enabled=False)
    sign_in(client, admin.username)
    warning = client.get(f"/applications/{paint.id}/remove").get_data(as_text=True)
    assert "Office apps" in warning
    assert post(client, f"/applications/{paint.id}/remove").status_code == 302
    assert app_named(db, account, "Paint") is None
    assert db.session.scalar(select(func.count()).select_from(role_application)
                             .where(role_application.c.application_id == paint.id)) == 0
    office = assignment(db, "Office support")
    assert (office.active, office.disabled_reason) == (False, "All whitelisted applications are disabled")
    assert "no enabled whitelisted application left" in client.get("/applications/").get_data(as_text=True)


def test_editing_a_whitelist_role_to_disabled_applications_only_disables_its_assignments(db, whitelist):
    account, admin, notepad, paint, role = whitelist
    services.update_application(account.id, paint.id, name="Paint", executable="mspaint.exe",
                                path="", description="", enabled=False)
    assert assignment(db, "Office support").active
    update_role(account.id, role.id, RoleInput("Office apps", RoleType.whitelist, application_ids=[paint.id]))
    assert assignment(db, "Office support").disabled_reason == "All whitelisted applications are disabled"
    update_role(account.id, role.id, RoleInput("Office apps", RoleType.whitelist,
                                               application_ids=[paint.id, notepad.id]))
    assert assignment(db, "Office support").active


def test_other_accounts_applications_are_not_found(client, db, factory, admin_account):
    account, admin = admin_account
    theirs = services.create_application(factory.account().id, name="Theirs", executable="t.exe")
    sign_in(client, admin.username)
    for url in (f"/applications/{theirs.id}/edit", f"/applications/{theirs.id}/remove"):
        assert client.get(url).status_code == 404
    assert post(client, f"/applications/{theirs.id}/edit", fields("Hijacked")).status_code == 404
    assert post(client, f"/applications/{theirs.id}/remove").status_code == 404
    db.session.expire_all()
    assert db.session.get(Application, theirs.id).name == "Theirs"


def test_applications_are_for_administrators(client, factory):
    account = factory.account()
    gm = factory.user(account, "group_manager")
    sign_in(client, gm.username)
    assert client.get("/applications/").status_code == 403
    assert 'href="/applications/"' not in client.get("/dashboard").get_data(as_text=True)
