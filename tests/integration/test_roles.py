"""Roles through the pages: the predefined roles every account (and the demo) starts with,
read-only but copyable; adding each type with its rules; editing; the type lock for roles in
use; removal that first lists the assignments it will disable and then disables them; other
accounts' ids; and who may read or change roles."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.groups.services import create_group
from app.applications.services import create_application
from app.models import Account, Assignment, AuditEvent, GroupKind, Role, RoleType
from app.models.roles import CLIENT_TYPES, DEVICE_PERMISSIONS, ONDEMAND_PERMISSIONS
from app.roles import services
from tests.conftest import csrf_token, sign_in


def post(client, url, data=None, page="/roles/"):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})})


def role_named(db, account, name) -> Role | None:
    return db.session.scalar(select(Role).where(Role.account_id == account.id, Role.name == name))


def listing_names(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'data-column="name"><a href="/roles/\d+">([^<]+)</a>', body)


@pytest.fixture
def admin_account(factory):
    account = factory.account()
    return account, factory.user(account, "administrator")


def device_role(name, **kw) -> services.RoleInput:
    return services.RoleInput(name, RoleType.device, permissions=kw.pop("permissions", ["view_screen"]),
                              client_types=kw.pop("client_types", ["browser"]), **kw)


def test_every_new_account_has_the_four_predefined_roles(db, factory):
    account = factory.account()
    roles = {r.name: r for r in db.session.scalars(select(Role).where(Role.account_id == account.id))}
    assert set(roles) == {"Administrator", "Web Support", "Full Access", "Confirm Access Required"}
    assert all(r.predefined for r in roles.values())
    admin = roles["Administrator"]
    assert (admin.type, admin.permissions, admin.client_types) == (RoleType.device, list(DEVICE_PERMISSIONS), list(CLIENT_TYPES))
    web = roles["Web Support"]
    assert web.permissions == ["remote_session", "view_screen", "keyboard_mouse", "clipboard", "chat"]
    assert web.client_types == ["browser"]
    full = roles["Full Access"]
    assert (full.type, full.permissions) == (RoleType.ondemand, list(ONDEMAND_PERMISSIONS))
    confirm = roles["Confirm Access Required"]
    assert confirm.type is RoleType.confirm and confirm.confirm_on_host and not confirm.confirm_by_email
    assert confirm.except_when_locked and confirm.except_when_nobody_logged_in


def test_the_demo_account_has_the_predefined_roles_even_when_it_existed_before(app, db):
    from app.demo import COMPANY, seed_demo

    seed_demo()
    account = db.session.scalar(select(Account).where(Account.company == COMPANY))
    assert db.session.scalar(select(func.count(Role.id)).where(Role.account_id == account.id)) == 4
    db.session.execute(Role.__table__.delete().where(Role.account_id == account.id, Role.name == "Web Support"))
    db.session.commit()
    seed_demo()
    assert role_named(db, account, "Web Support") is not None
    assert db.session.scalar(select(func.count(Role.id)).where(Role.account_id == account.id)) == 4


def test_the_demo_users_with_ondemand_enabled_may_create_sessions_at_once(app, db):
    from app.demo import COMPANY, seed_demo
    from app.models import Membership, User, utcnow
    from app.ondemand.services import ondemand_refusal

    seed_demo()
    seed_demo()  # twice: one assignment, not two
    account = db.session.scalar(select(Account).where(Account.company == COMPANY))

    def refusal(email):
        return ondemand_refusal(db.session.scalar(select(Membership).join(User, User.id == Membership.user_id).where(
            Membership.account_id == account.id, User.username == email)), utcnow())

    assert refusal("admin@demo.example.com") == ""
    assert "not enabled" in refusal("user@demo.example.com")


def test_listing_filters_by_type_and_details_show_permissions(client, db, admin_account):
    account, admin = admin_account
    sign_in(client, admin.username)
    html = client.get("/roles/?sort=name").get_data(as_text=True)
    assert listing_names(html) == ["Administrator", "Confirm Access Required", "Full Access", "Web Support"]
    assert listing_names(client.get("/roles/?f.type=ondemand").get_data(as_text=True)) == ["Full Access"]
    web = role_named(db, account, "Web Support")
    details = client.get(f"/roles/{web.id}").get_data(as_text=True)
    assert "Keyboard and mouse" in details and "Control through browser" in details
    assert "Installed viewer" not in details and "Tunnel" not in details
    assert "Copy role" in details and f"/roles/{web.id}/edit" not in details


def test_predefined_roles_can_be_copied_but_not_edited_or_removed(client, db, admin_account):
    account, admin = admin_account
    admin_role = role_named(db, account, "Administrator")
    sign_in(client, admin.username)
    assert client.get(f"/roles/{admin_role.id}/edit").status_code == 403
    refused = post(client, f"/roles/{admin_role.id}/remove")
    assert refused.status_code == 403 and "predefined role" in refused.get_data(as_text=True)
    assert role_named(db, account, "Administrator") is not None

    form = client.get(f"/roles/{admin_role.id}/copy").get_data(as_text=True)
    assert 'value="Copy of Administrator"' in form
    assert re.search(r'<input checked id="device_permissions-\d+" name="device_permissions" type="checkbox" value="tunnel">', form)
    fields = {"name": "Copy of Administrator", "type": "device", "device_permissions": list(DEVICE_PERMISSIONS),
              "client_types": ["viewer"]}
    assert post(client, f"/roles/{admin_role.id}/copy", fields).status_code == 302
    copy = role_named(db, account, "Copy of Administrator")
    assert not copy.predefined and copy.client_types == ["viewer"]
    assert 'value="Copy of Administrator (2)"' in client.get(f"/roles/{admin_role.id}/copy").get_data(as_text=True)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "role.copied"))
    assert event.target == "Copy of Administrator" and '"copied_from": "Administrator"' in event.details


def test_add_each_type_keeps_only_what_belongs_to_it(client, db, admin_account):
    account, admin = admin_account
    mailers = create_group(account.id, GroupKind.user, "Approvers")
    notepad = create_application(account.id, name="Notepad", executable="notepad.exe")
    sign_in(client, admin.username)
    cases = [
        {"name": "Viewer only", "type": "device", "device_permissions": ["view_screen"],
         "client_types": ["browser", "viewer"], "confirm_on_host": "y"},
        {"name": "OnDemand chat", "type": "ondemand", "ondemand_permissions": ["chat"],
         "device_permissions": ["tunnel"]},
        {"name": "Ask first", "type": "confirm", "confirm_on_host": "y", "confirm_by_email": "y",
         "confirm_groups": [str(mailers.id)], "email_only_when_host_unanswered": "y",
         "except_when_locked": "y"},
        {"name": "Notepad only", "type": "whitelist", "applications": [str(notepad.id)],
         "except_when_nobody_logged_in": "y", "client_types": ["viewer"]},
    ]
    for fields in cases:
        response = post(client, "/roles/add", fields)
        assert response.status_code == 302, response.get_data(as_text=True)[:400]
    viewer = role_named(db, account, "Viewer only")
    assert viewer.client_types == ["browser", "viewer"] and not viewer.confirm_on_host
    chat = role_named(db, account, "OnDemand chat")
    assert chat.permissions == ["chat"] and chat.client_types == []
    ask = role_named(db, account, "Ask first")
    assert ask.confirm_on_host and ask.confirm_by_email and [g.name for g in ask.confirm_groups] == ["Approvers"]
    assert ask.email_only_when_host_unanswered and ask.except_when_locked and ask.permissions == []
    notepad_only = role_named(db, account, "Notepad only")
    assert [a.name for a in notepad_only.applications] == ["Notepad"]
    assert notepad_only.except_when_nobody_logged_in and notepad_only.client_types == []
    details = client.get(f"/roles/{ask.id}").get_data(as_text=True)
    assert "Yes, to Approvers" in details and "Not applied when the computer is locked" in details


@pytest.mark.parametrize("fields, message", [
    ({"type": "device", "device_permissions": ["view_screen"]}, "Choose at least one client type"),
    ({"type": "device", "device_permissions": ["fly"], "client_types": ["browser"]}, "Device roles cannot grant: fly."),
    ({"type": "device", "client_types": ["browser"]}, "Choose at least one permission"),
    ({"type": "ondemand", "ondemand_permissions": ["tunnel"]}, "OnDemand roles cannot grant: tunnel."),
    ({"type": "confirm"}, "Choose how access is confirmed"),
    ({"type": "confirm", "confirm_by_email": "y"}, "Choose at least one user group"),
    ({"type": "whitelist"}, "Choose at least one application to whitelist."),
    ({"type": "robot"}, "Not a valid choice"),
])
def test_add_refuses_what_the_type_does_not_allow(client, db, admin_account, fields, message):
    account, admin = admin_account
    sign_in(client, admin.username)
    response = post(client, "/roles/add", {"name": "Bad role", **fields})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert role_named(db, account, "Bad role") is None


def test_add_refuses_other_accounts_groups_and_applications_and_device_groups(client, db, factory, admin_account):
    account, admin = admin_account
    other = factory.account()
    their_group = create_group(other.id, GroupKind.user, "Their approvers")
    their_app = create_application(other.id, name="Their app", executable="x.exe")
    my_devices = create_group(account.id, GroupKind.device, "My devices")
    sign_in(client, admin.username)
    for group in (their_group, my_devices):
        response = post(client, "/roles/add", {"name": "Sneaky", "type": "confirm", "confirm_by_email": "y",
                                               "confirm_groups": [str(group.id)]})
        assert response.status_code == 422
        assert "not user groups of this account" in response.get_data(as_text=True)
    response = post(client, "/roles/add", {"name": "Sneaky", "type": "whitelist", "applications": [str(their_app.id)]})
    assert response.status_code == 422 and "not in this account" in response.get_data(as_text=True)
    assert role_named(db, account, "Sneaky") is None


def test_duplicate_role_names_are_refused_whatever_the_case(client, db, admin_account):
    account, admin = admin_account
    sign_in(client, admin.username)
    response = post(client, "/roles/add", {"name": "web support", "type": "device",
                                           "device_permissions": ["chat"], "client_types": ["browser"]})
    assert response.status_code == 409
    assert "There is already a role named" in response.get_data(as_text=True)
    services.create_role(account.id, device_role("Mine"))
    other = services.create_role(account.id, device_role("Other"))
    response = post(client, f"/roles/{other.id}/edit", {"name": "MINE", "type": "device",
                                                        "device_permissions": ["chat"], "client_types": ["browser"]})
    assert response.status_code == 409


def test_edit_changes_a_custom_role_and_is_audited(client, db, admin_account):
    account, admin = admin_account
    role = services.create_role(account.id, device_role("Helpdesk"))
    sign_in(client, admin.username)
    form = client.get(f"/roles/{role.id}/edit").get_data(as_text=True)
    assert 'value="Helpdesk"' in form
    response = post(client, f"/roles/{role.id}/edit", {
        "name": "Helpdesk plus", "type": "device", "description": "More",
        "device_permissions": ["view_screen", "file_transfer"], "client_types": ["viewer"]})
    assert response.status_code == 302
    db.session.expire_all()
    role = db.session.get(Role, role.id)
    assert (role.name, role.permissions, role.client_types) == ("Helpdesk plus", ["view_screen", "file_transfer"], ["viewer"])
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "role.updated"))
    assert event.target == "Helpdesk plus" and "file_transfer" in event.details


def test_a_role_in_use_keeps_its_type(client, db, admin_account):
    account, admin = admin_account
    role = services.create_role(account.id, device_role("Used"))
    db.session.add(Assignment(account_id=account.id, name="Uses it", role_id=role.id, everyone=True, everything=True))
    db.session.commit()
    sign_in(client, admin.username)
    response = post(client, f"/roles/{role.id}/edit", {"name": "Used", "type": "ondemand",
                                                       "ondemand_permissions": ["chat"]})
    assert response.status_code == 409 and "its type cannot change" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Role, role.id).type is RoleType.device


def test_removing_a_role_in_use_warns_with_its_assignments_then_disables_them(client, db, factory, admin_account):
    account, admin = admin_account
    role = services.create_role(account.id, device_role("Temporary"))
    keep = services.create_role(account.id, device_role("Stays"))
    for name, rid in (("Morning shift", role.id), ("Evening shift", role.id), ("Other team", keep.id)):
        db.session.add(Assignment(account_id=account.id, name=name, role_id=rid, active=True,
                                  everyone=True, everything=True))
    db.session.commit()
    sign_in(client, admin.username)

    warning = client.get(f"/roles/{role.id}/remove").get_data(as_text=True)
    assert "The following 2 role assignments will be disabled" in warning
    assert "Morning shift" in warning and "Evening shift" in warning and "Other team" not in warning
    assert role_named(db, account, "Temporary") is not None  # nothing happens before the answer

    done = post(client, f"/roles/{role.id}/remove")
    assert done.status_code == 302
    flashed = client.get("/roles/").get_data(as_text=True)
    assert "2 role assignments were disabled: Evening shift, Morning shift." in flashed
    db.session.expire_all()
    assert role_named(db, account, "Temporary") is None
    shifts = db.session.scalars(select(Assignment).where(Assignment.name.like("% shift"))).all()
    assert {(a.active, a.disabled_reason, a.role_id) for a in shifts} == {(False, "Role removed", None)}
    other = db.session.scalar(select(Assignment).where(Assignment.name == "Other team"))
    assert other.active and other.role_id == keep.id
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "role.removed"))
    assert "Morning shift" in event.details


def test_removing_an_unused_role_just_removes_it(client, db, admin_account):
    account, admin = admin_account
    app_ = create_application(account.id, name="Calc", executable="calc.exe")
    role = services.create_role(account.id, services.RoleInput("Calc only", RoleType.whitelist,
                                                                application_ids=[app_.id]))
    sign_in(client, admin.username)
    assert "No role assignment uses it." in client.get(f"/roles/{role.id}/remove").get_data(as_text=True)
    assert post(client, f"/roles/{role.id}/remove").status_code == 302
    assert role_named(db, account, "Calc only") is None
    assert db.session.scalar(select(func.count()).select_from(Role.applications.property.secondary)) == 0


def test_other_accounts_roles_are_not_found(client, db, factory, admin_account):
    account, admin = admin_account
    theirs = services.create_role(factory.account().id, device_role("Theirs"))
    sign_in(client, admin.username)
    for url in (f"/roles/{theirs.id}", f"/roles/{theirs.id}/edit", f"/roles/{theirs.id}/copy",
                f"/roles/{theirs.id}/remove"):
        assert client.get(url).status_code == 404
    assert post(client, f"/roles/{theirs.id}/remove").status_code == 404
    assert db.session.get(Role, theirs.id) is not None


def test_group_managers_read_roles_and_change_nothing(client, db, factory):
    account = factory.account()
    gm = factory.user(account, "group_manager")
    sign_in(client, gm.username)
    listing = client.get("/roles/").get_data(as_text=True)
    assert "Web Support" in listing and "Add role" not in listing
    web = role_named(db, account, "Web Support")
    details = client.get(f"/roles/{web.id}").get_data(as_text=True)
    assert "Copy role" not in details
    assert client.get("/roles/add").status_code == 403
    assert client.get(f"/roles/{web.id}/copy").status_code == 403
    user = factory.user(account, "user")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/roles/")})
    sign_in(client, user.username)
    assert client.get("/roles/").status_code == 403
