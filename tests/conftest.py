"""Shared fixtures: ``app``, ``db``, ``client``, ``login_as``, factories, and the real parts
(PostgreSQL, SMTP via aiosmtpd, a live server, headless Chromium) for integration and e2e tests.

The database under test is SQLite by default; ``TESSERA_TEST_DATABASE=postgres`` runs the same
tests on the PostgreSQL server at ``TESSERA_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), in a schema of its own that is dropped at the end.
"""
from __future__ import annotations

import os
import re
import secrets
import uuid

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.config import TestConfig
from app.extensions import db as _db
from app.models import Account, Membership, User, UserType

POSTGRES_URL = os.environ.get("TESSERA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "Correct-Horse-9"

pytest_plugins = ["tests.fixtures_live"]


def _postgres_schema_url():
    schema = f"t_{os.getpid()}_{secrets.token_hex(3)}"
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    return engine, schema, f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    kind = os.environ.get("TESSERA_TEST_DATABASE", "sqlite")
    if kind == "postgres":
        engine, schema, url = _postgres_schema_url()
        yield url
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def _schema(database_url, tmp_path_factory):
    app = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=database_url,
                                INSTANCE_PATH=str(tmp_path_factory.mktemp("instance"))))
    with app.app_context():
        _db.create_all()
    return database_url


@pytest.fixture
def app(_schema, tmp_path):
    app = create_app(TestConfig(
        SQLALCHEMY_DATABASE_URI=_schema,
        INSTANCE_PATH=str(tmp_path / "instance"),
        OUTBOX=str(tmp_path / "outbox"),
        SMTP_URL="",
        BASE_URL="http://localhost",
        # Each test app gets a fresh in-memory limiter storage (never a shared Redis), so
        # sign-in throttling counts start at zero in every test.
        RATELIMIT_STORAGE_URI="memory://",
    ))
    from flask import g, request_started

    def fresh_request_globals(sender, **extra):
        # The test holds one app context open, so Flask reuses it (and its ``g``) for every
        # request of the test. A real server gives each request a fresh ``g``: without this the
        # CSRF token, the signed-in user and the rate-limit state leak from request to request.
        g.__dict__.clear()

    request_started.connect(fresh_request_globals, app)
    with app.app_context():
        yield app
        _db.session.remove()
        for table in reversed(_db.metadata.sorted_tables):
            _db.session.execute(table.delete())
        _db.session.commit()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def outbox(app):
    """The messages written to the outbox folder, parsed, oldest first."""
    from email import message_from_bytes, policy
    from pathlib import Path

    def read():
        folder = Path(app.config["OUTBOX"])
        if not folder.exists():
            return []
        return [message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in sorted(folder.glob("*.eml"))]

    return read


class Factory:
    """Creates accounts and users straight in the database, for tests."""

    def __init__(self, db):
        self.db = db

    def account(self, company: str | None = None, **kw) -> Account:
        from app.users.services import create_account

        company = company or f"Company {uuid.uuid4().hex[:6]}"
        email = kw.pop("owner_email", f"owner-{uuid.uuid4().hex[:8]}@example.com")
        return create_account(company, email, PASSWORD, **kw)

    def user(self, account: Account, user_type: UserType | str = UserType.user,
             email: str | None = None, **kw) -> User:
        from app.users.services import create_user

        if isinstance(user_type, str):
            user_type = UserType.parse(user_type)
        if user_type is UserType.owner:
            return account.owner
        email = email or f"{user_type.name.replace('_', '-')}-{uuid.uuid4().hex[:8]}@example.com"
        membership = create_user(account, email, kw.pop("password", PASSWORD), user_type, **kw)
        return membership.user


@pytest.fixture
def factory(db):
    return Factory(db)


def csrf_token(client, path="/login"):
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'"X-CSRFToken": "([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, username, password=PASSWORD):
    """Sign in through the real steps. Where MFA applies, the emailed code is read from the
    newest sign-in mail in the outbox folder and entered too."""
    token = csrf_token(client)
    client.post("/login", data={"csrf_token": token, "username": username})
    response = client.post("/login/password", data={"csrf_token": token, "password": password},
                           follow_redirects=True)
    if response.request.path == "/login/code":
        code = _newest_sign_in_code(client.application)
        if code:
            response = client.post("/login/code", data={"csrf_token": token, "code": code},
                                   follow_redirects=True)
    return response


def _newest_sign_in_code(app) -> str | None:
    from email import message_from_bytes, policy
    from pathlib import Path

    for path in sorted(Path(app.config["OUTBOX"]).glob("*.eml"), reverse=True):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if "sign-in code" in str(message["Subject"]):
            match = re.search(r"^\s+(\d{6})\s*$", message.get_body(("plain",)).get_content(), re.M)
            return match.group(1) if match else None
    return None


@pytest.fixture
def login_as(client, factory):
    """``login_as("administrator")`` -> the signed-in user (a fresh account each call)."""

    def login(user_type="user", account=None):
        account = account or factory.account()
        user = factory.user(account, user_type)
        response = sign_in(client, user.username)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return user

    return login
