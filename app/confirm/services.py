"""Confirm access (spec B8): the rules and the records behind a technician's request to start a
session on a device whose Confirm-access role asks somebody first.

Called by the relay's waiter (``app.relay.confirm``) while a viewer waits, and by the answer
page (``app.confirm.views``) that an emailed group member opens. The request's row
(:class:`~app.models.AccessRequest`) is the truth: whoever changes it from ``pending`` first
(``UPDATE ... WHERE state = 'pending'``) decides, be it the person at the host, a group member's
link, the clock or the technician going away; everybody else reads the outcome. Every outcome is
audited (``confirm.requested``, ``confirm.allowed``, ``confirm.denied``, ``confirm.expired``,
``confirm.cancelled``, ``confirm.skipped``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update

from app.audit.services import record
from app.devices.services import clean_text
from app.errors import Forbidden, NotFound, TesseraError
from app.extensions import db
from app.models import (AccessRequest, AccessRequestState, Device, Group, Membership, User,
                        utcnow)
from app.models.groups import group_member

PENDING = AccessRequestState.pending
HOST, EMAIL = "host", "email"
# A link stays verifiable this long; the request itself expires much sooner (its row says when).
TOKEN_MAX_AGE = 7 * 24 * 3600


class BadLink(TesseraError):
    status = 400
    title = "Link not valid"


# ------------------------------------------------------------------------------ what applies
@dataclass(frozen=True)
class ConfirmRule:
    """One Confirm-access role that applies to a technician on a device now."""

    role: str
    on_host: bool
    by_email: bool
    email_group_ids: tuple[int, ...]
    email_only_when_host_unanswered: bool
    except_when_locked: bool
    except_when_nobody_logged_in: bool


@dataclass(frozen=True)
class ConfirmPlan:
    """Whom to ask, after the exceptions: the person at the host, and/or the members of
    ``email_group_ids`` by email (at once, or only when the host did not answer)."""

    roles: tuple[str, ...]
    on_host: bool
    email_group_ids: frozenset[int]
    email_at_once: bool

    @property
    def by_email(self) -> bool:
        return bool(self.email_group_ids)


def confirm_rules(membership_id: int, device_id: int, at: datetime | None = None) -> list[ConfirmRule]:
    """The Confirm-access roles that apply to this membership on this device at ``at``."""
    from app.assignments.permissions import effective_permissions

    try:
        membership = db.session.get(Membership, membership_id)
        device = db.session.get(Device, device_id)
        if membership is None or device is None:
            return []
        permissions = effective_permissions(membership, device, at or utcnow())
        rules = []
        for applied in permissions.confirm:
            role = applied.role
            rules.append(ConfirmRule(
                role.name, bool(role.confirm_on_host), bool(role.confirm_by_email),
                tuple(sorted(g.id for g in role.confirm_groups if g.active)),
                bool(role.email_only_when_host_unanswered), bool(role.except_when_locked),
                bool(role.except_when_nobody_logged_in)))
        return rules
    finally:
        db.session.rollback()


def plan(rules: list[ConfirmRule], locked: bool | None, user: str | None) -> ConfirmPlan | None:
    """Combine the roles that apply into one plan, or None when no confirmation is needed.

    ``locked`` and ``user`` are what the agent reports (None when the device is offline: the
    exceptions cannot be known then, so they do not apply). A role is waived by its own
    exceptions; the rest are merged: the host is asked if any role asks it, the union of the
    email groups gets mail, at once unless every emailing role says "only when the host did not
    answer". A role that asks nobody (neither option ticked) asks for nothing."""
    active = []
    for rule in rules:
        if not (rule.on_host or rule.by_email):
            continue
        if rule.except_when_locked and locked:
            continue
        if rule.except_when_nobody_logged_in and user is not None and not user.strip():
            continue
        active.append(rule)
    if not active:
        return None
    emailing = [r for r in active if r.by_email]
    return ConfirmPlan(
        roles=tuple(sorted({r.role for r in active})),
        on_host=any(r.on_host for r in active),
        email_group_ids=frozenset(g for r in emailing for g in r.email_group_ids),
        email_at_once=any(not r.email_only_when_host_unanswered for r in emailing))


