"""Profile, memberships and account-configuration rules, free of Flask's request.

Called by ``app.account.views`` (and usable from the CLI and tests). Each function validates
everything first, then writes and commits once, and records an audit event:
``profile.updated``, ``password.changed``, ``profile.memberships_updated``, ``account.updated``,
``account.owner_changed``, ``account.logo_changed``.
"""
from __future__ import annotations

import re
from functools import lru_cache

from sqlalchemy import func, select

from app.account.logos import KINDS, check_logo
from app.audit.services import record
from app.auth.passwords import check_password_rules, hash_password, verify_password
from app.auth.sessions import end_all_sessions
from app.errors import Conflict, Forbidden, NotFound, ValidationError
from app.extensions import db
from app.models import Account, Membership, User, UserType, utcnow
from app.models.accounts import REMOTE_ACTIONS as ACCOUNT_REMOTE_ACTIONS, MfaPolicy

# How a remote control session opens by default. "" on a membership means "the account's".
REMOTE_ACTIONS = list(ACCOUNT_REMOTE_ACTIONS.items())
_ACTION_LABELS = dict(REMOTE_ACTIONS)
PHONE = re.compile(r"^[0-9+()./ \-]*$")


def action_label(value: str) -> str:
    return _ACTION_LABELS.get(value, _ACTION_LABELS["browser"])


def effective_remote_action(membership: Membership) -> str:
    """The action a user's "Remote control" button takes in this account."""
    return membership.default_action or membership.account.default_action or "browser"


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(_timezones())]


def check_timezone(name: str) -> str:
    if name not in _timezones():
        raise ValidationError(f"{name or 'An empty name'} is not a known timezone.", field="timezone")
    return name


def _check_action(value: str, allow_default: bool) -> str:
    if value in _ACTION_LABELS or (allow_default and value == ""):
        return value
    raise ValidationError("Choose a default remote control action from the list.", field="default_action")


def _email(text: str, field: str = "email") -> str:
    from app.users.services import normalise_email

    try:
        return normalise_email(text)
    except ValidationError as err:
        raise ValidationError(err.message, field=field) from None


# --- profile -------------------------------------------------------------------------------

def mfa_mode(membership: Membership) -> str:
    """How the profile shows the MFA switch: ``choice`` (per user), ``enforced`` or ``off``."""
    policy = membership.account.mfa_policy
    if policy is MfaPolicy.enforced:
        return "enforced"
    if policy is MfaPolicy.disabled:
        return "off"
    return "choice"


def update_profile(user: User, membership: Membership, *, first_name: str, last_name: str,
                   email: str, mfa_enabled: bool, default_action: str) -> list[str]:
    """Save the profile; returns the names of the fields that changed."""
    first_name, last_name = first_name.strip(), last_name.strip()
    if len(first_name) > 100 or len(last_name) > 100:
        raise ValidationError("Names may be at most 100 characters.", field="first_name")
    email = email.strip()
    if user.is_directory_user:
        if email and email.lower() != (user.email or "").lower():
            raise ValidationError("Your email address comes from your directory; change it there.",
                                  field="email")
        email = user.email
    else:
        email = _email(email)
    default_action = _check_action(default_action, allow_default=True)
    wanted = {"first_name": first_name, "last_name": last_name, "email": email}
    if mfa_mode(membership) == "choice":
        wanted["mfa_enabled"] = bool(mfa_enabled)
    changed = [name for name, value in wanted.items() if getattr(user, name) != value]
    for name in changed:
        setattr(user, name, wanted[name])
    if membership.default_action != default_action:
        membership.default_action = default_action
        membership.modified_at, membership.modified_by_id = utcnow(), user.id
        changed.append("default_action")
    if changed:
        record("profile.updated", user.username, {"fields": changed}, actor=user,
               account_id=membership.account_id, commit=False)
    db.session.commit()
    return changed


def change_password(user: User, current: str, new: str, confirm: str) -> None:
    """Check the current password and the rules, store the new hash, and sign out every other
    browser of this user (the current one stays signed in)."""
    if user.is_directory_user or user.password_hash is None:
        raise Forbidden("Your password is managed by your directory; change it there.")
    if not verify_password(user.password_hash, current):
        raise ValidationError("The current password is not correct.", field="current_password")
    if new != confirm:
        raise ValidationError("The two passwords are not the same.", field="confirm")
    check_password_rules(new)
    if verify_password(user.password_hash, new):
        raise ValidationError("The new password must differ from the current one.", field="password")
    user.password_hash = hash_password(new)
    record("password.changed", user.username, actor=user, commit=False)
    end_all_sessions(user, keep_current=True)  # commits


