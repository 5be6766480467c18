"""Sign-in rules, free of Flask's request: checking passwords, deciding where MFA applies, the
emailed 6-digit sign-in code, and forgot-password links.

Called by ``app/auth/views.py`` (the sign-in pages) and reusable by the profile and user pages
(``mfa_applies``, ``mfa_choice_allowed``, ``set_password``).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select

from app.audit.services import record
from app.auth import recovery
from app.auth.passwords import check_password_rules, hash_password, verify_password
from app.auth.sessions import end_all_sessions
from app.common import mail
from app.extensions import db
from app.models import EmailCode, PasswordReset, User, utcnow
from app.models.accounts import Account, MfaPolicy

CODE_LIFETIME = timedelta(minutes=10)
CODE_TRIES = 5
RESET_LIFETIME = timedelta(hours=1)


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


def record_sign_in(user: User, method: str = "password") -> None:
    record("sign_in.success", user.username, {"second_factor": method}, actor=user)


def record_sign_out(user: User) -> None:
    record("sign_out", user.username, actor=user)


# --- where MFA applies ---------------------------------------------------------------------

def mfa_choice_allowed(account: Account) -> bool:
    """Whether users of ``account`` may switch MFA on or off for themselves."""
    return account.mfa_policy is MfaPolicy.per_user


def mfa_applies(user: User) -> bool:
    """MFA applies when any enabled membership's account enforces it, or the user switched it
    on in an account that lets them choose."""
    for membership in user.memberships:
        if not membership.enabled:
            continue
        policy = membership.account.mfa_policy
        if policy is MfaPolicy.enforced or (policy is MfaPolicy.per_user and user.mfa_enabled):
            return True
    return False


def mail_address(user: User) -> str:
    if user.email:
        return user.email
    return user.username if "@" in user.username else ""


def masked(address: str) -> str:
    """``jane.doe@example.com`` -> ``ja…@example.com``: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    if not domain:
        return ""
    return f"{local[:2]}…@{domain}"


# --- the emailed sign-in code --------------------------------------------------------------

def _code_digest(user_id: int, code: str) -> str:
    # Keyed with the secret: a six-digit space is too small for a plain hash to protect.
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"sign-in-code:{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_sign_in_code(user: User) -> bool:
    """Make a new 6-digit code (voiding older ones) and email it. False when the user has no
    address to send it to (they can still use a recovery code)."""
    address = mail_address(user)
    if not address:
        return False
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = utcnow()
    db.session.execute(delete(EmailCode).where(EmailCode.user_id == user.id))
    db.session.add(EmailCode(user_id=user.id, code_hash=_code_digest(user.id, code), created_at=now,
                             expires_at=now + CODE_LIFETIME, attempts=0))
    db.session.commit()
    mail.send(address, "Your Tessera sign-in code", "sign_in_code", user=user, code=code,
              minutes=int(CODE_LIFETIME.total_seconds() // 60))
    return True


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    message: str = ""
    method: str = "email_code"  # or "recovery_code"


def check_sign_in_code(user: User, code: str) -> CodeCheck:
    """Check an emailed code: right, wrong (one of five tries used), expired or used up."""
    row = db.session.scalar(
        select(EmailCode).where(EmailCode.user_id == user.id, EmailCode.used_at.is_(None))
        .order_by(EmailCode.created_at.desc())
    )
    if row is None or row.attempts >= CODE_TRIES:
        result = CodeCheck(False, "That code is no longer valid. Send a new code.")
    elif row.expires_at <= utcnow():
        result = CodeCheck(False, "That code has expired. Send a new code.")
    elif hmac.compare_digest(row.code_hash, _code_digest(user.id, code.strip())):
        row.used_at = utcnow()
        db.session.commit()
        return CodeCheck(True)
    else:
        row.attempts += 1
        left = CODE_TRIES - row.attempts
        result = CodeCheck(False, f"That code is not correct. {left} {'try' if left == 1 else 'tries'} left."
                           if left else "That code is not correct, and it is now void. Send a new code.")
    record("sign_in.code_failed", user.username, {"reason": result.message}, actor=user,
           account_id=user.primary_account_id, commit=False)
    db.session.commit()
    return result


def check_second_factor(user: User, entered: str) -> CodeCheck:
    """Step three: six digits are the emailed code; anything else is tried as a recovery code."""
    digits = re.sub(r"\s", "", entered)
    if re.fullmatch(r"\d{6}", digits):
        return check_sign_in_code(user, digits)
    if recovery.spend(user, entered):
        record("sign_in.recovery_code_used", user.username,
               {"unused_left": recovery.status(user).unused}, actor=user,
               account_id=user.primary_account_id)
        return CodeCheck(True, method="recovery_code")
    record("sign_in.code_failed", user.username, {"reason": "recovery code not accepted"}, actor=user,
           account_id=user.primary_account_id)
    return CodeCheck(False, "That is neither the 6-digit code from the email nor an unused "
                            "recovery code.", method="recovery_code")


# --- forgot password -----------------------------------------------------------------------

def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _reset_candidates(name: str) -> list[User]:
    user = find_user(name)
    if user is not None:
        return [user]
    if "@" not in name:
        return []
    return list(db.session.scalars(select(User).where(func.lower(User.email) == name.strip().lower())))


def request_password_reset(name: str, link_for) -> None:
    """Email a single-use reset link to the local user called ``name`` (username or email).
    Answers nothing: the caller shows the same message whatever happened, so the form cannot
    tell who exists. ``link_for(token)`` builds the absolute URL of the reset page."""
    for user in _reset_candidates(name):
        address = mail_address(user)
        if user.is_directory_user or user.password_hash is None or not address:
            record("password.reset_refused", user.username,
                   {"reason": "directory user" if user.is_directory_user else "no password or address"},
                   actor=user, account_id=user.primary_account_id)
            continue
        if not any(m.enabled for m in user.memberships):
            continue
        token = secrets.token_urlsafe(32)
        now = utcnow()
        # Only the newest link works: an older one lying in a mailbox is void.
        db.session.execute(delete(PasswordReset).where(PasswordReset.user_id == user.id,
                                                       PasswordReset.used_at.is_(None)))
        db.session.add(PasswordReset(user_id=user.id, token_hash=_token_digest(token), created_at=now,
                                     expires_at=now + RESET_LIFETIME))
        record("password.reset_requested", user.username, actor=user,
               account_id=user.primary_account_id, commit=False)
        db.session.commit()
        mail.send(address, "Reset your Tessera password", "password_reset", user=user,
                  link=link_for(token), minutes=int(RESET_LIFETIME.total_seconds() // 60))


def valid_reset(token: str) -> PasswordReset | None:
    row = db.session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _token_digest(token)))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    user = db.session.get(User, row.user_id)
    if user is None or user.is_directory_user:
        return None
    return row


def set_password(user: User, password: str, action: str = "password.changed") -> None:
    """Give ``user`` a new password and sign them out everywhere (every session made before,
    the current one included). One commit."""
    check_password_rules(password)
    user.password_hash = hash_password(password)
    record(action, user.username, actor=user, account_id=user.primary_account_id, commit=False)
    end_all_sessions(user)  # commits


def reset_password(token: str, password: str) -> User | None:
    """Spend a reset link: None when it is unknown, used or expired."""
    row = valid_reset(token)
    if row is None:
        return None
    user = db.session.get(User, row.user_id)
    check_password_rules(password)
    row.used_at = utcnow()
    set_password(user, password, action="password.reset")
    return user