def audit_skipped(grant, rules: list[ConfirmRule], locked: bool | None, user: str | None) -> None:
    """A Confirm-access role applies but its exceptions waive it (locked, nobody logged in)."""
    try:
        record("confirm.skipped", grant.device_name,
               {"device_id": grant.device_id, "roles": sorted({r.role for r in rules}),
                "why": "the computer is locked" if locked else "nobody is logged in"},
               account_id=grant.account_id, actor=db.session.get(User, grant.user_id))
    finally:
        db.session.rollback()


# ------------------------------------------------------------------------------ the request
def open_request(grant, plan: ConfirmPlan, expires_in: float) -> int:
    """A new pending request for ``grant`` (a relay ``ViewerGrant``), audited; its id."""
    now = utcnow()
    row = AccessRequest(account_id=grant.account_id, device_id=grant.device_id, user_id=grant.user_id,
                        technician=grant.technician[:320], username=grant.username[:320],
                        device_name=grant.device_name[:255], created_at=now,
                        expires_at=now + timedelta(seconds=expires_in), state=PENDING)
    db.session.add(row)
    db.session.commit()
    groups = db.session.scalars(select(Group.name).where(Group.id.in_(plan.email_group_ids))).all() \
        if plan.email_group_ids else []
    record("confirm.requested", grant.device_name,
           {"device_id": grant.device_id, "request": row.id, "roles": list(plan.roles),
            "on_host": plan.on_host, "email_groups": sorted(groups),
            "email": "at once" if plan.email_at_once else
                     ("when the host does not answer" if groups else "no")},
           account_id=grant.account_id, actor=db.session.get(User, grant.user_id))
    return row.id


def extend(request_id: int, seconds: float) -> None:
    """Give a pending request ``seconds`` more from now (email takes longer than the host)."""
    db.session.execute(update(AccessRequest)
                       .where(AccessRequest.id == request_id, AccessRequest.state == PENDING)
                       .values(expires_at=utcnow() + timedelta(seconds=seconds)))
    db.session.commit()


def get_request(request_id: int) -> AccessRequest | None:
    """The row as it stands now (detached: read it without a transaction)."""
    try:
        row = db.session.get(AccessRequest, request_id, populate_existing=True)
        if row is not None:
            db.session.expunge(row)
        return row
    finally:
        db.session.rollback()


def _audit_outcome(row: AccessRequest, actor: User | None, extra: dict | None = None) -> None:
    action = {AccessRequestState.allowed: "confirm.allowed", AccessRequestState.denied: "confirm.denied",
              AccessRequestState.expired: "confirm.expired",
              AccessRequestState.cancelled: "confirm.cancelled"}[row.state]
    details = {"device_id": row.device_id, "request": row.id,
               "technician": f"{row.technician} ({row.username})"}
    if row.state in (AccessRequestState.allowed, AccessRequestState.denied):
        details.update(answered_by=row.answered_by, via=row.answered_via)
    record(action, row.device_name, {**details, **(extra or {})}, account_id=row.account_id,
           actor=actor)


def answer(request_id: int, allow: bool, by: str, via: str, actor: User | None = None) -> bool:
    """Record the first answer: True when this one won (the request was still pending and not
    past its time), False when somebody or something had decided already."""
    now = utcnow()
    state = AccessRequestState.allowed if allow else AccessRequestState.denied
    result = db.session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == request_id, AccessRequest.state == PENDING,
               AccessRequest.expires_at > now)
        .values(state=state, answered_by=clean_text(by)[:320], answered_via=via, answered_at=now))
    db.session.commit()
    if result.rowcount != 1:
        return False
    _audit_outcome(db.session.get(AccessRequest, request_id), actor)
    return True


def finish(request_id: int, state: AccessRequestState, why: str = "") -> bool:
    """End a pending request without an answer (``expired`` or ``cancelled``); True when it
    was still pending."""
    result = db.session.execute(update(AccessRequest)
                                .where(AccessRequest.id == request_id, AccessRequest.state == PENDING)
                                .values(state=state, answered_at=utcnow()))
    db.session.commit()
    if result.rowcount != 1:
        return False
    _audit_outcome(db.session.get(AccessRequest, request_id), None, {"why": why} if why else None)
    return True


# ------------------------------------------------------------------------------ email
def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="tessera.confirm-access")