def update_memberships(user: User, aliases: dict[int, str], primary_account_id: int) -> None:
    """Set the alias of each of the user's accounts and choose the primary account."""
    mine = {m.account_id: m for m in user.memberships}
    unknown = set(aliases) - set(mine)
    if unknown:
        raise NotFound("You are not a member of one of those accounts.")
    primary = mine.get(primary_account_id)
    if primary is None or not primary.enabled:
        raise ValidationError("Choose one of your enabled accounts as the primary account.", field="primary")
    cleaned = {}
    for account_id, alias in aliases.items():
        alias = alias.strip()
        if len(alias) > 100:
            raise ValidationError("An alias may be at most 100 characters.", field="aliases")
        cleaned[account_id] = alias
    changes = {}
    for account_id, alias in cleaned.items():
        if mine[account_id].alias != alias:
            mine[account_id].alias = alias
            changes[str(account_id)] = alias
    details = {}
    if changes:
        details["aliases"] = changes
    if user.primary_account_id != primary_account_id:
        user.primary_account_id = primary_account_id
        details["primary_account_id"] = primary_account_id
    if details:
        record("profile.memberships_updated", user.username, details, actor=user, commit=False)
    db.session.commit()


# --- account configuration -----------------------------------------------------------------

def administrators(account: Account) -> list[Membership]:
    return list(db.session.scalars(
        select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.account_id == account.id, Membership.type == UserType.administrator)
        .order_by(func.lower(User.first_name), func.lower(User.last_name), User.username)
    ))


def update_account(account: Account, *, company: str, contact_name: str, contact_email: str,
                   contact_phone: str, timezone: str, default_action: str) -> list[str]:
    company = company.strip()
    if not company:
        raise ValidationError("Enter the company name.", field="company")
    if len(company) > 200:
        raise ValidationError("The company name may be at most 200 characters.", field="company")
    taken = db.session.scalar(
        select(Account.id).where(func.lower(Account.company) == company.lower(), Account.id != account.id))
    if taken is not None:
        raise Conflict(f"Another account is already named {company}.")
    contact_name, contact_phone = contact_name.strip(), contact_phone.strip()
    if len(contact_name) > 200:
        raise ValidationError("The contact name may be at most 200 characters.", field="contact_name")
    contact_email = _email(contact_email, "contact_email") if contact_email.strip() else ""
    if len(contact_phone) > 50 or not PHONE.match(contact_phone):
        raise ValidationError("A phone number may hold digits, spaces and + ( ) - . / only.",
                              field="contact_phone")
    wanted = {
        "company": company,
        "contact_name": contact_name,
        "contact_email": contact_email,
        "contact_phone": contact_phone,
        "timezone": check_timezone(timezone),
        "default_action": _check_action(default_action, allow_default=False),
    }
    changed = {name: value for name, value in wanted.items() if getattr(account, name) != value}
    for name, value in changed.items():
        setattr(account, name, value)
    if changed:
        record("account.updated", account.company, changed, account_id=account.id, commit=False)
    db.session.commit()
    return list(changed)


def owner_candidates(account: Account) -> list[Membership]:
    """Who may become owner: enabled members of the account with a local, set-up sign-in."""
    return list(db.session.scalars(
        select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.account_id == account.id, Membership.enabled.is_(True),
               Membership.type != UserType.owner, User.source == "local",
               User.password_hash.is_not(None))
        .order_by(func.lower(User.first_name), func.lower(User.last_name), User.username)
    ))


def change_owner(account: Account, actor: User, new_owner_id: int, confirmation: str) -> User:
    """Hand the account to another member. The old owner becomes an administrator and is signed
    out everywhere (they must sign in again)."""
    if account.owner_id != actor.id:
        raise Forbidden("Only the account owner can hand the account over.")
    candidates = {m.user_id: m for m in owner_candidates(account)}
    new = candidates.get(new_owner_id)
    if new is None:
        raise ValidationError("Choose an enabled user of this account who has finished setting up "
                              "their sign-in.", field="new_owner")
    if confirmation.strip().casefold() != account.company.strip().casefold():
        raise ValidationError(f"Type the company name, {account.company}, to confirm.", field="confirm")
    old = next(m for m in account.memberships if m.user_id == actor.id)
    now = utcnow()
    old.type, old.modified_at, old.modified_by_id = UserType.administrator, now, actor.id
    new.type, new.modified_at, new.modified_by_id = UserType.owner, now, actor.id
    account.owner_id = new.user_id
    record("account.owner_changed", new.user.username,
           {"from": actor.username, "to": new.user.username}, account_id=account.id, actor=actor,
           commit=False)
    end_all_sessions(actor)  # commits
    return new.user


def set_logo(account: Account, kind: str, data: bytes) -> None:
    logo = check_logo(kind, data)
    setattr(account, f"logo_{kind}", logo.data)
    setattr(account, f"logo_{kind}_type", logo.content_type)
    details = {"kind": kind, "change": "uploaded", "type": logo.content_type, "bytes": len(logo.data)}
    if logo.width:
        details["size"] = f"{logo.width}x{logo.height}"
    record("account.logo_changed", account.company, details, account_id=account.id, commit=False)
    db.session.commit()


def remove_logo(account: Account, kind: str) -> None:
    if kind not in KINDS:
        raise NotFound("There is no such logo.")
    if getattr(account, f"logo_{kind}") is None:
        raise NotFound("There is no logo to remove.")
    setattr(account, f"logo_{kind}", None)
    setattr(account, f"logo_{kind}_type", "")
    record("account.logo_changed", account.company, {"kind": kind, "change": "removed"},
           account_id=account.id, commit=False)
    db.session.commit()
