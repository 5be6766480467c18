"""The sign-in code and the reset link travel over real SMTP (an aiosmtpd listener)."""
from __future__ import annotations

from app.models.accounts import MfaPolicy
from tests.integration.auth_flow import code_in, link_in, signed_in_sid, submit_code, to_code_step, token_of


def test_sign_in_code_arrives_over_smtp_and_signs_in(app, client, factory, smtp_server, outbox):
    app.config["SMTP_URL"] = smtp_server.url
    account = factory.account(mfa_policy=MfaPolicy.enforced)
    user = factory.user(account, "group_manager")
    to_code_step(client, user.username)

    message = smtp_server.wait_for(user.email, "sign-in code")
    assert outbox() == [], "with SMTP configured nothing goes to the outbox folder"
    response = submit_code(client, code_in(message), follow=True)
    assert response.status_code == 200
    assert signed_in_sid(client) is not None


def test_reset_link_arrives_over_smtp(app, client, factory, smtp_server):
    app.config["SMTP_URL"] = smtp_server.url
    user = factory.user(factory.account())
    token = token_of(client, "/login/forgot")
    client.post("/login/forgot", data={"csrf_token": token, "username": user.username})
    message = smtp_server.wait_for(user.email, "Reset your Tessera password")
    assert "/login/reset/" in link_in(message)
