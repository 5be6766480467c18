"""Groups through the pages: the four kinds, the listing with its kind filter and member
counts, members added from the Users listing and from the group's own page, devices through
the picker and ``attach_devices``, directory groups that nobody edits by hand, removal that
keeps the members, other accounts' ids, who may see and change groups, the Groups field of
the invite and user edit forms, and ``tessera create-group``."""
from __future__ import annotations

import re
import secrets
import uuid

import pytest
from sqlalchemy import func, select

from app.errors import NotFound
from app.groups import services
from app.models import Assignment, AuditEvent, Device, EnrolmentState, Group, GroupKind, Membership, User
from app.models.groups import group_device, group_member
from tests.conftest import csrf_token, sign_in


def post(client, url, data=None, page="/groups/"):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})})


def make_device(db, account, hostname, **kw) -> Device:
    device = Device(account_id=account.id, hardware_id=uuid.uuid4().hex, token_hash=secrets.token_hex(32),
                    hostname=hostname, enrolment_state=EnrolmentState.enrolled, **kw)
    db.session.add(device)
    db.session.commit()
    return device


def membership(db, account, user) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.account_id == account.id,
                                                      Membership.user_id == user.id))


def member_usernames(db, group_id) -> list[str]:
    return sorted(db.session.scalars(
        select(User.username).join(Membership, Membership.user_id == User.id)
        .join(group_member, group_member.c.membership_id == Membership.id)
        .where(group_member.c.group_id == group_id)))


def device_hostnames(db, group_id) -> list[str]:
    return sorted(db.session.scalars(
        select(Device.hostname).join(group_device, group_device.c.device_id == Device.id)
        .where(group_device.c.group_id == group_id)))


def group_named(db, name) -> Group | None:
    return db.session.scalar(select(Group).where(Group.name == name))


def listing_names(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'data-column="name"><a href="/groups/\d+">([^<]+)</a>', body)


@pytest.fixture
def admin_account(factory):
    account = factory.account(max_users=50)
    admin = factory.user(account, "administrator")
    return account, admin


def test_admin_creates_every_kind_and_the_listing_filters_by_kind(client, db, admin_account):
    account, admin = admin_account
    sign_in(client, admin.username)
    page = client.get("/groups/add?kind=ldap").get_data(as_text=True)
    assert '<option selected value="ldap">' in page or 'value="ldap" selected' in page
    for kind, name, ref in (("user", "Helpdesk", ""), ("device", "Servers", ""),
                            ("ldap", "Engineers", "cn=Engineers,ou=Groups,dc=example,dc=com"),
                            ("saml", "Finance", "9f1c2d3e-finance")):
        response = post(client, "/groups/add", {"kind": kind, "name": name, "directory_ref": ref,
                                                "description": f"{name} people", "active": "y"})
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
    ldap = group_named(db, "Engineers")
    assert ldap.kind is GroupKind.ldap and ldap.directory_ref == "cn=Engineers,ou=Groups,dc=example,dc=com"
    assert group_named(db, "Helpdesk").directory_ref == ""  # only directory groups keep one

    html = client.get("/groups/?sort=name").get_data(as_text=True)
    assert listing_names(html) == ["Engineers", "Finance", "Helpdesk", "Servers"]
    assert "LDAP user group" in html and "SAML user group" in html
    devices_only = client.get("/groups/?f.kind=device").get_data(as_text=True)
    assert listing_names(devices_only) == ["Servers"] and "Kind: Device group" in devices_only
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "group.created")) == 4


def test_directory_group_needs_its_reference_and_names_are_unique_per_kind(client, db, admin_account):
    account, admin = admin_account
    sign_in(client, admin.username)
    missing = post(client, "/groups/add", {"kind": "ldap", "name": "Ops", "active": "y"})
    assert missing.status_code == 422
    assert "distinguished name" in missing.get_data(as_text=True)
    assert post(client, "/groups/add", {"kind": "user", "name": "Ops", "active": "y"}).status_code == 302
    again = post(client, "/groups/add", {"kind": "user", "name": "  ops ", "active": "y"})
    assert again.status_code == 409
    assert "There is already a user group named" in again.get_data(as_text=True)
    assert post(client, "/groups/add", {"kind": "device", "name": "Ops", "active": "y"}).status_code == 302
    assert db.session.scalar(select(func.count(Group.id)).where(Group.account_id == account.id)) == 2


