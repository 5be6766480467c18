"""Recovery codes: sets of ten, shown once, printable and downloadable, single use (A1, A4)."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.models import AuditEvent, RecoveryCode
from app.models.accounts import MfaPolicy
from tests.conftest import sign_in
from tests.integration.auth_flow import signed_in_sid, submit_code, to_code_step, token_of

CODE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>")


def _generate(client) -> tuple[list[str], str]:
    token = token_of(client, "/profile/recovery-codes")
    response = client.post("/profile/recovery-codes", data={"csrf_token": token})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    return CODE.findall(page), page


def test_generating_shows_ten_codes_once_with_print_and_download(client, factory, db):
    user = factory.user(factory.account(), "user")
    sign_in(client, user.username)
    page = client.get("/profile/recovery-codes").get_data(as_text=True)
    assert "You have no recovery codes yet." in page

    codes, page = _generate(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "data-print" in page and "js/recovery-codes.js" in page
    assert "/profile/recovery-codes.txt" in page
    assert "no-store" in client.get("/profile/recovery-codes").headers["Cache-Control"]

    stored = db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all()
    assert len(stored) == 10
    assert not any(code in row.code_hash for row in stored for code in codes)

    again = client.get("/profile/recovery-codes").get_data(as_text=True)
    assert CODE.findall(again) == [], "codes are never shown a second time"
    assert "You have <b>10 unused</b> recovery codes of 10" in again


def test_download_works_right_after_generation_and_never_later(client, factory):
    user = factory.user(factory.account(), "user")
    sign_in(client, user.username)
    codes, _ = _generate(client)

    download = client.get("/profile/recovery-codes.txt")
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("text/plain")
    assert "attachment" in download.headers["Content-Disposition"]
    text = download.get_data(as_text=True)
    assert all(code in text for code in codes)

    assert client.get("/profile/recovery-codes.txt").status_code == 410


def test_download_is_gone_once_the_user_opened_another_page(client, factory):
    user = factory.user(factory.account(), "user")
    sign_in(client, user.username)
    _generate(client)
    client.get("/profile/recovery-codes")
    response = client.get("/profile/recovery-codes.txt")
    assert response.status_code == 410
    assert "only right after they are generated" in response.get_data(as_text=True)


def test_a_recovery_code_signs_in_once(app, factory, db):
    account = factory.account(mfa_policy=MfaPolicy.enforced)
    user = factory.user(account, "user")
    from app.auth import recovery

    codes = recovery.generate_set(user)

    first = app.test_client()
    to_code_step(first, user.username)
    page = first.get("/login/code?recovery=1").get_data(as_text=True)
    assert "Recovery code" in page
    response = submit_code(first, codes[3].upper().replace("-", " "))
    assert response.status_code == 302 and signed_in_sid(first) is not None
    events = db.session.scalars(select(AuditEvent.action).where(AuditEvent.target == user.username)).all()
    assert "sign_in.recovery_code_used" in events

    second = app.test_client()
    to_code_step(second, user.username)
    text = submit_code(second, codes[3]).get_data(as_text=True)
    assert "neither the 6-digit code from the email nor an unused recovery code" in text
    assert signed_in_sid(second) is None
    assert submit_code(second, codes[4]).status_code == 302
    assert recovery.status(user).unused == 8


def test_a_new_set_voids_the_old_one(app, client, factory, db):
    account = factory.account(mfa_policy=MfaPolicy.disabled)
    user = factory.user(account, "user")
    sign_in(client, user.username)
    old, _ = _generate(client)
    new, page = _generate(client)
    assert set(old).isdisjoint(new)
    assert len(db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)).all()) == 10

    account.mfa_policy = MfaPolicy.enforced
    db.session.commit()
    browser = app.test_client()
    to_code_step(browser, user.username)
    assert submit_code(browser, old[0]).status_code == 200
    assert signed_in_sid(browser) is None
    assert submit_code(browser, new[0]).status_code == 302


def test_recovery_codes_page_needs_a_signed_in_user(client):
    assert client.get("/profile/recovery-codes").status_code in (302, 401, 403)
    assert client.get("/profile/recovery-codes.txt").status_code in (302, 401, 403)
