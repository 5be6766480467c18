"""Sign-in in steps: username, password, and the emailed code where MFA applies (A1)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models import AuditEvent, EmailCode, utcnow
from app.models.accounts import MfaPolicy
from tests.conftest import PASSWORD, sign_in
from tests.integration.auth_flow import code_in, signed_in_sid, submit_code, to_code_step, token_of


def _mfa_user(factory, db, policy=MfaPolicy.per_user, enabled=True):
    account = factory.account(mfa_policy=policy)
    user = factory.user(account, "administrator")
    user.mfa_enabled = enabled
    db.session.commit()
    return user


def _actions(db, username):
    return [e.action for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.target == username).order_by(AuditEvent.id))]


def test_user_without_mfa_signs_in_with_password_only(client, factory, db):
    account = factory.account()
    user = factory.user(account, "administrator")
    response = sign_in(client, user.username)
    assert response.status_code == 200
    assert "Dashboard" in response.get_data(as_text=True)
    assert "sign_in.success" in _actions(db, user.username)


def test_wrong_password_is_refused_with_a_message_and_audited(client, factory, db):
    user = factory.user(factory.account())
    response = sign_in(client, user.username, "Wrong-Password-1")
    assert "The username or password is not correct." in response.get_data(as_text=True)
    assert signed_in_sid(client) is None
    assert _actions(db, user.username)[-1] == "sign_in.failed"


def test_unknown_username_gets_the_same_answer_as_a_wrong_password(client):
    response = sign_in(client, "nobody@example.com", "Whatever-123")
    assert "The username or password is not correct." in response.get_data(as_text=True)


def test_full_mfa_sign_in_reads_the_code_from_the_mail(client, factory, db, outbox):
    user = _mfa_user(factory, db)
    answer = to_code_step(client, user.username)
    assert answer.headers["Location"].endswith("/login/code")
    assert signed_in_sid(client) is None, "no session before the second factor"

    page = client.get("/login/code").get_data(as_text=True)
    assert 'name="code"' in page
    assert "Use a recovery code instead" in page and "Send a new code" in page
    assert "Change user account" in page

    mails = outbox()
    assert len(mails) == 1
    assert "sign-in code" in mails[0]["Subject"]
    assert mails[0]["To"] == user.email

    response = submit_code(client, code_in(mails[0]), follow=True)
    assert response.status_code == 200
    assert "Dashboard" in response.get_data(as_text=True)
    assert signed_in_sid(client) is not None
    code_row = db.session.scalar(select(EmailCode).where(EmailCode.user_id == user.id))
    assert code_row.used_at is not None
    assert code_in(mails[0]) not in code_row.code_hash  # only a digest is stored


def test_a_used_code_cannot_sign_in_again(app, factory, db, outbox):
    user = _mfa_user(factory, db)
    first = app.test_client()
    to_code_step(first, user.username)
    code = code_in(outbox()[-1])
    submit_code(first, code)

    second = app.test_client()
    to_code_step(second, user.username)  # sends a new code, voiding the first
    response = submit_code(second, code)
    assert "That code" in response.get_data(as_text=True)
    assert signed_in_sid(second) is None


def test_five_wrong_codes_void_the_code(client, factory, db, outbox):
    user = _mfa_user(factory, db)
    to_code_step(client, user.username)
    good = code_in(outbox()[-1])
    wrong = "000000" if good != "000000" else "111111"
    for tries_left in (4, 3, 2, 1):
        text = submit_code(client, wrong).get_data(as_text=True)
        assert f"{tries_left} tr" in text
    assert "now void" in submit_code(client, wrong).get_data(as_text=True)
    text = submit_code(client, good).get_data(as_text=True)
    assert "no longer valid" in text
    assert signed_in_sid(client) is None
    assert _actions(db, user.username).count("sign_in.code_failed") == 6


def test_an_expired_code_is_refused(client, factory, db, outbox):
    user = _mfa_user(factory, db)
    to_code_step(client, user.username)
    row = db.session.scalar(select(EmailCode).where(EmailCode.user_id == user.id))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    text = submit_code(client, code_in(outbox()[-1])).get_data(as_text=True)
    assert "That code has expired. Send a new code." in text
    assert signed_in_sid(client) is None


def test_send_a_new_code_voids_the_older_one(client, factory, db, outbox):
    user = _mfa_user(factory, db)
    to_code_step(client, user.username)
    old = code_in(outbox()[-1])
    response = client.post("/login/code/resend", data={"csrf_token": token_of(client, "/login/code")},
                           follow_redirects=True)
    assert "A new code is on its way" in response.get_data(as_text=True)
    assert len(outbox()) == 2
    new = code_in(outbox()[-1])
    if old != new:
        assert "That code" in submit_code(client, old).get_data(as_text=True)
    assert submit_code(client, new).status_code == 302
    assert signed_in_sid(client) is not None


def test_enforced_policy_asks_for_a_code_even_when_the_user_did_not_enable_it(client, factory, db, outbox):
    user = _mfa_user(factory, db, policy=MfaPolicy.enforced, enabled=False)
    assert to_code_step(client, user.username).headers["Location"].endswith("/login/code")
    assert len(outbox()) == 1


def test_disabled_policy_ignores_the_users_own_switch(client, factory, db, outbox):
    user = _mfa_user(factory, db, policy=MfaPolicy.disabled, enabled=True)
    assert to_code_step(client, user.username).headers["Location"].endswith("/dashboard")
    assert outbox() == []


def test_mfa_applies_when_any_other_membership_enforces_it(client, factory, db, outbox):
    from app.models import Membership, UserType

    home = factory.account(mfa_policy=MfaPolicy.disabled)
    strict = factory.account(mfa_policy=MfaPolicy.enforced)
    user = factory.user(home, "user")
    db.session.add(Membership(user=user, account=strict, type=UserType.user))
    db.session.commit()
    assert to_code_step(client, user.username).headers["Location"].endswith("/login/code")

    # ... but not through a membership that is switched off
    membership = next(m for m in user.memberships if m.account_id == strict.id)
    membership.enabled = False
    db.session.commit()
    other = client.application.test_client()
    assert "/login/code" not in to_code_step(other, user.username).headers["Location"]
    assert signed_in_sid(other) is not None


def test_change_user_account_goes_back_to_step_one_from_every_step(client, factory, db, outbox):
    user = _mfa_user(factory, db)
    token = token_of(client, "/login")
    client.post("/login", data={"csrf_token": token, "username": user.username})
    assert "Change user account" in client.get("/login/password").get_data(as_text=True)
    assert client.get("/login/change-user").headers["Location"].endswith("/login")
    assert client.get("/login/password").headers["Location"].endswith("/login")

    to_code_step(client, user.username)
    client.get("/login/change-user")
    assert client.get("/login/code").headers["Location"].endswith("/login")
    assert "Forgot password?" not in client.get("/login").get_data(as_text=True)


def test_password_step_links_to_forgot_password(client):
    token = token_of(client, "/login")
    client.post("/login", data={"csrf_token": token, "username": "someone@example.com"})
    page = client.get("/login/password").get_data(as_text=True)
    assert "Forgot password?" in page and "/login/forgot" in page


def test_code_step_is_refused_after_the_password_changed_meanwhile(client, factory, db, outbox):
    user = _mfa_user(factory, db)
    to_code_step(client, user.username)
    code = code_in(outbox()[-1])
    token = token_of(client, "/login/code")
    user.session_version += 1  # what a password change does
    db.session.commit()
    response = client.post("/login/code", data={"csrf_token": token, "code": code})
    assert response.headers["Location"].endswith("/login")
    assert signed_in_sid(client) is None


def test_sign_in_returns_to_the_page_asked_for(client, factory, db, outbox):
    user = _mfa_user(factory, db)
    token = token_of(client, "/login")
    client.post("/login?next=/users", data={"csrf_token": token, "username": user.username})
    client.post("/login/password", data={"csrf_token": token, "password": PASSWORD})
    response = submit_code(client, code_in(outbox()[-1]))
    assert response.headers["Location"].endswith("/users")