def test_add_to_group_from_the_users_listing_then_the_group_lists_and_counts_them(client, db, factory, admin_account):
    account, admin = admin_account
    ann = factory.user(account, "user", email="ann@example.com", first_name="Ann", last_name="Able")
    bob = factory.user(account, "user", email="bob@example.com", first_name="Bob", last_name="Baker")
    group = services.create_group(account.id, GroupKind.user, "Support")
    services.create_group(account.id, GroupKind.device, "Laptops")
    sign_in(client, admin.username)
    users_page = client.get("/users/").get_data(as_text=True)
    assert 'formaction="/groups/attach-users"' in users_page and ">Add to group<" in users_page

    step_one = post(client, "/groups/attach-users", {"selected": [str(ann.id), str(bob.id)], "next": "/users/?sort=name"},
                    page="/users/")
    html = step_one.get_data(as_text=True)
    assert step_one.status_code == 200 and "Add 2 users to a group" in html
    assert ">Support<" in html and "Laptops" not in html  # only user groups are offered
    step_two = post(client, "/groups/attach-users", {"selected": [str(ann.id), str(bob.id)], "group": str(group.id),
                                                     "next": "/users/?sort=name"}, page="/users/")
    assert step_two.status_code == 302 and step_two.headers["Location"] == "/users/?sort=name"
    assert member_usernames(db, group.id) == ["ann@example.com", "bob@example.com"]

    details = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert "Ann Able" in details and "Bob Baker" in details
    listing = client.get("/groups/").get_data(as_text=True)
    assert re.search(r'data-column="members">\s*2\s*<', listing)
    # Adding again is harmless and says so.
    again = post(client, "/groups/attach-users", {"selected": [str(ann.id)], "group": str(group.id)}, page="/users/")
    assert again.status_code == 302
    assert "was in it already" in client.get("/users/").get_data(as_text=True)


def test_group_page_adds_and_takes_out_members_who_stay_in_the_account(client, db, factory, admin_account):
    account, admin = admin_account
    cat = factory.user(account, "user", email="cat@example.com")
    group = services.create_group(account.id, GroupKind.user, "Night shift")
    sign_in(client, admin.username)
    picker = client.get(f"/groups/{group.id}/users").get_data(as_text=True)
    assert "cat@example.com" in picker and ">Add to group<" in picker
    assert post(client, f"/groups/{group.id}/users", {"selected": [str(cat.id)]}).status_code == 302
    assert member_usernames(db, group.id) == ["cat@example.com"]
    assert "cat@example.com" not in client.get(f"/groups/{group.id}/users").get_data(as_text=True)

    out = post(client, f"/groups/{group.id}/members/remove", {"selected": [str(cat.id)]})
    assert out.status_code == 302
    assert member_usernames(db, group.id) == []
    assert membership(db, account, cat) is not None


def test_device_group_picker_and_attach_devices_for_the_devices_pages(client, db, admin_account, factory):
    account, admin = admin_account
    web = make_device(db, account, "web-01", alias="Front web")
    dbs = make_device(db, account, "db-01")
    group = services.create_group(account.id, GroupKind.device, "Servers")
    sign_in(client, admin.username)
    picker = client.get(f"/groups/{group.id}/devices").get_data(as_text=True)
    assert "web-01" in picker and "db-01" in picker and "Front web" in picker
    assert post(client, f"/groups/{group.id}/devices", {"selected": [str(web.id)]}).status_code == 302
    assert device_hostnames(db, group.id) == ["web-01"]

    result = services.attach_devices(group.id, [web.id, dbs.id], account.id)
    assert (result.added, result.already) == (1, 1)
    assert device_hostnames(db, group.id) == ["db-01", "web-01"]
    # Users do not go into device groups, nor devices into user groups.
    assert client.get(f"/groups/{group.id}/users").status_code == 409
    people = services.create_group(account.id, GroupKind.user, "People")
    with pytest.raises(Exception, match="user group"):
        services.attach_devices(people.id, [web.id], account.id)
    details = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert "db-01" in details and "web-01" in details


