"""User and account rules, free of Flask's request: creating accounts and users, licence
counters and limits, the Users listing's query and columns, member edits and removal,
invitations and accepting them. The users views, the CLI, the demo and ``bench/listing.py``
call these."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select, and_, case, delete, func, not_, or_, select

from app.access import assignable_types, may_manage_member
from app.audit.services import record
from app.auth.passwords import check_password_rules, hash_password
from app.errors import Conflict, Forbidden, LimitReached, NotFound, TesseraError, ValidationError
from app.extensions import db
from app.models import (
    Account,
    EmailCode,
    Invite,
    Membership,
    PasswordReset,
    RecoveryCode,
    User,
    UserSession,
    UserType,
    utcnow,
)
from app.models.accounts import REMOTE_ACTIONS as ACCOUNT_REMOTE_ACTIONS


def normalise_email(text: str) -> str:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as err:
        raise ValidationError(f"{text.strip() or 'An empty address'} is not a valid email address: {err}",
                              field="email") from None


def licence_counters(account: Account) -> dict[str, tuple[int, int]]:
    from app.devices.services import count_licensed_devices

    users = db.session.scalar(
        select(func.count(Membership.id)).where(Membership.account_id == account.id)
    ) or 0
    ondemand = db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.account_id == account.id, Membership.ondemand_enabled.is_(True)
        )
    ) or 0
    return {
        "users": (users, account.max_users),
        "ondemand_users": (ondemand, account.max_ondemand_users),
        # Enrolled and pending devices hold a seat; revoked ones do not (app/devices/services.py).
        "devices": (count_licensed_devices(account.id), account.max_devices),
    }


def ensure_room(account: Account, new_users: int = 1, new_ondemand: int = 0) -> None:
    counters = licence_counters(account)
    used, limit = counters["users"]
    if used + new_users > limit:
        raise LimitReached(
            f"The licence allows {limit} users and {used} are in use: "
            f"there is no room for {new_users} more."
        )
    used, limit = counters["ondemand_users"]
    if new_ondemand and used + new_ondemand > limit:
        raise LimitReached(
            f"The licence allows {limit} OnDemand users and {used} are in use."
        )


def find_account(company: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.company == company))
    if account is None:
        raise NotFound(f"No account named {company!r}.")
    return account


def create_account(company: str, email: str, password: str, **settings) -> Account:
    """A new account with its owner (username = email). Used by the CLI and the demo."""
    company = company.strip()
    if not company:
        raise ValidationError("The company name is required.", field="company")
    if db.session.scalar(select(Account.id).where(Account.company == company)) is not None:
        raise Conflict(f"An account named {company!r} exists already.")
    email = normalise_email(email)
    check_password_rules(password)
    if db.session.scalar(select(User.id).where(User.username == email)) is not None:
        raise Conflict(f"A user {email} exists already.")
    account = Account(company=company, contact_email=email, **settings)
    owner = User(username=email, email=email, password_hash=hash_password(password))
    db.session.add_all([account, owner])
    db.session.flush()
    owner.primary_account_id = account.id
    db.session.add(Membership(user=owner, account=account, type=UserType.owner, ondemand_enabled=True))
    db.session.flush()
    account.owner_id = owner.id
    from app.roles.services import create_predefined_roles

    create_predefined_roles(account)
    db.session.commit()
    return account


def create_user(
    account: Account,
    email: str,
    password: str | None,
    user_type: UserType,
    *,
    first_name: str = "",
    last_name: str = "",
    created_by: User | None = None,
    ondemand_enabled: bool = False,
    enabled: bool = True,
) -> Membership:
    """Add a user to ``account`` (or an existing user of another account, as a new membership)."""
    if user_type is UserType.owner:
        raise ValidationError("An account has exactly one owner; change it in account configuration.")
    email = normalise_email(email)
    if password is not None:
        check_password_rules(password)
    user = db.session.scalar(select(User).where(User.username == email))
    if user is not None and any(m.account_id == account.id for m in user.memberships):
        raise Conflict(f"{email} is already a user of this account.")
    ensure_room(account, 1, 1 if ondemand_enabled else 0)
    if user is None:
        user = User(
            username=email,
            email=email,
            first_name=first_name,
            last_name=last_name,
            password_hash=hash_password(password) if password is not None else None,
            primary_account_id=account.id,
        )
        db.session.add(user)
    membership = Membership(
        user=user,
        account=account,
        type=user_type,
        enabled=enabled,
        ondemand_enabled=ondemand_enabled,
        created_by_id=created_by.id if created_by else None,
        created_at=utcnow(),
    )
    db.session.add(membership)
    db.session.commit()
    return membership


# --------------------------------------------------------------------------- the Users listing
ONLINE_WINDOW = timedelta(minutes=5)
STATUS_LABELS = {
    "online": "Online",
    "offline": "Offline",
    "pending": "Invite pending",
    "disabled": "Disabled",
}
REMOTE_ACTIONS = {"": "Account default", **ACCOUNT_REMOTE_ACTIONS}


def _status_parts(now: datetime | None):
    cutoff = (now or utcnow()) - ONLINE_WINDOW
    # IN (uncorrelated subquery) rather than a correlated EXISTS: PostgreSQL hashes the few
    # live sessions once instead of probing them for every row, negated or not.
    live_users = select(UserSession.user_id).where(UserSession.last_seen_at >= cutoff)
    disabled = Membership.enabled == False  # noqa: E712  (SQL, not Python truth)
    pending = and_(User.password_hash.is_(None), User.source == "local")
    online = and_(User.last_seen_at >= cutoff, User.id.in_(live_users))
    return disabled, pending, online


def status_expr(now: datetime | None = None):
    """A member's status as one SQL CASE, so the listing shows and sorts it from the
    database. Online means a signed-in browser (a ``user_session`` row) was seen within the
    last five minutes; the cheap ``User.last_seen_at`` test runs first."""
    disabled, pending, online = _status_parts(now)
    return case((disabled, "disabled"), (pending, "pending"), (online, "online"), else_="offline")


def status_match(now: datetime | None = None):
    """The status filter as plain predicates (same meaning as :func:`status_expr`): the
    planner estimates these, where it cannot see through ``CASE ... = 'offline'``."""
    disabled, pending, online = _status_parts(now)
    active = and_(Membership.enabled == True, not_(pending))  # noqa: E712
    clauses = {
        "disabled": disabled,
        "pending": and_(Membership.enabled == True, pending),  # noqa: E712
        "online": and_(active, online),
        "offline": and_(active, or_(User.last_seen_at.is_(None), not_(online))),
    }
    return clauses.__getitem__


def _status_rank(status):
    return case({"online": 1, "offline": 2, "pending": 3, "disabled": 4}, value=status, else_=5)


def _type_rank():
    return case({t.name: t.rank for t in UserType}, value=Membership.type, else_=0)


def users_query(account_id: int, now: datetime | None = None) -> Select:
    """Every member of ``account_id`` with their user and status (``row.status``)."""
    return (
        select(Membership, User, status_expr(now).label("status"))
        .join(User, Membership.user_id == User.id)
        .where(Membership.account_id == account_id)
    )


def user_columns(now: datetime | None = None) -> list:
    from app.common.listing import Column

    status = status_expr(now)
    return [
        # Sorted on the two name columns (one index covers them), filtered on the full name.
        Column("name", "Name", User.first_name + " " + User.last_name, required=True,
               sort_expr=(User.first_name, User.last_name)),
        Column("username", "Username", User.username),
        Column("email", "Email", User.email, visible=False, blanks=True),
        Column("type", "Type", Membership.type, filter="choice", sort_expr=_type_rank(),
               choices=[(t.name, t.label) for t in UserType], coerce=UserType.__getitem__),
        Column("status", "Status", status, filter="choice", sort_expr=_status_rank(status),
               choices=list(STATUS_LABELS.items()), match=status_match(now)),
        Column("enabled", "Enabled", Membership.enabled, filter="bool", visible=False),
        Column("ondemand", "OnDemand", Membership.ondemand_enabled, filter="bool"),
        Column("mfa", "MFA", User.mfa_enabled, filter="bool", visible=False),
        Column("created", "Created", Membership.created_at, filter="date"),
        Column("modified", "Modified", Membership.modified_at, filter="date", blanks=True,
               visible=False),
        Column("last_seen", "Last seen", User.last_seen_at, filter="date", blanks=True),
    ]


# --------------------------------------------------------------------------- members
def get_member(account_id: int, user_id: int) -> Membership:
    """The membership of ``user_id`` in ``account_id``; another account's user is not found."""
    membership = db.session.scalar(
        select(Membership).where(Membership.account_id == account_id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("There is no such user in this account.")
    return membership


def member_status(membership: Membership, now: datetime | None = None) -> str:
    """The same status the listing shows, read with the same SQL expression."""
    return db.session.scalar(
        select(status_expr(now))
        .select_from(Membership)
        .join(User, Membership.user_id == User.id)
        .where(Membership.id == membership.id)
    )


def pending_invite(membership: Membership) -> Invite | None:
    return db.session.scalar(select(Invite).where(Invite.membership_id == membership.id))


def why_not_manage(actor: Membership, target: Membership, verb: str) -> str | None:
    """Why ``actor`` may not edit/remove ``target`` (None when they may)."""
    name = target.user.display_name
    if target.user_id == actor.user_id:
        return f"You cannot {verb} yourself here; use your profile."
    if target.type is UserType.owner:
        return f"{name} is the account owner; the owner changes only in account configuration."
    if not may_manage_member(actor, target):
        return f"{name} has a higher user type than you."
    return None


def _names(first_name: str, last_name: str) -> tuple[str, str]:
    first_name, last_name = (first_name or "").strip(), (last_name or "").strip()
    for label, value in (("first name", first_name), ("last name", last_name)):
        if len(value) > 100:
            raise ValidationError(f"The {label} is longer than 100 characters.")
    return first_name, last_name


def update_member(
    actor: Membership,
    user_id: int,
    *,
    first_name: str,
    last_name: str,
    email: str,
    user_type: UserType,
    enabled: bool,
    ondemand_enabled: bool,
    mfa: bool,
    default_action: str,
    group_ids: list[int] | None = None,
) -> Membership:
    """Edit a member. The username never changes; directory users keep the names and email
    their directory gives them. ``group_ids`` (None: leave them) are the member's active local
    user groups, for those who may manage groups."""
    target = get_member(actor.account_id, user_id)
    reason = why_not_manage(actor, target, "edit")
    if reason:
        raise Forbidden(reason)
    groups = _chosen_groups(actor, group_ids)
    if user_type not in assignable_types(actor):
        raise Forbidden(f"You cannot give the type {user_type.label}.")
    if default_action not in REMOTE_ACTIONS:
        raise ValidationError("Choose a default remote control action from the list.")
    user = target.user
    changes: dict[str, list] = {}

    def change(obj, attr, value, label=None):
        old = getattr(obj, attr)
        if old != value:
            changes[label or attr] = [getattr(old, "name", old), getattr(value, "name", value)]
            setattr(obj, attr, value)

    if not user.is_directory_user:
        first_name, last_name = _names(first_name, last_name)
        email = normalise_email(email)
        change(user, "first_name", first_name)
        change(user, "last_name", last_name)
        change(user, "email", email)
    if ondemand_enabled and not target.ondemand_enabled:
        used, limit = licence_counters(target.account)["ondemand_users"]
        if used + 1 > limit:
            raise LimitReached(
                f"The licence allows {limit} OnDemand users and {used} are in use."
            )
    change(target, "type", user_type)
    change(target, "enabled", enabled)
    change(target, "ondemand_enabled", ondemand_enabled)
    change(target, "default_action", default_action)
    change(user, "mfa_enabled", mfa, "mfa")
    if groups is not None:
        from app.groups.services import set_user_groups

        moved = set_user_groups(target, groups)
        if moved:
            changes["groups"] = moved
    if changes:
        target.modified_at = utcnow()
        target.modified_by_id = actor.user_id
        record("user.updated", user.username, changes, account_id=actor.account_id, commit=False)
    db.session.commit()
    return target


def _chosen_groups(actor: Membership, group_ids: list[int] | None):
    """The groups an invite or edit puts members in (None: the form had no groups field).
    Only those who may manage groups choose them: membership decides access."""
    if group_ids is None:
        return None
    from app.access import can
    from app.groups.services import resolve_user_groups

    if group_ids and not can("groups.manage", actor):
        raise Forbidden("You cannot put users in groups.")
    return resolve_user_groups(actor.account_id, group_ids)


def removal_problems(actor: Membership, user_ids: list[int]) -> tuple[list[Membership], list[str]]:
    """The members ``user_ids`` names in the actor's account and, for each one the actor may
    not remove, why. Used for the confirmation page and by :func:`remove_members`."""
    wanted = sorted(set(user_ids))
    if not wanted:
        raise ValidationError("Select at least one user.")
    targets = db.session.scalars(
        select(Membership)
        .where(Membership.account_id == actor.account_id, Membership.user_id.in_(wanted))
        .order_by(Membership.id)
    ).all()
    if len(targets) != len(wanted):
        raise NotFound("Some of the selected users are not in this account.")
    problems = []
    for target in targets:
        reason = why_not_manage(actor, target, "remove")
        if reason is None and _removes_whole_user(target):
            owned = db.session.scalar(
                select(Account.company).where(Account.owner_id == target.user_id)
            )
            if owned:
                reason = (f"{target.user.display_name} owns the account {owned}; "
                          "change that account's owner first.")
        if reason:
            problems.append(reason)
    return list(targets), problems


def _removes_whole_user(target: Membership) -> bool:
    return not target.user.is_directory_user and target.user.primary_account_id == target.account_id


@dataclass
class Removal:
    removed: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        parts = []
        if self.removed:
            parts.append(
                f"{len(self.removed)} user{'s' if len(self.removed) != 1 else ''} removed: "
                + ", ".join(self.removed) + "."
            )
        if self.disabled:
            parts.append(
                "Directory users are disabled instead of removed (they would come back at "
                "their next sign-in): " + ", ".join(self.disabled) + "."
            )
        return " ".join(parts)


def remove_members(actor: Membership, user_ids: list[int]) -> Removal:
    """Remove members from the actor's account, all or nothing: when any one of them may not
    be removed, nothing is and :class:`Forbidden` says why for each.

    Removing a user from their primary account removes them from every account and deletes
    the user; from another account, only that membership goes. Directory users are disabled
    instead. Every removed or disabled user is signed out.
    """
    from app.auth.sessions import end_all_sessions

    targets, problems = removal_problems(actor, user_ids)
    if problems:
        raise Forbidden("Nothing was removed. " + " ".join(problems))
    result = Removal()
    sign_out: list[User] = []
    now = utcnow()
    for target in targets:
        user = target.user
        if user.is_directory_user:
            target.enabled = False
            target.modified_at = now
            target.modified_by_id = actor.user_id
            record("user.disabled", user.username, {"reason": "removed (directory user)"},
                   account_id=actor.account_id, commit=False)
            result.disabled.append(user.username)
            sign_out.append(user)
        elif _removes_whole_user(target):
            accounts = [m.account_id for m in user.memberships]
            for account_id in accounts:
                record("user.removed", user.username,
                       {"primary_account": actor.account_id, "accounts": accounts},
                       account_id=account_id, commit=False)
            _delete_user(user)
            result.removed.append(user.username)
        else:
            db.session.execute(delete(Invite).where(Invite.membership_id == target.id))
            from app.groups.services import forget_memberships

            forget_memberships([target.id])
            db.session.delete(target)
            record("user.removed", user.username, {"accounts": [actor.account_id]},
                   account_id=actor.account_id, commit=False)
            result.removed.append(user.username)
            sign_out.append(user)
    db.session.commit()
    for user in sign_out:
        end_all_sessions(user)
    return result


def _delete_user(user: User) -> None:
    """Delete a user and what belongs to their sign-in. Spelled out rather than left to the
    foreign keys because SQLite does not enforce ``ON DELETE CASCADE`` here."""
    from app.groups.services import forget_memberships

    membership_ids = [m.id for m in user.memberships]
    if membership_ids:
        db.session.execute(delete(Invite).where(Invite.membership_id.in_(membership_ids)))
        forget_memberships(membership_ids)
    for model in (UserSession, EmailCode, RecoveryCode, PasswordReset):
        db.session.execute(delete(model).where(model.user_id == user.id))
    db.session.delete(user)


# --------------------------------------------------------------------------- invitations
INVITE_VALID = timedelta(days=7)
MAX_INVITE_SENDS = 5
MAX_BATCH = 100


class InviteGone(TesseraError):
    """An invitation link that existed but can no longer be used."""

    status = 410
    title = "Invitation expired"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_emails(text: str) -> list[str]:
    """Addresses separated by commas, semicolons, spaces or new lines, each validated; every
    bad or repeated address is reported at once."""
    tokens = [t for t in re.split(r"[\s,;]+", text or "") if t]
    if not tokens:
        raise ValidationError("Enter at least one email address.", field="emails")
    if len(tokens) > MAX_BATCH:
        raise ValidationError(f"Invite at most {MAX_BATCH} addresses at a time.", field="emails")
    emails, problems, seen = [], [], set()
    for token in tokens:
        try:
            email = normalise_email(token)
        except ValidationError:
            problems.append(f"{token} is not a valid email address.")
            continue
        if email in seen:
            problems.append(f"{email} is listed more than once.")
            continue
        seen.add(email)
        emails.append(email)
    if problems:
        raise ValidationError(" ".join(problems), field="emails")
    return emails


@dataclass
class Invitation:
    membership: Membership
    token: str | None  # None: an existing user who was added and only has to sign in
    mail_failed: bool = False


def invite_users(
    actor: Membership,
    emails_text: str,
    user_type: UserType,
    *,
    default_action: str = "",
    enabled: bool = True,
    ondemand_enabled: bool = False,
    mfa: bool = False,
    group_ids: list[int] | None = None,
) -> list[Invitation]:
    """Invite one or many addresses into the actor's account, all or nothing.

    New addresses get a user without a password, a membership and an invitation valid seven
    days (only the token's SHA-256 is stored); an existing user of another account gets the
    membership at once and a mail telling them to sign in. Licence limits hold for the whole
    batch. Mails go out after the commit; one that fails is reported and can be resent.
    ``group_ids`` puts every invited member in those active local user groups.
    """
    account = actor.account
    emails = parse_emails(emails_text)
    if user_type not in assignable_types(actor):
        raise Forbidden(f"You cannot invite users of the type {user_type.label}.")
    groups = _chosen_groups(actor, group_ids) or []
    if default_action not in REMOTE_ACTIONS:
        raise ValidationError("Choose a default remote control action from the list.")
    existing = {
        u.username: u for u in db.session.scalars(select(User).where(User.username.in_(emails)))
    }
    members = [e for e, u in existing.items() if any(m.account_id == account.id for m in u.memberships)]
    if members:
        raise Conflict(
            "Already users of this account: " + ", ".join(sorted(members)) + ". Nothing was sent.",
        )
    ensure_room(account, len(emails), len(emails) if ondemand_enabled else 0)

    now = utcnow()
    invitations = []
    for email in emails:
        user = existing.get(email)
        token = None
        if user is None:
            user = User(username=email, email=email, password_hash=None, mfa_enabled=mfa,
                        source="local", session_version=1, primary_account_id=account.id,
                        created_at=now)
            db.session.add(user)
        membership = Membership(
            user=user, account=account, type=user_type, enabled=enabled,
            ondemand_enabled=ondemand_enabled, default_action=default_action,
            created_at=now, created_by_id=actor.user_id,
        )
        db.session.add(membership)
        # Someone invited elsewhere who has not set up their account yet needs a link too.
        if user.password_hash is None and not user.is_directory_user:
            token = secrets.token_urlsafe(32)
            db.session.flush()
            db.session.add(Invite(membership_id=membership.id, token_hash=_token_hash(token),
                                  mfa=mfa, created_at=now, expires_at=now + INVITE_VALID,
                                  sent_count=1, invited_by_id=actor.user_id))
        if groups:
            from app.groups.services import set_user_groups

            db.session.flush()
            set_user_groups(membership, groups)
        record("user.invited", email,
               {"type": user_type.name, "existing_user": email in existing,
                "ondemand_enabled": ondemand_enabled, "enabled": enabled,
                **({"groups": sorted(g.name for g in groups)} if groups else {})},
               account_id=account.id, commit=False)
        invitations.append(Invitation(membership, token))
    db.session.commit()
    for invitation in invitations:
        invitation.mail_failed = not _send_invite(invitation.membership, invitation.token, actor.user)
    return invitations


def _send_invite(membership: Membership, token: str | None, inviter: User) -> bool:
    from flask import current_app

    from app.common.mail import send

    base = current_app.config["BASE_URL"]
    company = membership.account.company
    link = f"{base}/invite/{token}" if token else f"{base}/login"
    try:
        send(
            membership.user.email or membership.user.username,
            f"You are invited to join {company} on Tessera",
            "invite",
            company=company,
            inviter=inviter.display_name,
            link=link,
            existing=token is None,
            valid_days=INVITE_VALID.days,
            username=membership.user.username,
        )
    except Exception:  # SMTP down or refusing: the invitation stays and can be resent
        current_app.logger.exception("invite mail to %s failed", membership.user.username)
        return False
    return True


def resend_invite(actor: Membership, user_id: int) -> Invite:
    """Send a pending invitation again with a fresh link valid seven more days; at most
    :data:`MAX_INVITE_SENDS` sends in all. The previous link stops working."""
    target = get_member(actor.account_id, user_id)
    reason = why_not_manage(actor, target, "invite")
    if reason:
        raise Forbidden(reason)
    invite = pending_invite(target)
    if invite is None:
        raise Conflict(f"{target.user.username} has no pending invitation.")
    if invite.sent_count >= MAX_INVITE_SENDS:
        raise LimitReached(
            f"The invitation to {target.user.username} was sent {invite.sent_count} times, "
            f"the most allowed. Remove the user and invite them again."
        )
    token = secrets.token_urlsafe(32)
    invite.token_hash = _token_hash(token)
    invite.expires_at = utcnow() + INVITE_VALID
    invite.sent_count += 1
    record("user.invite_resent", target.user.username, {"sent_count": invite.sent_count},
           account_id=actor.account_id, commit=False)
    db.session.commit()
    if not _send_invite(target, token, actor.user):
        raise TesseraError("The invitation was renewed but the mail could not be sent. "
                           "Check the mail settings and try again.")
    return invite


def find_invite(token: str) -> Invite:
    """The invitation a link points at: unknown or used links are not found (404), expired
    ones are gone (410)."""
    invite = None
    if token and len(token) <= 100:
        invite = db.session.scalar(select(Invite).where(Invite.token_hash == _token_hash(token)))
    if invite is None:
        raise NotFound("This invitation link is not valid. It may have been used already, or "
                       "a newer invitation was sent. Ask whoever invited you to send it again.")
    if invite.expires_at <= utcnow():
        raise InviteGone("This invitation has expired. Ask whoever invited you to send it again.")
    return invite


def accept_invite(token: str, first_name: str, last_name: str, password: str) -> Membership:
    """Set up the invited user's account: names and password; the invitation is used up."""
    invite = find_invite(token)
    first_name, last_name = _names(first_name, last_name)
    if not first_name or not last_name:
        raise ValidationError("Enter your first and last name.")
    check_password_rules(password)
    membership = invite.membership
    user = membership.user
    user.first_name, user.last_name = first_name, last_name
    user.password_hash = hash_password(password)
    # Every invitation of this user is used up: another account's link must not reset the
    # password that was just chosen.
    db.session.execute(delete(Invite).where(
        Invite.membership_id.in_([m.id for m in user.memberships])))
    record("user.invite_accepted", user.username, account_id=membership.account_id, actor=user,
           commit=False)
    db.session.commit()
    return membership