def link_token(request_id: int, user_id: int) -> str:
    return _serializer().dumps({"r": request_id, "u": user_id})


def token_user(token: str | None, request_id: int) -> int:
    """The user a link's token was made for, or :class:`BadLink`."""
    if not token:
        raise BadLink("This confirmation link is incomplete: open the link from the email as it is.")
    try:
        data = _serializer().loads(token, max_age=TOKEN_MAX_AGE)
    except SignatureExpired:
        raise BadLink("This confirmation link has expired.") from None
    except BadSignature:
        raise BadLink("This confirmation link is not valid: it was changed or cut short. "
                      "Open the link from the email as it is.") from None
    if not isinstance(data, dict) or data.get("r") != request_id or not isinstance(data.get("u"), int):
        raise BadLink("This confirmation link does not belong to this request.")
    return data["u"]


def recipients(account_id: int, group_ids, technician_id: int | None) -> list[User]:
    """Enabled members of the account in the (active) groups, the technician who asks aside:
    nobody confirms their own access."""
    if not group_ids:
        return []
    users = db.session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .join(group_member, group_member.c.membership_id == Membership.id)
        .join(Group, Group.id == group_member.c.group_id)
        .where(Group.id.in_(list(group_ids)), Group.active == True,  # noqa: E712
               Group.account_id == account_id, Membership.account_id == account_id,
               Membership.enabled == True)  # noqa: E712
        .distinct().order_by(User.id)).all()
    return [u for u in users if u.id != technician_id]


def send_emails(request_id: int, group_ids, stop=lambda: False) -> int:
    """Mail every recipient a signed link to the answer page; how many mails went out. A mail
    that cannot be sent is logged and skipped (the relay must go on); ``stop()`` ends early."""
    from app.common.mail import MailError, send

    row = db.session.get(AccessRequest, request_id)
    if row is None:
        return 0
    base = current_app.config["BASE_URL"]
    people = recipients(row.account_id, group_ids, row.user_id)
    context = dict(technician=row.technician, username=row.username, device=row.device_name,
                   at=row.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"), expires=row.expires_at)
    db.session.rollback()
    sent = 0
    for user in people:
        if stop():
            break
        link = f"{base}/confirm-access/{request_id}?t={link_token(request_id, user.id)}"
        try:
            send(user.email or user.username, f"Confirm access to {context['device']}",
                 "confirm_access", link=link, name=user.display_name, **context)
        except MailError:  # logged by mail.deliver; the others may still be reachable
            continue
        except Exception:  # noqa: BLE001 - a template or socket surprise must not end the wait
            current_app.logger.exception("confirm-access mail to %s failed", user.username)
            continue
        sent += 1
    return sent


# ------------------------------------------------------------------------------ the page
def request_for(request_id: int, user: User) -> AccessRequest:
    """The request a signed-in user opens from a link: 404 unless they are an enabled member
    of its account (another account's request does not exist for them)."""
    row = db.session.get(AccessRequest, request_id)
    if row is None:
        raise NotFound("There is no such confirmation request.")
    member = db.session.scalar(select(Membership).where(
        Membership.user_id == user.id, Membership.account_id == row.account_id,
        Membership.enabled == True))  # noqa: E712
    if member is None:
        raise NotFound("There is no such confirmation request.")
    return row


def check_recipient(row: AccessRequest, token: str | None, user: User) -> None:
    """The link must be this request's and made for the signed-in user."""
    if token_user(token, row.id) != user.id:
        raise Forbidden("This confirmation link was sent to somebody else: sign out and sign "
                        "in as the person it was sent to.")
    if row.user_id == user.id:
        raise Forbidden("You cannot confirm your own access.")


def answer_by_email(row: AccessRequest, user: User, allow: bool) -> bool:
    return answer(row.id, allow, f"{user.display_name} ({user.username})", EMAIL, actor=user)


def is_expired(row: AccessRequest, now: datetime | None = None) -> bool:
    return row.state is AccessRequestState.expired or (
        row.state is PENDING and row.expires_at <= (now or utcnow()))


def recent_requests(device_id: int, limit: int = 10) -> list[AccessRequest]:
    """The device's latest access requests, newest first (its details page)."""
    return list(db.session.scalars(select(AccessRequest).where(AccessRequest.device_id == device_id)
                                   .order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc())
                                   .limit(limit)))
