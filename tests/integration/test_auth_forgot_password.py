"""Forgot password: a neutral answer, a single-use link valid one hour, never for directory
users; the new-password form with the rules and the strength meter (A1)."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models import AuditEvent, PasswordReset, utcnow
from tests.conftest import PASSWORD, sign_in
from tests.integration.auth_flow import link_in, path_of, signed_in_sid, token_of

NEW_PASSWORD = "Brand-New-Pass-42"


def _ask(client, name: str):
    token = token_of(client, "/login/forgot")
    return client.post("/login/forgot", data={"csrf_token": token, "username": name})


def _neutral(text: str) -> str:
    """The answer with the name typed taken out, to compare answers for different names."""
    start = text.index('<p class="flash flash-success"')
    return text[start:text.index("</section>") if "</section>" in text else len(text)]


def test_local_user_gets_a_reset_link_by_email(client, factory, db, outbox):
    user = factory.user(factory.account())
    response = _ask(client, user.username)
    assert response.status_code == 200
    assert "an email with a link to choose a new one is on its way" in response.get_data(as_text=True)
    mails = outbox()
    assert len(mails) == 1 and mails[0]["To"] == user.email
    link = link_in(mails[0])
    row = db.session.scalar(select(PasswordReset).where(PasswordReset.user_id == user.id))
    token = link.rsplit("/", 1)[1]
    assert token not in row.token_hash and len(row.token_hash) == 64
    assert abs((row.expires_at - utcnow()) - timedelta(hours=1)) < timedelta(minutes=1)
    assert "password.reset_requested" in db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.target == user.username)).all()


def test_the_email_address_works_as_well_as_the_username(client, factory, outbox):
    user = factory.user(factory.account())
    _ask(client, user.email.upper())
    assert len(outbox()) == 1


def test_unknown_user_gets_the_same_answer_and_no_mail(client, factory, outbox):
    user = factory.user(factory.account())
    known = _ask(client, user.username).get_data(as_text=True)
    unknown = _ask(client, "nobody-at-all@example.com").get_data(as_text=True)
    assert _neutral(known).replace(user.username, "X") == \
        _neutral(unknown).replace("nobody-at-all@example.com", "X")
    assert len(outbox()) == 1


def test_directory_user_gets_no_link(client, factory, db, outbox):
    user = factory.user(factory.account())
    user.source = "ldap"
    db.session.commit()
    response = _ask(client, user.username)
    assert response.status_code == 200
    assert "on its way" in response.get_data(as_text=True)
    assert outbox() == []
    assert db.session.scalar(select(PasswordReset).where(PasswordReset.user_id == user.id)) is None


def test_reset_page_shows_the_rules_and_the_strength_meter(client, factory, outbox):
    user = factory.user(factory.account())
    _ask(client, user.username)
    page = client.get(path_of(link_in(outbox()[-1]))).get_data(as_text=True)
    assert 'name="password"' in page and 'name="confirm"' in page
    assert "data-strength" in page
    assert "js/password-strength.js" in page
    assert "At least 8 characters" in page and "A digit" in page
    assert 'class="strength" id="password-strength" hidden' in page  # no meter without JS
    assert "<script>" not in page and "style=" not in page


def test_weak_or_mismatched_password_is_refused_with_the_reason(client, factory, db, outbox):
    user = factory.user(factory.account())
    _ask(client, user.username)
    path = path_of(link_in(outbox()[-1]))
    token = token_of(client, path)
    weak = client.post(path, data={"csrf_token": token, "password": "short", "confirm": "short"})
    assert weak.status_code == 422
    text = weak.get_data(as_text=True)
    assert "The password needs at least 8 characters, an upper-case letter, a digit." in text
    mismatch = client.post(path, data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": "Other-Pass-42"})
    assert "The two passwords are not the same." in mismatch.get_data(as_text=True)
    assert sign_in(client, user.username).status_code == 200  # old password still works
    assert db.session.scalar(select(PasswordReset.used_at).where(PasswordReset.user_id == user.id)) is None


def test_reset_link_works_once_and_signs_out_everywhere(app, factory, db, outbox):
    user = factory.user(factory.account(), "administrator")
    laptop, phone, anonymous = app.test_client(), app.test_client(), app.test_client()
    sign_in(laptop, user.username)
    sign_in(phone, user.username)
    assert laptop.get("/dashboard").status_code == 200

    _ask(anonymous, user.username)
    path = path_of(link_in(outbox()[-1]))
    token = token_of(anonymous, path)
    response = anonymous.post(path, data={"csrf_token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                              follow_redirects=True)
    assert "Your password was changed" in response.get_data(as_text=True)

    for browser in (laptop, phone):
        assert browser.get("/dashboard").status_code in (302, 401, 403)
    assert anonymous.get(path).status_code == 410
    assert "Sign in" in sign_in(anonymous, user.username, PASSWORD).get_data(as_text=True)
    assert signed_in_sid(anonymous) is None
    fresh = app.test_client()
    assert sign_in(fresh, user.username, NEW_PASSWORD).status_code == 200
    assert signed_in_sid(fresh) is not None
    assert "password.reset" in db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.target == user.username)).all()


def test_reset_link_expires_after_an_hour(client, factory, db, outbox):
    user = factory.user(factory.account())
    _ask(client, user.username)
    path = path_of(link_in(outbox()[-1]))
    row = db.session.scalar(select(PasswordReset).where(PasswordReset.user_id == user.id))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get(path)
    assert response.status_code == 410
    assert "This link no longer works" in response.get_data(as_text=True)


def test_only_the_newest_link_works(client, factory, outbox):
    user = factory.user(factory.account())
    _ask(client, user.username)
    first = path_of(link_in(outbox()[-1]))
    _ask(client, user.username)
    second = path_of(link_in(outbox()[-1]))
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200


def test_made_up_link_is_refused(client):
    assert client.get("/login/reset/not-a-real-token").status_code == 410
