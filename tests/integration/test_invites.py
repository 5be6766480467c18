"""Inviting users, one or many, within the licence; the invitation mail; "set up your account";
expired and used links; resending at most five times; an existing user invited into a second
account."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import AuditEvent, Invite, Membership, User, UserType, utcnow
from tests.conftest import csrf_token, sign_in

NEW_PASSWORD = "Brand-New-Pass-7"


def invite(client, emails, user_type="user", **extra):
    data = {"csrf_token": csrf_token(client, "/users/invite"), "emails": emails,
            "user_type": user_type, "default_action": "", "enabled": "y", **extra}
    return client.post("/users/invite", data=data)


def link_in(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"http://localhost(/invite/[A-Za-z0-9_-]+)", text).group(1)


@pytest.fixture
def manager(client, factory):
    account = factory.account("Invitech", max_users=6, max_ondemand_users=2)
    user = factory.user(account, "group_manager", email="gm@invitech.example", first_name="Gina",
                        last_name="Manager")
    sign_in(client, user.username)
    return account, user


def usernames_in(db, account) -> set[str]:
    return set(db.session.scalars(
        select(User.username).join(Membership, Membership.user_id == User.id)
        .where(Membership.account_id == account.id)))


def test_inviting_one_address_creates_a_pending_user_and_mails_a_link(client, manager, db, outbox):
    account, gm = manager
    response = invite(client, "New.Person@Example.com", mfa="y")
    assert response.status_code == 302
    [message] = outbox()
    assert message["To"] == "new.person@example.com"
    assert "invit" in message["Subject"].lower()
    assert "Gina Manager invited you to join Invitech" in message.get_body(("plain",)).get_content()
    assert link_in(message).startswith("/invite/")

    user = db.session.scalar(select(User).where(User.username == "new.person@example.com"))
    assert user.password_hash is None and user.mfa_enabled and user.primary_account_id == account.id
    invite_row = db.session.scalar(select(Invite))
    assert invite_row.sent_count == 1
    assert timedelta(days=6, hours=23) < invite_row.expires_at - utcnow() <= timedelta(days=7)
    assert link_in(message).split("/")[-1] not in invite_row.token_hash  # only the hash is kept

    listing = client.get("/users/?f.status=pending").get_data(as_text=True)
    assert "new.person@example.com" in listing and "badge warn\">Invite pending" in listing
    assert db.session.scalar(select(AuditEvent.action).where(AuditEvent.target == user.username)) == "user.invited"


def test_inviting_many_addresses_separated_any_way(client, manager, db, outbox):
    account, gm = manager
    response = invite(client, "a@example.com, b@example.com\nc@example.com  d@example.com;")
    assert response.status_code == 302
    assert sorted(m["To"] for m in outbox()) == ["a@example.com", "b@example.com",
                                                  "c@example.com", "d@example.com"]
    flashed = client.get("/users/").get_data(as_text=True)
    assert "Invitation sent to a@example.com, b@example.com, c@example.com, d@example.com" in flashed


def test_one_bad_address_creates_nothing_and_names_every_problem(client, manager, db, outbox):
    account, gm = manager
    before = usernames_in(db, account)
    response = invite(client, "ok@example.com, not-an-address, ok@example.com")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not-an-address is not a valid email address." in html
    assert "ok@example.com is listed more than once." in html
    assert usernames_in(db, account) == before and outbox() == []


def test_existing_members_are_reported_and_nothing_is_sent(client, manager, db, outbox):
    account, gm = manager
    response = invite(client, "fresh@example.com gm@invitech.example")
    assert response.status_code == 409
    assert "Already users of this account: gm@invitech.example" in response.get_data(as_text=True)
    assert "fresh@example.com" not in usernames_in(db, account) and outbox() == []


def test_user_licence_limit_holds_for_the_whole_batch(client, manager, db, outbox):
    account, gm = manager  # 2 of 6 users in use
    response = invite(client, "1@example.com 2@example.com 3@example.com 4@example.com 5@example.com")
    assert response.status_code == 409
    assert "The licence allows 6 users and 2 are in use: there is no room for 5 more." in \
        response.get_data(as_text=True)
    assert len(usernames_in(db, account)) == 2 and outbox() == []
    assert invite(client, "1@example.com 2@example.com 3@example.com 4@example.com").status_code == 302


def test_ondemand_licence_limit_is_enforced(client, manager, db, outbox):
    account, gm = manager  # the owner holds 1 of 2 OnDemand users
    response = invite(client, "x@example.com y@example.com", ondemand_enabled="y")
    assert response.status_code == 409
    assert "The licence allows 2 OnDemand users and 1 are in use." in response.get_data(as_text=True)
    assert invite(client, "x@example.com", ondemand_enabled="y").status_code == 302


def test_a_group_manager_cannot_invite_administrators(client, manager, db, outbox):
    account, gm = manager
    page = client.get("/users/invite").get_data(as_text=True)
    assert 'value="administrator"' not in page and 'value="group_manager"' in page
    response = invite(client, "boss@example.com", user_type="administrator")
    assert response.status_code == 422
    assert "boss@example.com" not in usernames_in(db, account)


def test_regular_users_cannot_invite(client, login_as):
    login_as("user")
    assert client.get("/users/invite").status_code == 403


def test_set_up_account_from_the_mailed_link_signs_in_and_lands_on_my_devices(app, manager, db, outbox):
    client = app.test_client()  # the invitee's browser, nobody signed in
    account, gm = manager
    inviter = app.test_client()
    sign_in(inviter, gm.username)
    invite(inviter, "joiner@example.com")
    link = link_in(outbox()[-1])

    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Set up your account" in html and "Gina Manager invited you" in html and "joiner@example.com" in html

    token = csrf_token(client, link)
    mismatch = client.post(link, data={"csrf_token": token, "first_name": "Jo", "last_name": "Iner",
                                       "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"})
    assert mismatch.status_code == 422 and "The two passwords are not the same." in mismatch.get_data(as_text=True)
    weak = client.post(link, data={"csrf_token": token, "first_name": "Jo", "last_name": "Iner",
                                   "password": "short", "confirm": "short"})
    assert weak.status_code == 422 and "at least 8 characters" in weak.get_data(as_text=True)
    assert db.session.scalar(select(User.password_hash).where(User.username == "joiner@example.com")) is None

    done = client.post(link, data={"csrf_token": token, "first_name": "Jo", "last_name": "Iner",
                                   "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/my-devices")
    assert "Jo Iner" in client.get("/my-devices").get_data(as_text=True)
    assert client.get(link).status_code == 404  # used up
    assert db.session.scalar(select(Invite)) is None

    fresh = app.test_client()
    assert sign_in(fresh, "joiner@example.com", NEW_PASSWORD).status_code == 200
    assert "Jo Iner" in fresh.get("/my-devices").get_data(as_text=True)


def test_invited_administrator_lands_on_the_dashboard(app, factory, outbox):
    account = factory.account("Landing")
    owner_client = app.test_client()
    sign_in(owner_client, account.owner.username)
    invite(owner_client, "admin2@example.com", user_type="administrator")
    link = link_in(outbox()[-1])
    client = app.test_client()
    done = client.post(link, data={"csrf_token": csrf_token(client, link), "first_name": "Ad",
                                   "last_name": "Min", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.headers["Location"].endswith("/dashboard")


def test_expired_link_answers_410_and_unknown_link_404(client, manager, db, outbox):
    account, gm = manager
    invite(client, "late@example.com")
    link = link_in(outbox()[-1])
    row = db.session.scalar(select(Invite))
    row.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    anonymous = client.application.test_client()
    expired = anonymous.get(link)
    assert expired.status_code == 410 and "This invitation has expired" in expired.get_data(as_text=True)
    unknown = anonymous.get("/invite/not-a-real-token")
    assert unknown.status_code == 404 and "This invitation link is not valid" in unknown.get_data(as_text=True)


def test_resend_gives_a_new_link_and_stops_after_five_sends(client, manager, db, outbox):
    account, gm = manager
    invite(client, "slow@example.com")
    user_id = db.session.scalar(select(User.id).where(User.username == "slow@example.com"))
    first_link = link_in(outbox()[-1])
    row = db.session.scalar(select(Invite))
    row.expires_at = utcnow() + timedelta(days=1)
    db.session.commit()

    for expected in (2, 3, 4, 5):
        response = client.post(f"/users/{user_id}/resend-invite",
                               data={"csrf_token": csrf_token(client, f"/users/{user_id}")},
                               follow_redirects=True)
        assert f"The invitation was sent again ({expected} of 5)" in response.get_data(as_text=True)
    db.session.refresh(row)
    assert row.sent_count == 5 and row.expires_at - utcnow() > timedelta(days=6, hours=23)
    assert len(outbox()) == 5
    assert client.application.test_client().get(first_link).status_code == 404  # replaced
    assert client.application.test_client().get(link_in(outbox()[-1])).status_code == 200

    details = client.get(f"/users/{user_id}").get_data(as_text=True)
    assert "Sent 5 of 5 times" in details and "Resend invite" not in details
    refused = client.post(f"/users/{user_id}/resend-invite",
                          data={"csrf_token": csrf_token(client, f"/users/{user_id}")},
                          follow_redirects=True)
    assert "was sent 5 times, the most allowed" in refused.get_data(as_text=True)
    assert len(outbox()) == 5
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action == "user.invite_resent")).all()
    assert len(actions) == 4


def test_existing_user_invited_into_a_second_account_is_added_and_told_to_sign_in(app, factory, db, outbox):
    home = factory.account("Home")
    member = factory.user(home, "user", email="shared@example.com", first_name="Sam", last_name="Shared")
    second = factory.account("Second")
    client = app.test_client()
    sign_in(client, second.owner.username)
    response = invite(client, "shared@example.com", user_type="group_manager")
    assert response.status_code == 302
    [message] = outbox()
    body = message.get_body(("plain",)).get_content()
    assert "You already have a Tessera sign-in" in body and "http://localhost/login" in body
    assert "/invite/" not in body
    assert db.session.scalar(select(Invite)) is None
    memberships = db.session.scalars(select(Membership).where(Membership.user_id == member.id)).all()
    assert {(m.account_id, m.type) for m in memberships} == {(home.id, UserType.user),
                                                            (second.id, UserType.group_manager)}
    assert db.session.get(User, member.id).primary_account_id == home.id
    listing = client.get("/users/?f.username=shared").get_data(as_text=True)
    assert "badge warn\">Invite pending" not in listing and "Sam Shared" in listing
