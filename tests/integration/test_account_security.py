"""Account security (E1): MFA disabled / per user / enforced, audit logging on and off."""
from __future__ import annotations

import json

from sqlalchemy import select

from app.models import AuditEvent
from app.models.accounts import MfaPolicy
from tests.integration.auth_flow import to_code_step, token_of


def _save(client, policy: str, audit: bool):
    data = {"csrf_token": token_of(client, "/security/account"), "mfa_policy": policy}
    if audit:
        data["audit_enabled"] = "y"
    return client.post("/security/account", data=data, follow_redirects=True)


def _events(db, account, action):
    return db.session.scalars(select(AuditEvent).where(
        AuditEvent.account_id == account.id, AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_administrator_sees_the_current_settings(client, login_as):
    login_as("administrator")
    page = client.get("/security/account").get_data(as_text=True)
    assert "Multi-factor authentication" in page
    assert '<option selected value="per_user">' in page
    assert '<input checked id="audit_enabled" name="audit_enabled"' in page


def test_group_manager_may_not_open_it(client, login_as):
    login_as("group_manager")
    assert client.get("/security/account").status_code == 403


def test_user_may_neither_open_nor_save_it(client, login_as):
    login_as("user")
    assert client.get("/security/account").status_code == 403
    token = token_of(client, "/profile")
    assert client.post("/security/account", data={"csrf_token": token, "mfa_policy": "disabled"}).status_code == 403


def test_enforcing_mfa_asks_every_user_for_a_code(app, client, login_as, factory, db, outbox):
    admin = login_as("administrator")
    account = admin.primary_account
    response = _save(client, "enforced", True)
    assert "Account security saved." in response.get_data(as_text=True)
    assert account.mfa_policy is MfaPolicy.enforced
    event = _events(db, account, "account_security.changed")[-1]
    assert json.loads(event.details)["after"]["mfa_policy"] == "enforced"
    assert event.actor == admin.username

    colleague = factory.user(account, "user")
    assert to_code_step(app.test_client(), colleague.username).headers["Location"].endswith("/login/code")


def test_switching_audit_off_is_itself_recorded_then_nothing_more(app, client, login_as, factory, db):
    admin = login_as("administrator")
    account = admin.primary_account
    _save(client, "per_user", False)
    assert account.audit_enabled is False
    off = _events(db, account, "account_security.changed")
    assert len(off) == 1 and json.loads(off[0].details)["after"]["audit_enabled"] is False

    colleague = factory.user(account, "user")
    from tests.conftest import sign_in

    sign_in(app.test_client(), colleague.username)
    assert db.session.scalars(select(AuditEvent).where(
        AuditEvent.actor == colleague.username)).all() == [], "audit is off: the sign-in is not logged"

    _save(client, "per_user", True)
    assert account.audit_enabled is True
    assert len(_events(db, account, "account_security.changed")) == 2, "switching on is recorded too"


def test_saving_without_changes_writes_nothing(client, login_as, db):
    admin = login_as("administrator")
    before = len(_events(db, admin.primary_account, "account_security.changed"))
    response = _save(client, "per_user", True)
    assert "Nothing changed." in response.get_data(as_text=True)
    assert len(_events(db, admin.primary_account, "account_security.changed")) == before


def test_an_unknown_policy_is_refused_and_nothing_changes(client, login_as):
    admin = login_as("administrator")
    token = token_of(client, "/security/account")
    response = client.post("/security/account", data={"csrf_token": token, "mfa_policy": "sometimes"})
    assert response.status_code == 422
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert admin.primary_account.mfa_policy is MfaPolicy.per_user
