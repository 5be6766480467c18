"""Sign-in rules: checking credentials and recording the outcome."""
from __future__ import annotations

from sqlalchemy import func, select

from app.audit.services import record
from app.auth.passwords import verify_password
from app.extensions import db
from app.models import User


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


def check_password(username: str, password: str) -> User | None:
    user = find_user(username)
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not any(m.enabled for m in user.memberships):
        record("sign_in.failed", username, {"step": "password"},
               account_id=user.primary_account_id if user else None, actor=user)
        return None
    return user


def record_sign_in(user: User) -> None:
    record("sign_in.success", user.username, actor=user)


def record_sign_out(user: User) -> None:
    record("sign_out", user.username, actor=user)