def test_other_accounts_users_devices_and_groups_are_refused_and_nothing_changes(client, db, factory, admin_account):
    account, admin = admin_account
    mine = factory.user(account, "user")
    theirs_account = factory.account()
    stranger = factory.user(theirs_account, "user")
    their_device = make_device(db, theirs_account, "their-pc")
    their_group = services.create_group(theirs_account.id, GroupKind.user, "Theirs")
    group = services.create_group(account.id, GroupKind.user, "Mine")
    devices = services.create_group(account.id, GroupKind.device, "My devices")
    sign_in(client, admin.username)

    mixed = post(client, f"/groups/{group.id}/users", {"selected": [str(mine.id), str(stranger.id)]})
    assert mixed.status_code == 404
    assert "not in this account" in mixed.get_data(as_text=True)
    assert member_usernames(db, group.id) == []
    bulk = post(client, "/groups/attach-users", {"selected": [str(mine.id)], "group": str(their_group.id)},
                page="/users/")
    assert bulk.status_code == 404 and member_usernames(db, their_group.id) == []
    with pytest.raises(NotFound):
        services.attach_devices(devices.id, [their_device.id], account.id)
    assert device_hostnames(db, devices.id) == []
    for url in (f"/groups/{their_group.id}", f"/groups/{their_group.id}/edit", f"/groups/{their_group.id}/remove"):
        assert client.get(url).status_code == 404
    assert post(client, f"/groups/{their_group.id}/remove").status_code == 404
    assert group_named(db, "Theirs") is not None


def test_directory_groups_keep_their_members_from_the_directory_only(client, db, factory, admin_account):
    account, admin = admin_account
    dora = factory.user(account, "user", email="dora@example.com")
    ldap = services.create_group(account.id, GroupKind.ldap, "Engineers",
                                 directory_ref="cn=Engineers,dc=example,dc=com")
    # As the sign-in sync will: the directory put Dora in it.
    db.session.execute(group_member.insert().values(group_id=ldap.id, membership_id=membership(db, account, dora).id))
    db.session.commit()
    sign_in(client, admin.username)

    details = client.get(f"/groups/{ldap.id}").get_data(as_text=True)
    assert "dora@example.com" in details and "come from the directory" in details
    assert 'name="selected"' not in details and "Add users" not in details
    assert client.get(f"/groups/{ldap.id}/users").status_code == 409
    refused = post(client, f"/groups/{ldap.id}/members/remove", {"selected": [str(dora.id)]})
    assert refused.status_code == 409 and "from the directory" in refused.get_data(as_text=True)
    bulk = post(client, "/groups/attach-users", {"selected": [str(dora.id)], "group": str(ldap.id)}, page="/users/")
    assert bulk.status_code == 409 and "cannot be added or removed here" in bulk.get_data(as_text=True)
    assert member_usernames(db, ldap.id) == ["dora@example.com"]

    edit = post(client, f"/groups/{ldap.id}/edit", {"name": "Renamed", "directory_ref": "cn=Other",
                                                    "description": "Synced at sign-in", "active": ""})
    assert edit.status_code == 302
    db.session.expire_all()
    ldap = db.session.get(Group, ldap.id)
    assert (ldap.name, ldap.directory_ref) == ("Engineers", "cn=Engineers,dc=example,dc=com")
    assert (ldap.description, ldap.active) == ("Synced at sign-in", False)


