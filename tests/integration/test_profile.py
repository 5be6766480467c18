"""The profile: names, email, MFA switch per account policy, default remote control action,
change password (other browsers signed out), account memberships with aliases and primary."""
from __future__ import annotations

import pytest

from app.models import AuditEvent, User
from app.models.accounts import MfaPolicy
from tests.conftest import PASSWORD, csrf_token, sign_in

NEW_PASSWORD = "Brand-New-Pass-7"


def profile_data(client, **changes):
    data = {"csrf_token": csrf_token(client, "/profile"), "first_name": "Pat", "last_name": "Jones",
            "email": "pat.jones@example.com", "default_action": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_profile_shows_personal_info(client, login_as):
    user = login_as("group_manager")
    html = client.get("/profile").get_data(as_text=True)
    assert user.username in html
    assert "Group manager" in html
    assert "(cannot be changed)" in html


def test_edit_names_email_and_default_action(db, client, login_as):
    user = login_as("user")
    response = client.post("/profile", data=profile_data(client, default_action="viewer"),
                           follow_redirects=True)
    assert response.status_code == 200
    assert "Your profile was saved." in response.get_data(as_text=True)
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert (user.first_name, user.last_name, user.email) == ("Pat", "Jones", "pat.jones@example.com")
    assert user.memberships[0].default_action == "viewer"
    assert user.username.startswith("user-")  # the username never changes
    html = response.get_data(as_text=True)
    assert "Control with the installed viewer" in html
    event = db.session.query(AuditEvent).filter_by(action="profile.updated").one()
    assert "email" in event.details and "default_action" in event.details


@pytest.mark.parametrize("changes, message", [
    ({"email": "not-an-address"}, "is not a valid email address"),
    ({"email": ""}, "Enter your email address."),
    ({"first_name": "x" * 101}, "Field cannot be longer than 100 characters."),
    ({"default_action": "teleport"}, "Choose a default remote control action"),
])
def test_bad_profile_input_is_refused_and_nothing_is_written(db, client, login_as, changes, message):
    user = login_as("user")
    before = (user.first_name, user.last_name, user.email, user.memberships[0].default_action)
    response = client.post("/profile", data=profile_data(client, **changes))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert (user.first_name, user.last_name, user.email, user.memberships[0].default_action) == before
    assert db.session.query(AuditEvent).filter_by(action="profile.updated").count() == 0


def test_profile_post_without_csrf_token_is_rejected(client, login_as):
    login_as("user")
    response = client.post("/profile", data={"first_name": "X", "email": "x@example.com"})
    assert response.status_code == 400


def test_mfa_switch_is_offered_when_the_account_lets_users_choose(db, client, login_as):
    user = login_as("user")
    assert user.memberships[0].account.mfa_policy is MfaPolicy.per_user
    html = client.get("/profile").get_data(as_text=True)
    assert 'name="mfa_enabled"' in html
    client.post("/profile", data=profile_data(client, email=user.email, mfa_enabled="y"))
    db.session.expire_all()
    assert db.session.get(User, user.id).mfa_enabled is True


def test_mfa_switch_is_hidden_with_a_reason_when_the_account_turned_it_off(db, client, factory):
    account = factory.account(mfa_policy=MfaPolicy.disabled)
    user = factory.user(account, "user")
    sign_in(client, user.username)
    html = client.get("/profile").get_data(as_text=True)
    assert 'name="mfa_enabled"' not in html
    assert "Multi-factor authentication is turned off for" in html
    client.post("/profile", data=profile_data(client, email=user.email, mfa_enabled="y"))
    db.session.expire_all()
    assert db.session.get(User, user.id).mfa_enabled is False


def test_mfa_is_shown_on_and_locked_when_the_account_enforces_it(db, client, factory):
    account = factory.account(mfa_policy=MfaPolicy.enforced)
    user = factory.user(account, "user")
    user.mfa_enabled = True
    db.session.commit()
    sign_in(client, user.username)
    html = client.get("/profile").get_data(as_text=True)
    assert 'name="mfa_enabled"' not in html
    assert '<input type="checkbox" checked disabled>' in html
    assert "requires an email code for everyone" in html
    client.post("/profile", data=profile_data(client, email=user.email))  # no mfa_enabled sent
    db.session.expire_all()
    assert db.session.get(User, user.id).mfa_enabled is True


def test_directory_user_cannot_change_email_or_password(db, client, factory):
    account = factory.account()
    user = factory.user(account, "user")
    user.source = "ldap"
    db.session.commit()
    sign_in(client, user.username)
    html = client.get("/profile").get_data(as_text=True)
    assert "comes from your company directory" in html
    assert "managed there and cannot be changed" in html
    assert 'action="/profile/password"' not in html

    # Names can still be saved; the email stays what the directory says.
    response = client.post("/profile", data=profile_data(client, first_name="Dir", email=None),
                           follow_redirects=True)
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(User, user.id).first_name == "Dir"

    response = client.post("/profile/password", data={
        "csrf_token": csrf_token(client, "/profile"), "current_password": PASSWORD,
        "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 403


def password_data(client, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    return {"csrf_token": csrf_token(client, "/profile"), "current_password": current,
            "password": new, "confirm": new if confirm is None else confirm}


@pytest.mark.parametrize("kwargs, message", [
    ({"current": "Wrong-Pass-1"}, "The current password is not correct."),
    ({"new": "short1A"}, "at least 8 characters"),
    ({"new": "alllowercase1"}, "an upper-case letter"),
    ({"confirm": "Something-Else-9"}, "The two passwords are not the same."),
    ({"new": PASSWORD}, "must differ from the current one"),
])
def test_bad_password_change_is_refused_and_keeps_the_old_password(db, client, login_as, kwargs, message):
    user = login_as("user")
    old_hash = user.password_hash
    response = client.post("/profile/password", data=password_data(client, **kwargs))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == old_hash
    assert client.get("/profile").status_code == 200  # still signed in


def test_password_change_signs_out_other_browsers_and_keeps_this_one(app, db, client, factory):
    account = factory.account()
    user = factory.user(account, "user")
    other = app.test_client()
    sign_in(other, user.username)
    sign_in(client, user.username)
    assert other.get("/profile").status_code == 200

    response = client.post("/profile/password", data=password_data(client), follow_redirects=True)
    assert response.status_code == 200
    assert "Every other browser signed in as you was signed out." in response.get_data(as_text=True)

    assert client.get("/profile").status_code == 200  # this browser stays signed in
    response = other.get("/profile")
    assert response.status_code == 302 and "/login" in response.headers["Location"]

    fresh = app.test_client()
    assert sign_in(fresh, user.username, NEW_PASSWORD).request.path == "/my-devices"
    assert db.session.query(AuditEvent).filter_by(action="password.changed").count() == 1


def test_recovery_codes_link_appears_only_when_that_page_exists(app, client, login_as):
    login_as("user")
    html = client.get("/profile").get_data(as_text=True)
    if "auth.recovery_codes" in app.view_functions:
        from flask import url_for

        with app.test_request_context():
            assert f'href="{url_for("auth.recovery_codes")}"' in html
    else:
        assert "Recovery codes</a>" not in html


def two_accounts(factory):
    first = factory.account("Alpha Ltd")
    second = factory.account("Beta Inc")
    user = factory.user(first, "user", email="member@example.com")
    factory.user(second, "administrator", email="member@example.com")
    return first, second, user


def memberships_data(client, user, aliases, primary):
    data = {"csrf_token": csrf_token(client, "/profile"), "primary": str(primary)}
    for i, membership in enumerate(sorted(user.memberships, key=lambda m: m.account.company)):
        data[f"aliases-{i}-account_id"] = str(membership.account_id)
        data[f"aliases-{i}-alias"] = aliases.get(membership.account_id, "")
    return data


def test_alias_per_account_and_primary_account(db, client, factory):
    first, second, user = two_accounts(factory)
    sign_in(client, user.username)
    html = client.get("/profile").get_data(as_text=True)
    assert "Alpha Ltd" in html and "Beta Inc" in html

    response = client.post("/profile/accounts", follow_redirects=True, data=memberships_data(
        client, user, {first.id: "Day job", second.id: "Side project"}, second.id))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Your accounts were saved." in html
    # The profile menu now names the current account by its alias, and both in the switcher.
    assert '<span class="in-account">Day job</span>' in html
    assert "Side project" in html
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert {m.account_id: m.alias for m in user.memberships} == {first.id: "Day job", second.id: "Side project"}
    assert user.primary_account_id == second.id
    assert db.session.query(AuditEvent).filter_by(action="profile.memberships_updated").count() == 1

    # The next sign-in starts in the primary account, where this user is an administrator.
    fresh = client.application.test_client()
    assert sign_in(fresh, user.username).request.path == "/dashboard"


def test_bad_memberships_input_writes_nothing(db, client, factory):
    first, second, user = two_accounts(factory)
    stranger = factory.account("Gamma Co")
    sign_in(client, user.username)

    too_long = memberships_data(client, user, {first.id: "x" * 101, second.id: "ok"}, first.id)
    response = client.post("/profile/accounts", data=too_long)
    assert response.status_code == 422
    assert "At most 100 characters." in response.get_data(as_text=True)

    not_mine = memberships_data(client, user, {first.id: "A", second.id: "B"}, stranger.id)
    response = client.post("/profile/accounts", data=not_mine)
    assert response.status_code == 422
    assert "Choose one of your enabled accounts" in response.get_data(as_text=True)

    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert {m.alias for m in user.memberships} == {""}
    assert user.primary_account_id == first.id
