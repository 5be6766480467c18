"""Cookies, session ids, CSRF and security headers around sign-in (A1)."""
from __future__ import annotations

import re

from app import config, create_app
from tests.conftest import PASSWORD, sign_in
from tests.integration.auth_flow import signed_in_sid, token_of


def _set_cookie(response, name):
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "="))


def test_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(client, factory):
    user = factory.user(factory.account())
    token = token_of(client, "/login")
    client.post("/login", data={"csrf_token": token, "username": user.username})
    response = client.post("/login/password", data={"csrf_token": token, "password": PASSWORD})
    cookie = _set_cookie(response, "tessera_session")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    known = _set_cookie(response, "tessera_known")
    assert "HttpOnly" in known and "SameSite=Lax" in known and "Path=/login" in known


def test_cookies_are_secure_when_the_base_url_is_https(monkeypatch, tmp_path):
    monkeypatch.setenv("TESSERA_BASE_URL", "https://tessera.example.com")
    app = create_app(config.TestConfig(SQLALCHEMY_DATABASE_URI="sqlite://", INSTANCE_PATH=str(tmp_path),
                                RATELIMIT_STORAGE_URI="memory://"))
    response = app.test_client().get("/login")
    assert "Secure" in _set_cookie(response, "tessera_session")
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert "max-age" in response.headers["Strict-Transport-Security"]


def test_session_id_is_rotated_at_sign_in(client, factory):
    user = factory.user(factory.account())
    # whatever the browser carried before signing in is dropped
    with client.session_transaction() as sess:
        sess["sid"] = "chosen-by-an-attacker"
        sess["leftover"] = "x"
    sign_in(client, user.username)
    first = signed_in_sid(client)
    assert first and first != "chosen-by-an-attacker"
    with client.session_transaction() as sess:
        assert "leftover" not in sess

    client.post("/logout", data={"csrf_token": _page_token(client)})
    sign_in(client, user.username)
    second = signed_in_sid(client)
    assert second and second != first


def _page_token(client):
    """The CSRF token of a signed-in page (the one HTMX sends from <body>)."""
    page = client.get("/profile").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def test_post_without_a_valid_csrf_token_gets_400(client):
    response = client.post("/login", data={"username": "someone@example.com"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    response = client.post("/login", data={"username": "someone@example.com", "csrf_token": "forged"})
    assert response.status_code == 400
    with client.session_transaction() as sess:
        assert "login" not in sess


def test_csp_forbids_inline_script_and_framing(client, factory):
    for path in ("/login", "/login/forgot"):
        csp = client.get(path).headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
    user = factory.user(factory.account(), "administrator")
    response = sign_in(client, user.username)
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_sign_in_pages_have_no_inline_script_or_style(client, factory, db, outbox):
    from app.models.accounts import MfaPolicy
    from tests.integration.auth_flow import to_code_step

    account = factory.account(mfa_policy=MfaPolicy.enforced)
    user = factory.user(account, "user")
    to_code_step(client, user.username)
    pages = [client.get(p).get_data(as_text=True) for p in ("/login/code", "/login/code?recovery=1",
                                                            "/login/forgot")]
    client.get("/login/change-user")
    pages.append(client.get("/login").get_data(as_text=True))
    for page in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "inline script"
        assert not re.search(r"\sstyle=", page), "inline style"
