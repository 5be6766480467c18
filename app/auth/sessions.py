"""Server-side sessions behind Flask-Login.

The signed cookie holds only a random session id (``sid``); the ``user_session`` row says who
it is, in which account, and since when. Signing in clears the cookie session and makes a new
id (rotation); signing out deletes the row; a password change bumps ``User.session_version``,
which signs out every other browser.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import Flask, g, jsonify, redirect, request, session, url_for
from flask_login import LoginManager, login_user, logout_user

from app.extensions import db
from app.models import Membership, User, UserSession, utcnow

SEEN_EVERY = timedelta(seconds=60)
IDLE_TIMEOUT = timedelta(hours=12)


def configure_login(app: Flask, login_manager: LoginManager) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = None  # the sid row does this job

    @login_manager.user_loader
    def load_user(user_id: str):
        sid = session.get("sid")
        if not sid:
            return None
        row = db.session.get(UserSession, sid)
        if row is None or str(row.user_id) != user_id:
            return None
        user = row.user
        now = utcnow()
        if row.session_version != user.session_version or now - row.last_seen_at > IDLE_TIMEOUT:
            db.session.delete(row)
            db.session.commit()
            return None
        g.user_session = row
        g.membership = _membership_for(user, row.account_id)
        if now - row.last_seen_at > SEEN_EVERY:
            row.last_seen_at = now
            user.last_seen_at = now
            db.session.commit()
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        if request.path.startswith("/api/"):
            return jsonify(error="authentication required"), 401
        target = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        if request.headers.get("HX-Request"):
            response = app.response_class(status=401)
            response.headers["HX-Redirect"] = target
            return response
        return redirect(target)


def _membership_for(user: User, account_id: int | None) -> Membership | None:
    for membership in user.memberships:
        if membership.account_id == account_id and membership.enabled:
            return membership
    return None


def default_account_id(user: User) -> int | None:
    enabled = [m for m in user.memberships if m.enabled and m.user.password_hash is not None]
    for membership in enabled:
        if membership.account_id == user.primary_account_id:
            return membership.account_id
    return enabled[0].account_id if enabled else None


def start_session(user: User, account_id: int | None = None) -> UserSession:
    """Sign ``user`` in with a fresh session id (the old cookie session is dropped)."""
    session.clear()
    now = utcnow()
    row = UserSession(
        id=secrets.token_urlsafe(32),
        user_id=user.id,
        account_id=account_id if account_id is not None else default_account_id(user),
        session_version=user.session_version,
        created_at=now,
        last_seen_at=now,
        ip=request.remote_addr or "",
        user_agent=(request.user_agent.string or "")[:300],
    )
    db.session.add(row)
    if user.online_since is None or user.last_seen_at is None or now - user.last_seen_at > IDLE_TIMEOUT:
        user.online_since = now
    user.last_seen_at = now
    db.session.commit()
    session["sid"] = row.id
    session.permanent = False
    login_user(user)
    g.user_session = row
    g.membership = _membership_for(user, row.account_id)
    return row


def switch_account(user: User, account_id: int) -> bool:
    membership = _membership_for(user, account_id)
    row = g.get("user_session")
    if membership is None or row is None:
        return False
    row.account_id = account_id
    db.session.commit()
    g.membership = membership
    return True


def end_session() -> None:
    row = g.pop("user_session", None)
    if row is not None:
        db.session.delete(row)
        db.session.commit()
    logout_user()
    session.clear()


def end_all_sessions(user: User, keep_current: bool = False) -> None:
    """Sign ``user`` out everywhere (password change, owner change, removal)."""
    user.session_version += 1
    current = g.get("user_session") if keep_current else None
    UserSession.query.filter(UserSession.user_id == user.id).filter(
        UserSession.id != (current.id if current is not None else "")
    ).delete(synchronize_session=False)
    if current is not None:
        current.session_version = user.session_version
    db.session.commit()
