"""Brute-force protection: failures slow down, then answer 429 with a clear message and
Retry-After; limits expire; a known browser still signs in while its username is throttled."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.auth import throttle
from app.extensions import limiter
from app.models import AuditEvent
from app.models.accounts import MfaPolicy
from tests.conftest import PASSWORD, sign_in
from tests.integration.auth_flow import code_in, signed_in_sid, submit_code, to_code_step, token_of

ATTACKER = "10.66.0.1"


@pytest.fixture
def delays(app, monkeypatch):
    """The slowdowns the server asked for, instead of really sleeping."""
    asked: list[float] = []
    monkeypatch.setattr(throttle, "pause", asked.append)
    return asked


def _wrong_password(client, username):
    token = token_of(client, "/login")
    client.post("/login", data={"csrf_token": token, "username": username})
    return client.post("/login/password", data={"csrf_token": token, "password": "Wrong-Guess-1"})


def _attacker(app):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ATTACKER
    return client


def test_each_test_app_has_its_own_empty_memory_storage(app):
    from limits.storage import MemoryStorage

    assert isinstance(limiter.storage, MemoryStorage)
    assert limiter.storage.storage == {}


def test_failures_slow_down_then_answer_429_with_message_and_retry_after(app, factory, db, delays):
    app.config.update(SIGNIN_LIMIT_PER_USER="5 per 15 minutes", SIGNIN_SLOWDOWN_AFTER=2,
                      SIGNIN_SLOWDOWN_SECONDS=0.5, SIGNIN_SLOWDOWN_MAX=1.5)
    user = factory.user(factory.account())
    client = _attacker(app)
    for _ in range(5):
        assert _wrong_password(client, user.username).status_code == 200
    assert delays == [0.5, 1.0, 1.5]

    response = _wrong_password(client, user.username)
    assert response.status_code == 429
    text = response.get_data(as_text=True)
    assert "Too many failed sign-in attempts for this username" in text
    assert "opens again on its own" in text
    retry = int(response.headers["Retry-After"])
    assert 0 < retry <= 15 * 60
    # the right password does not help while the username is throttled
    token = token_of(client, "/login")
    assert client.post("/login/password", data={"csrf_token": token, "password": PASSWORD}).status_code == 429
    # and step one answers 429 for that username too
    assert client.post("/login", data={"csrf_token": token, "username": user.username}).status_code == 429
    throttled = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sign_in.throttled")).all()
    assert len(throttled) == 1 and throttled[0].account_id == user.primary_account_id


def test_per_address_limit_covers_many_usernames(app, factory, delays):
    app.config.update(SIGNIN_LIMIT_PER_ADDRESS="4 per 15 minutes")
    client = _attacker(app)
    for n in range(4):
        assert _wrong_password(client, f"guess-{n}@example.com").status_code == 200
    response = _wrong_password(client, "guess-5@example.com")
    assert response.status_code == 429
    assert "from your network address" in response.get_data(as_text=True)

    # someone else, from another address, is not affected
    user = factory.user(factory.account())
    assert sign_in(app.test_client(), user.username).status_code == 200


def test_successes_do_not_count_against_the_limit(app, factory, delays):
    app.config.update(SIGNIN_LIMIT_PER_USER="2 per 15 minutes", SIGNIN_LIMIT_PER_ADDRESS="2 per 15 minutes")
    user = factory.user(factory.account())
    for _ in range(4):
        client = app.test_client()
        assert sign_in(client, user.username).status_code == 200
        assert signed_in_sid(client) is not None


def test_the_limit_expires_on_its_own(app, factory, delays):
    app.config.update(SIGNIN_LIMIT_PER_USER="2 per 2 seconds")
    user = factory.user(factory.account())
    client = _attacker(app)
    _wrong_password(client, user.username)
    _wrong_password(client, user.username)
    assert _wrong_password(client, user.username).status_code == 429
    time.sleep(2.2)
    assert sign_in(client, user.username).status_code == 200
    assert signed_in_sid(client) is not None


def test_known_browser_still_signs_in_while_the_username_is_throttled(app, factory, delays):
    app.config.update(SIGNIN_LIMIT_PER_USER="3 per 15 minutes")
    user = factory.user(factory.account())
    mine = app.test_client()
    sign_in(mine, user.username)
    assert mine.get_cookie(throttle.KNOWN_COOKIE, path="/login") is not None
    token = token_of(mine, "/dashboard")
    mine.post("/logout", data={"csrf_token": token})

    attacker = _attacker(app)
    for _ in range(3):
        _wrong_password(attacker, user.username)
    assert _wrong_password(attacker, user.username).status_code == 429
    new_browser = app.test_client()  # a browser that never signed in as this user waits
    token = token_of(new_browser, "/login")
    assert new_browser.post("/login", data={"csrf_token": token, "username": user.username}).status_code == 429

    assert sign_in(mine, user.username).status_code == 200
    assert signed_in_sid(mine) is not None


def test_a_forged_known_browser_cookie_does_not_exempt(app, factory, delays):
    app.config.update(SIGNIN_LIMIT_PER_USER="2 per 15 minutes")
    user = factory.user(factory.account())
    attacker = _attacker(app)
    attacker.set_cookie(throttle.KNOWN_COOKIE, "forged.value.here", path="/login")
    for _ in range(2):
        _wrong_password(attacker, user.username)
    assert _wrong_password(attacker, user.username).status_code == 429


def test_wrong_codes_count_as_failures_too(app, factory, db, outbox, delays):
    app.config.update(SIGNIN_LIMIT_PER_USER="3 per 15 minutes")
    account = factory.account(mfa_policy=MfaPolicy.enforced)
    user = factory.user(account, "user")
    client = _attacker(app)
    to_code_step(client, user.username)
    good = code_in(outbox()[-1])
    wrong = "123456" if good != "123456" else "654321"
    for _ in range(3):
        assert submit_code(client, wrong).status_code == 200
    response = submit_code(client, good)
    assert response.status_code == 429


def test_sending_new_codes_is_capped(app, factory, outbox, delays):
    app.config.update(SIGNIN_CODE_SEND_LIMIT="2 per 15 minutes")
    account = factory.account(mfa_policy=MfaPolicy.enforced)
    user = factory.user(account, "user")
    client = app.test_client()
    to_code_step(client, user.username)
    token = token_of(client, "/login/code")
    for _ in range(2):
        assert client.post("/login/code/resend", data={"csrf_token": token}).status_code == 302
    response = client.post("/login/code/resend", data={"csrf_token": token})
    assert response.status_code == 429
    assert "Too many codes were sent" in response.get_data(as_text=True)
    assert len(outbox()) == 3


def test_forgot_password_is_throttled_per_username(app, factory, outbox):
    app.config.update(FORGOT_LIMIT_PER_USER="2 per 15 minutes")
    user = factory.user(factory.account())
    client = app.test_client()
    token = token_of(client, "/login/forgot")
    for _ in range(2):
        assert client.post("/login/forgot", data={"csrf_token": token, "username": user.username}).status_code == 200
    response = client.post("/login/forgot", data={"csrf_token": token, "username": user.username})
    assert response.status_code == 429
    assert "Too many password reset requests" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers
    assert len(outbox()) == 2


def test_limits_also_hold_with_redis_storage(monkeypatch, tmp_path):
    """At scale the counters live in Redis (TESSERA_REDIS_URL), shared by every process."""
    import secrets

    import redis

    from app import config, create_app
    from app.extensions import db

    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    app = create_app(config.TestConfig(
        SQLALCHEMY_DATABASE_URI="sqlite://", INSTANCE_PATH=str(tmp_path), RATELIMIT_STORAGE_URI=url,
        SIGNIN_LIMIT_PER_USER="2 per 1 minute", OUTBOX=str(tmp_path / "outbox")))
    monkeypatch.setattr(throttle, "pause", lambda seconds: None)
    with app.app_context():
        db.create_all()
    from limits.storage import RedisStorage

    assert isinstance(limiter.storage, RedisStorage)
    client = app.test_client()
    # a fresh address and username, so earlier runs sharing this Redis do not interfere
    client.environ_base["REMOTE_ADDR"] = f"10.{secrets.randbelow(255)}.{secrets.randbelow(255)}.7"
    name = f"nobody-{secrets.token_hex(4)}@example.com"
    for _ in range(2):
        assert _wrong_password(client, name).status_code == 200
    assert _wrong_password(client, name).status_code == 429