def test_active_flag_is_editable_and_an_inactive_group_says_it_grants_nothing(client, db, admin_account):
    account, admin = admin_account
    group = services.create_group(account.id, GroupKind.device, "Kiosks")
    sign_in(client, admin.username)
    form = client.get(f"/groups/{group.id}/edit").get_data(as_text=True)
    assert 'name="active"' in form and "grants nothing" in form
    assert post(client, f"/groups/{group.id}/edit", {"name": "Kiosks", "description": ""}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Group, group.id).active is False
    assert "Inactive" in client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert listing_names(client.get("/groups/?f.active=no").get_data(as_text=True)) == ["Kiosks"]
    assert post(client, f"/groups/{group.id}/edit", {"name": "Kiosks", "active": "y"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Group, group.id).active is True


def test_removing_a_group_warns_about_its_uses_and_keeps_members_devices_and_assignments(client, db, factory, admin_account):
    account, admin = admin_account
    eve = factory.user(account, "user", email="eve@example.com")
    laptop = make_device(db, account, "eve-laptop")
    people = services.create_group(account.id, GroupKind.user, "People")
    machines = services.create_group(account.id, GroupKind.device, "Machines")
    services.attach_users(people.id, [eve.id], account.id)
    services.attach_devices(machines.id, [laptop.id], account.id)
    assignment = Assignment(account_id=account.id, name="Weekday support", active=True)
    assignment.user_groups = [people]
    assignment.device_groups = [machines]
    db.session.add(assignment)
    db.session.commit()
    sign_in(client, admin.username)

    warning = client.get(f"/groups/{people.id}/remove").get_data(as_text=True)
    assert "Weekday support" in warning and "loses it as a user group" in warning
    assert post(client, f"/groups/{people.id}/remove").status_code == 302
    assert post(client, f"/groups/{machines.id}/remove").status_code == 302
    db.session.expire_all()
    assert db.session.get(Group, people.id) is None and db.session.get(Group, machines.id) is None
    assert membership(db, account, eve) is not None
    assert db.session.get(Device, laptop.id) is not None
    kept = db.session.get(Assignment, assignment.id)
    assert kept is not None and kept.user_groups == [] and kept.device_groups == []
    assert db.session.scalar(select(func.count()).select_from(group_member)) == 0
    assert db.session.scalar(select(func.count()).select_from(group_device)) == 0


def test_group_managers_see_groups_but_change_nothing(client, db, factory):
    account = factory.account()
    gm = factory.user(account, "group_manager")
    user = factory.user(account, "user")
    group = services.create_group(account.id, GroupKind.user, "Visible")
    sign_in(client, gm.username)
    listing = client.get("/groups/")
    assert listing.status_code == 200 and "Visible" in listing.get_data(as_text=True)
    assert "Add group" not in listing.get_data(as_text=True)
    details = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert "Edit" not in details.split("<main", 1)[1].split("</h2>", 1)[1].split("</div>", 1)[0]
    assert 'href="/groups/' in client.get("/dashboard").get_data(as_text=True)  # in the sidebar
    assert "Add to group" not in client.get("/users/").get_data(as_text=True)
    assert client.get("/groups/add").status_code == 403
    assert post(client, "/groups/attach-users", {"selected": [str(user.id)], "group": str(group.id)},
                page="/users/").status_code == 403
    assert member_usernames(db, group.id) == []


def test_removing_a_user_takes_them_out_of_their_groups(client, db, factory, admin_account):
    account, admin = admin_account
    leaver = factory.user(account, "user", email="leaver@example.com")
    group = services.create_group(account.id, GroupKind.user, "Leavers")
    services.attach_users(group.id, [leaver.id], account.id)
    sign_in(client, admin.username)
    assert post(client, f"/users/{leaver.id}/remove", {"confirm": "yes"}, page="/users/").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(group_member)) == 0
    assert re.search(r'data-column="members">\s*0\s*<', client.get("/groups/").get_data(as_text=True))


# --------------------------------------------------------------------------- invite and edit
def test_invite_puts_the_new_users_in_the_chosen_groups(client, db, factory, admin_account):
    account, admin = admin_account
    support = services.create_group(account.id, GroupKind.user, "Support")
    services.create_group(account.id, GroupKind.user, "Dormant", active=False)
    services.create_group(account.id, GroupKind.device, "Desktops")
    sign_in(client, admin.username)
    page = client.get("/users/invite").get_data(as_text=True)
    assert ">Support<" in page and "Dormant" not in page and "Desktops" not in page
    response = post(client, "/users/invite", {"emails": "new1@example.com, new2@example.com",
                                              "user_type": "user", "default_action": "",
                                              "enabled": "y", "groups": [str(support.id)]},
                    page="/users/invite")
    assert response.status_code == 302
    assert member_usernames(db, support.id) == ["new1@example.com", "new2@example.com"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.invited",
                                                       AuditEvent.target == "new1@example.com"))
    assert '"groups": ["Support"]' in event.details


def test_invite_with_another_accounts_or_an_inactive_group_invites_nobody(client, db, factory, admin_account):
    account, admin = admin_account
    dormant = services.create_group(account.id, GroupKind.user, "Dormant", active=False)
    foreign = services.create_group(factory.account().id, GroupKind.user, "Foreign")
    sign_in(client, admin.username)
    for group in (dormant, foreign):
        response = post(client, "/users/invite", {"emails": "nobody@example.com", "user_type": "user",
                                                  "default_action": "", "groups": [str(group.id)]},
                        page="/users/invite")
        assert response.status_code == 422
        assert "not active user groups of this account" in response.get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.username == "nobody@example.com")) is None


