"""Helpers for the sign-in tests (tests/integration/test_auth_*.py): walking the sign-in steps
with the Flask test client and reading codes and links out of the mails."""
from __future__ import annotations

import re

from tests.conftest import PASSWORD, csrf_token


def token_of(client, path: str) -> str:
    return csrf_token(client, path)


def to_code_step(client, username: str, password: str = PASSWORD):
    """Steps one and two; returns the answer to the password step (not followed)."""
    token = token_of(client, "/login")
    client.post("/login", data={"csrf_token": token, "username": username})
    return client.post("/login/password", data={"csrf_token": token, "password": password})


def submit_code(client, code: str, follow: bool = False):
    token = token_of(client, "/login/code")
    return client.post("/login/code", data={"csrf_token": token, "code": code},
                       follow_redirects=follow)


def body_of(message) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content()


def code_in(message) -> str:
    match = re.search(r"^\s+(\d{6})\s*$", body_of(message), re.M)
    assert match, body_of(message)
    return match.group(1)


def link_in(message) -> str:
    match = re.search(r"https?://[^\s]+/login/reset/[A-Za-z0-9_\-]+", body_of(message))
    assert match, body_of(message)
    return match.group(0)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def signed_in_sid(client) -> str | None:
    with client.session_transaction() as sess:
        return sess.get("sid")
