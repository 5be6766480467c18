"""User details, editing and removal: the rules across every user type, other accounts,
bulk removal (all or nothing), directory users, primary-account removal and sign-out."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Membership, User, UserSession, UserType
from tests.conftest import csrf_token, sign_in

TYPES = ["user", "group_manager", "administrator", "owner"]
RANK = {name: i for i, name in enumerate(TYPES)}


def member_of(db, account, user) -> Membership | None:
    return db.session.scalar(select(Membership).where(Membership.account_id == account.id,
                                                      Membership.user_id == user.id))


def post(client, url, data=None, page="/users/"):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})})


@pytest.mark.parametrize("actor_type", TYPES)
@pytest.mark.parametrize("target_type", TYPES)
def test_who_may_edit_and_remove_whom(client, factory, actor_type, target_type):
    account = factory.account()
    actor = factory.user(account, actor_type) if actor_type != "owner" else account.owner
    target = factory.user(account, target_type) if target_type != "owner" else account.owner
    sign_in(client, actor.username)
    edit = client.get(f"/users/{target.id}/edit").status_code
    remove = client.get(f"/users/{target.id}/remove").status_code
    if actor_type == "user":
        expected = 403  # no users.manage at all
    elif target.id == actor.id or target_type == "owner" or RANK[target_type] > RANK[actor_type]:
        expected = 403
    else:
        expected = 200
    assert (edit, remove) == (expected, expected)


def test_details_show_status_history_and_flags(client, factory, db):
    account = factory.account("Details Co")
    admin = factory.user(account, "administrator", first_name="Ann", last_name="Admin")
    sign_in(client, account.owner.username)
    member = factory.user(account, "user", email="dee@example.com", first_name="Dee",
                          last_name="Tail", created_by=admin, ondemand_enabled=True)
    html = client.get(f"/users/{member.id}").get_data(as_text=True)
    assert "Dee Tail" in html and "dee@example.com" in html
    assert "by Ann Admin" in html
    assert "Never signed in" in html and "OnDemand sessions</dt><dd>Enabled" in html
    own = client.get(f"/users/{account.owner.id}").get_data(as_text=True)
    assert "Online for less than a minute" in own


def test_another_accounts_user_is_not_found(client, factory, db):
    mine, theirs = factory.account(), factory.account()
    stranger = factory.user(theirs, "user")
    sign_in(client, mine.owner.username)
    for url in (f"/users/{stranger.id}", f"/users/{stranger.id}/edit", f"/users/{stranger.id}/remove"):
        assert client.get(url).status_code == 404
    assert post(client, f"/users/{stranger.id}/remove", {"confirm": "yes"}).status_code == 404
    assert post(client, "/users/remove", {"selected": [str(stranger.id)], "confirm": "yes"}).status_code == 404
    assert member_of(db, theirs, stranger) is not None


def test_edit_saves_changes_keeps_the_username_and_records_who(client, factory, db):
    account = factory.account(max_ondemand_users=5)
    gm = factory.user(account, "group_manager", first_name="Gus", last_name="Manager")
    target = factory.user(account, "user", email="eddie@example.com")
    sign_in(client, gm.username)
    response = post(client, f"/users/{target.id}/edit", {
        "first_name": "Eddie", "last_name": "Edited", "email": "Eddie.New@Example.com",
        "user_type": "group_manager", "ondemand_enabled": "y", "mfa": "y",
        "default_action": "viewer", "username": "hijack@example.com",
    }, page=f"/users/{target.id}/edit")
    assert response.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, target.id)
    membership = member_of(db, account, user)
    assert (user.username, user.first_name, user.last_name, user.email) == (
        "eddie@example.com", "Eddie", "Edited", "eddie.new@example.com")
    assert membership.type is UserType.group_manager and membership.ondemand_enabled
    assert not membership.enabled  # the box was left unticked
    assert user.mfa_enabled and membership.default_action == "viewer"
    assert membership.modified_by_id == gm.id and membership.modified_at is not None
    details = client.get(f"/users/{target.id}").get_data(as_text=True)
    assert "by Gus Manager" in details and "Control with the installed viewer" in details
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.updated"))
    assert event.target == "eddie@example.com" and '"type": ["user", "group_manager"]' in event.details


def test_edit_cannot_raise_a_user_above_the_editors_type(client, factory, db):
    account = factory.account()
    gm = factory.user(account, "group_manager")
    target = factory.user(account, "user")
    sign_in(client, gm.username)
    form = client.get(f"/users/{target.id}/edit").get_data(as_text=True)
    assert 'value="administrator"' not in form
    response = post(client, f"/users/{target.id}/edit", {
        "first_name": "X", "last_name": "Y", "email": target.email, "user_type": "administrator",
        "enabled": "y", "default_action": ""}, page=f"/users/{target.id}/edit")
    assert response.status_code == 422
    assert member_of(db, account, target).type is UserType.user


def test_edit_with_a_bad_email_changes_nothing(client, factory, db):
    account = factory.account()
    target = factory.user(account, "user", first_name="Keep")
    sign_in(client, account.owner.username)
    response = post(client, f"/users/{target.id}/edit", {
        "first_name": "Changed", "last_name": "", "email": "nope", "user_type": "user",
        "enabled": "y", "default_action": ""}, page=f"/users/{target.id}/edit")
    assert response.status_code == 422
    assert "nope is not a valid email address" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, target.id).first_name == "Keep"


def test_turning_on_ondemand_respects_the_licence(client, factory, db):
    account = factory.account(max_ondemand_users=1)  # the owner holds it
    target = factory.user(account, "user")
    sign_in(client, account.owner.username)
    response = post(client, f"/users/{target.id}/edit", {
        "first_name": "", "last_name": "", "email": target.email, "user_type": "user",
        "enabled": "y", "ondemand_enabled": "y", "default_action": ""}, page=f"/users/{target.id}/edit")
    assert response.status_code == 409
    assert "The licence allows 1 OnDemand users and 1 are in use." in response.get_data(as_text=True)


def test_removing_from_the_primary_account_removes_everywhere_and_signs_out(app, factory, db):
    home, other = factory.account("Home"), factory.account("Other")
    target = factory.user(home, "user", email="leaver@example.com")
    factory.user(other, "user", email="leaver@example.com")  # a second membership
    theirs = app.test_client()
    sign_in(theirs, "leaver@example.com")
    assert theirs.get("/my-devices").status_code == 200

    client = app.test_client()
    sign_in(client, home.owner.username)
    confirm = client.get(f"/users/{target.id}/remove").get_data(as_text=True)
    assert "this is their primary account" in confirm
    response = post(client, f"/users/{target.id}/remove", {"confirm": "yes"})
    assert response.status_code == 302
    assert "1 user removed: leaver@example.com." in client.get("/users/").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, target.id) is None
    assert db.session.scalars(select(Membership).where(Membership.user_id == target.id)).all() == []
    assert db.session.scalars(select(UserSession).where(UserSession.user_id == target.id)).all() == []
    assert theirs.get("/my-devices").status_code in (302, 401)
    events = db.session.scalars(select(AuditEvent.account_id).where(AuditEvent.action == "user.removed")).all()
    assert sorted(events) == sorted([home.id, other.id])


def test_removing_from_a_secondary_account_keeps_the_user(app, factory, db):
    home, other = factory.account("Home"), factory.account("Other")
    target = factory.user(home, "user", email="stays@example.com")
    factory.user(other, "user", email="stays@example.com")
    theirs = app.test_client()
    sign_in(theirs, "stays@example.com")
    client = app.test_client()
    sign_in(client, other.owner.username)
    assert "removed from this account only" in client.get(f"/users/{target.id}/remove").get_data(as_text=True)
    assert post(client, f"/users/{target.id}/remove", {"confirm": "yes"}).status_code == 302
    db.session.expire_all()
    assert member_of(db, other, target) is None and member_of(db, home, target) is not None
    assert theirs.get("/my-devices").status_code in (302, 401)  # signed out
    assert sign_in(app.test_client(), "stays@example.com").status_code == 200


def test_bulk_remove_is_all_or_nothing(client, factory, db):
    account = factory.account()
    gm = factory.user(account, "group_manager")
    users = [factory.user(account, "user") for _ in range(3)]
    admin = factory.user(account, "administrator", first_name="Ada", last_name="Higher")
    sign_in(client, gm.username)
    ids = [str(u.id) for u in users] + [str(admin.id)]
    refused = post(client, "/users/remove", {"selected": ids, "confirm": "yes"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 403
    assert "Nothing was removed." in html and "Ada Higher has a higher user type than you." in html
    assert all(member_of(db, account, u) for u in users + [admin])

    step_one = post(client, "/users/remove", {"selected": ids[:3]})
    assert step_one.status_code == 200 and "Remove 3 users?" in step_one.get_data(as_text=True)
    assert all(member_of(db, account, u) for u in users)  # nothing happens before confirming
    done = post(client, "/users/remove", {"selected": ids[:3], "confirm": "yes",
                                          "next": "/users/?f.type=user"})
    assert done.status_code == 302 and done.headers["Location"] == "/users/?f.type=user"
    db.session.expire_all()
    assert not any(member_of(db, account, u) for u in users)
    assert member_of(db, account, admin) is not None


def test_bulk_remove_of_yourself_is_refused(client, factory, db):
    account = factory.account()
    admin = factory.user(account, "administrator")
    other = factory.user(account, "user")
    sign_in(client, admin.username)
    response = post(client, "/users/remove", {"selected": [str(admin.id), str(other.id)], "confirm": "yes"})
    assert response.status_code == 403 and "You cannot remove yourself here" in response.get_data(as_text=True)
    assert member_of(db, account, other) is not None


def test_bulk_remove_with_nothing_selected_says_so(client, factory):
    account = factory.account()
    sign_in(client, account.owner.username)
    response = post(client, "/users/remove", {})
    assert response.status_code == 302
    assert "Select at least one user first." in client.get("/users/").get_data(as_text=True)


def test_directory_users_are_disabled_instead_of_removed(client, factory, db):
    account = factory.account()
    target = factory.user(account, "user", email="dir@example.com")
    target.source = "ldap"
    db.session.commit()
    sign_in(client, account.owner.username)
    assert "disabled instead" in client.get(f"/users/{target.id}/remove").get_data(as_text=True)
    assert post(client, f"/users/{target.id}/remove", {"confirm": "yes"}).status_code == 302
    db.session.expire_all()
    membership = member_of(db, account, target)
    assert membership is not None and membership.enabled is False
    listing = client.get("/users/?f.status=disabled").get_data(as_text=True)
    assert "dir@example.com" in listing and "Directory users are disabled instead of removed" in listing


def test_remove_without_csrf_token_is_refused(client, factory, db):
    account = factory.account()
    target = factory.user(account, "user")
    sign_in(client, account.owner.username)
    response = client.post(f"/users/{target.id}/remove", data={"confirm": "yes"})
    assert response.status_code == 400
    assert member_of(db, account, target) is not None