def test_user_edit_sets_groups_and_leaves_inactive_and_directory_groups_alone(client, db, factory, admin_account):
    account, admin = admin_account
    fay = factory.user(account, "user", email="fay@example.com", first_name="Fay", last_name="Field")
    old = services.create_group(account.id, GroupKind.user, "Old team")
    new = services.create_group(account.id, GroupKind.user, "New team")
    dormant = services.create_group(account.id, GroupKind.user, "Dormant")
    ldap = services.create_group(account.id, GroupKind.ldap, "Directory", directory_ref="cn=dir")
    services.attach_users(old.id, [fay.id], account.id)
    services.attach_users(dormant.id, [fay.id], account.id)
    db.session.execute(group_member.insert().values(group_id=ldap.id, membership_id=membership(db, account, fay).id))
    dormant.active = False
    db.session.commit()
    sign_in(client, admin.username)
    form = client.get(f"/users/{fay.id}/edit").get_data(as_text=True)
    assert re.search(rf'<option selected value="{old.id}">Old team</option>', form)
    response = post(client, f"/users/{fay.id}/edit", {
        "first_name": "Fay", "last_name": "Field", "email": "fay@example.com", "user_type": "user",
        "enabled": "y", "default_action": "", "groups": [str(new.id)]}, page=f"/users/{fay.id}/edit")
    assert response.status_code == 302
    assert member_usernames(db, new.id) == ["fay@example.com"]
    assert member_usernames(db, old.id) == []
    assert member_usernames(db, dormant.id) == ["fay@example.com"]
    assert member_usernames(db, ldap.id) == ["fay@example.com"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.updated"))
    assert "New team" in event.details and "Old team" in event.details


def test_group_manager_edits_a_user_without_touching_their_groups(client, db, factory):
    account = factory.account()
    gm = factory.user(account, "group_manager")
    gil = factory.user(account, "user", email="gil@example.com", first_name="Gil", last_name="Grey")
    team = services.create_group(account.id, GroupKind.user, "Team")
    other = services.create_group(account.id, GroupKind.user, "Other")
    services.attach_users(team.id, [gil.id], account.id)
    sign_in(client, gm.username)
    form = client.get(f"/users/{gil.id}/edit").get_data(as_text=True)
    assert 'name="groups"' not in form
    response = post(client, f"/users/{gil.id}/edit", {
        "first_name": "Gil", "last_name": "Grey", "email": "gil@example.com", "user_type": "user",
        "enabled": "y", "default_action": "", "groups": [str(other.id)]}, page=f"/users/{gil.id}/edit")
    assert response.status_code == 302
    assert member_usernames(db, team.id) == ["gil@example.com"]
    assert member_usernames(db, other.id) == []


# --------------------------------------------------------------------------- command line
def test_create_group_command_adds_members_by_email_and_by_hostname(app, db, factory):
    account = factory.account("Cli Co")
    factory.user(account, "user", email="hal@example.com")
    make_device(db, account, "build-01")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-group", "--company", "Cli Co", "--kind", "user", "--name", "Builders",
                                 "--member", "HAL@example.com", "--member", account.owner.username])
    assert result.exit_code == 0, result.output
    assert "Created user group 'Builders'" in result.output
    group = group_named(db, "Builders")
    assert member_usernames(db, group.id) == sorted(["hal@example.com", account.owner.username])
    result = runner.invoke(args=["create-group", "--company", "Cli Co", "--kind", "device", "--name", "Build machines",
                                 "--member", "build-01"])
    assert result.exit_code == 0, result.output
    assert device_hostnames(db, group_named(db, "Build machines").id) == ["build-01"]


@pytest.mark.parametrize("args, message", [
    (["--kind", "user", "--member", "ghost@example.com"], "No user with the email ghost@example.com"),
    (["--kind", "device", "--member", "no-such-host"], "No device with the hostname no-such-host"),
    (["--kind", "user", "--name", "Existing"], "There is already a user group named 'Existing'"),
    (["--kind", "printer"], "Invalid value for '--kind'"),
])
def test_create_group_command_fails_clearly_and_creates_nothing(app, db, factory, args, message):
    account = factory.account("Strict Co")
    services.create_group(account.id, GroupKind.user, "Existing")
    base = ["create-group", "--company", "Strict Co"] + ([] if "--name" in args else ["--name", "New group"])
    result = app.test_cli_runner().invoke(args=base + args)
    assert result.exit_code != 0
    assert message in result.output
    assert group_named(db, "New group") is None
    assert db.session.scalar(select(func.count(Group.id))) == 1


def test_create_group_command_refuses_an_unknown_company(app, db):
    result = app.test_cli_runner().invoke(args=["create-group", "--company", "Nope", "--kind", "user",
                                                "--name", "X"])
    assert result.exit_code != 0 and "No account named 'Nope'" in result.output
