"""OnDemand sessions (spec D1–D3), free of Flask's request: keys, the life of a session, and
its audit trail. The model and its states are described in ``app.models.ondemand``.

Called by the My sessions pages and the public link / key pages (``app.ondemand.views``), and by
the relay (``app.relay.ondemand``) when an OnDemand agent connects, a technician starts, the
person at the computer answers, and the connection ends. Each relay-side function ends its
transaction, like ``app.relay.services``: a long-lived websocket holds no database connection.

Who may create and start sessions: a user with the "OnDemand sessions" flag on their membership
(counted by the account's OnDemand licence) and an OnDemand-type role assignment applying to them
now (``app.assignments.permissions.ondemand_permissions``). Only the technician who created a
session sees it in their queue and may start or reject it.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from app.audit.services import record
from app.devices.services import clean_text
from app.errors import Forbidden, NotFound, TesseraError
from app.extensions import db
from app.models import Membership, User, utcnow
from app.models.ondemand import KEY_DIGITS, KEY_LIFETIME, WAIT_LIMIT, OnDemandSession, OnDemandState

KEY_ATTEMPTS = 20  # a collision with a live key is one in 10^9 / live keys; retry a few times


class KeyRefused(TesseraError):
    """A key that cannot be used: unknown, already used, or expired. ``expired`` tells the relay
    to close with 4015 rather than 4001."""

    status = 404
    title = "Session key not valid"

    def __init__(self, message: str, expired: bool = False):
        super().__init__(message)
        self.expired = expired


def normalise_key(text: str) -> str | None:
    """A typed key without its spaces or dashes (``123 456 789``), or None when it is not nine
    digits."""
    digits = "".join(ch for ch in str(text or "") if ch not in " -\u00a0\t")
    if len(digits) != KEY_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def new_key() -> str:
    return f"{secrets.randbelow(10 ** KEY_DIGITS):0{KEY_DIGITS}d}"


def ondemand_refusal(membership: Membership | None, at: datetime) -> str:
    """Why this membership may not use OnDemand sessions now, or "" when it may."""
    from app.assignments.permissions import ondemand_permissions

    if membership is None or not membership.enabled:
        return "Your user is disabled in this account."
    permissions = ondemand_permissions(membership, at)
    if not permissions.granted:
        return permissions.refusal or "No OnDemand role assignment applies to you now."
    return ""


def ondemand_keys(membership: Membership, at: datetime) -> frozenset[str]:
    """The permission keys the technician's OnDemand roles allow now (empty: none apply)."""
    from app.assignments.permissions import ondemand_permissions

    return frozenset(ondemand_permissions(membership, at).granted)


def create_session(membership: Membership, now: datetime | None = None) -> OnDemandSession:
    """A new one-time key for ``membership``'s user, or Forbidden saying why they may not."""
    now = now or utcnow()
    refusal = ondemand_refusal(membership, now)
    if refusal:
        raise Forbidden(refusal)
    for _ in range(KEY_ATTEMPTS):
        row = OnDemandSession(account_id=membership.account_id, user_id=membership.user_id,
                              key=new_key(), link_token=secrets.token_urlsafe(24),
                              created_at=now, expires_at=now + KEY_LIFETIME,
                              state=OnDemandState.created, granted=[])
        db.session.add(row)
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            continue
        record("ondemand.created", row.grouped_key, {"session": row.id},
               account_id=membership.account_id, commit=False)
        db.session.commit()
        return row
    raise TesseraError("Could not find a free session key; try again.")


def my_sessions(membership: Membership) -> list[OnDemandSession]:
    """The technician's queue: waiting and running sessions first (longest waiting first), then
    keys not used yet (newest first)."""
    rows = db.session.scalars(select(OnDemandSession).where(
        OnDemandSession.account_id == membership.account_id,
        OnDemandSession.user_id == membership.user_id)).all()
    order = {OnDemandState.waiting: 0, OnDemandState.active: 1, OnDemandState.created: 2}
    return sorted(rows, key=lambda r: (order[r.state],
                                       (r.connected_at or r.created_at).timestamp()
                                       * (1 if r.state is not OnDemandState.created else -1)))


def get_own(membership: Membership, session_id: int) -> OnDemandSession:
    """The technician's own session, or NotFound (another technician's sessions do not exist
    for them)."""
    row = db.session.get(OnDemandSession, session_id)
    if row is None or row.account_id != membership.account_id or row.user_id != membership.user_id:
        raise NotFound("There is no such OnDemand session (it may have ended).")
    return row


def by_link_token(token: str) -> OnDemandSession | None:
    if not token or len(token) > 64:
        return None
    return db.session.scalar(select(OnDemandSession).where(OnDemandSession.link_token == token))


def usable(row: OnDemandSession | None, now: datetime | None = None) -> OnDemandSession:
    """``row`` when its key may still be used by an agent, else :class:`KeyRefused`."""
    now = now or utcnow()
    if row is None:
        raise KeyRefused("This session key is not valid: check the digits, or ask the technician for a new one.")
    if row.state is not OnDemandState.created:
        raise KeyRefused("This session key was already used: ask the technician for a new one.")
    if now >= row.expires_at:
        raise KeyRefused("This session key has expired: ask the technician for a new one.", expired=True)
    return row


def end(row: OnDemandSession, action: str, how: str, details: dict | None = None,
        actor: User | None = None) -> None:
    """Delete a finished session and audit why (``ondemand.<action>``). The caller commits."""
    record(f"ondemand.{action}", row.grouped_key,
           {"session": row.id, "how": how, "hostname": row.hostname, "user_id": row.user_id,
            **(details or {})},
           account_id=row.account_id, actor=actor, commit=False)
    db.session.delete(row)


def reject(membership: Membership, session_id: int) -> int:
    """Void a session's key and drop it from the queue (the relay disconnects its agent with
    4014 when it is connected: ``app.relay.ondemand.rejected``). The id of the deleted row."""
    row = get_own(membership, session_id)
    end(row, "rejected", "Rejected by the technician.")
    db.session.commit()
    return session_id


def expire(now: datetime | None = None) -> list[int]:
    """Delete keys unused for 24 hours and sessions waiting over an hour; the ids deleted (the
    relay closes those that are connected with 4015). Run by the relay's checker."""
    now = now or utcnow()
    rows = db.session.scalars(select(OnDemandSession).where(or_(
        (OnDemandSession.state == OnDemandState.created) & (OnDemandSession.expires_at <= now),
        (OnDemandSession.state == OnDemandState.waiting) & (OnDemandSession.connected_at <= now - WAIT_LIMIT),
    ))).all()
    ids = []
    for row in rows:
        waited = row.state is OnDemandState.waiting
        end(row, "expired", "Waited more than an hour." if waited else "The key was not used within 24 hours.")
        ids.append(row.id)
    db.session.commit()
    return ids


@dataclass(frozen=True)
class Visitor:
    """What an OnDemand agent reported in HELLO (cleaned, still attacker input)."""

    hostname: str
    os: str
    user: str
    agent_version: str


def connected(row: OnDemandSession, visitor: Visitor, node: str, now: datetime | None = None) -> None:
    """The agent said HELLO with this session's key: the key is spent, the session waits."""
    now = now or utcnow()
    row.state, row.connected_at, row.relay_node = OnDemandState.waiting, now, node[:100]
    row.hostname = clean_text(visitor.hostname)[:255]
    row.os = clean_text(visitor.os)[:200]
    row.visitor_user = clean_text(visitor.user)[:200]
    row.agent_version = clean_text(visitor.agent_version)[:50]
    record("ondemand.connected", row.grouped_key,
           {"session": row.id, "hostname": row.hostname, "os": row.os, "user": row.visitor_user,
            "agent_version": row.agent_version},
           account_id=row.account_id, commit=False)
    db.session.commit()


# --------------------------------------------------------------------------- the Portal's pages
def check_key(text: str, address: str, now: datetime | None = None) -> OnDemandSession:
    """The key typed on the public key page (``POST /ondemand``): the session when it can still
    be used, else :class:`KeyRefused`. Every attempt is audited as ``ondemand.key_tried`` with
    ``ok`` and the client address, in the account of the key when a session has it (none
    when the digits match nothing)."""
    digits = normalise_key(text)
    row = db.session.scalar(select(OnDemandSession).where(OnDemandSession.key == digits)) if digits else None
    try:
        usable(row, now)
    except KeyRefused as refusal:
        record("ondemand.key_tried", row.grouped_key if row is not None else "",
               {"ok": False, "address": address, "why": refusal.message,
                **({"session": row.id} if row is not None else {})},
               account_id=row.account_id if row is not None else None, commit=False)
        db.session.commit()
        raise
    record("ondemand.key_tried", row.grouped_key, {"ok": True, "address": address, "session": row.id},
           account_id=row.account_id, commit=False)
    db.session.commit()
    return row


def send_link(membership: Membership, session_id: int, address: str, link: str, portal_url: str,
              now: datetime | None = None) -> OnDemandSession:
    """Email the link page's address and the key of the technician's own unused session to
    ``address`` (``ValidationError`` on the ``email`` field when it is not an address; Conflict
    when the key was used or expired; ``MailError`` when the mail could not be sent, with
    nothing recorded). Audited as ``ondemand.emailed``."""
    from app.common.mail import send
    from app.errors import Conflict
    from app.users.services import normalise_email

    row = get_own(membership, session_id)
    email = normalise_email(address or "")
    try:
        usable(row, now)
    except KeyRefused:
        raise Conflict(f"Key {row.grouped_key} was used or has expired: create a new session to "
                       "send a link.") from None
    technician = membership.user
    send(email, f"{technician.display_name} invites you to a remote support session", "ondemand_link",
         company=membership.account.company, technician=technician.display_name, link=link,
         key=row.grouped_key, expires_at=row.expires_at, portal_url=portal_url)
    row.emailed_to = email[:320]
    record("ondemand.emailed", row.grouped_key, {"session": row.id, "to": email},
           account_id=row.account_id, commit=False)
    db.session.commit()
    return row


# --------------------------------------------------------------------------- the relay
# What the person at the computer is asked to allow, each separately (CONSENT_REQUEST).
CONSENT_PERMISSIONS = ("view_screen", "keyboard_mouse", "clipboard")


@dataclass(frozen=True)
class TechnicianAccess:
    """What :func:`technician_access` found: the session, the technician's membership, and what
    their OnDemand roles let them ask for now (among :data:`CONSENT_PERMISSIONS`)."""

    session: OnDemandSession
    membership: Membership
    asks: frozenset[str]


def technician_access(user_id: int, session_id: int, at: datetime | None = None) -> TechnicianAccess:
    """The one rule for who may open an OnDemand session's console, shared by the console page
    (``app.console.views``) and the relay's viewer websocket (``app.relay.ondemand``, on
    connecting and about every second): the session's own technician (anybody else gets
    NotFound: another technician's session does not exist for them), with OnDemand enabled and
    an OnDemand role applying now that allows something the console uses (else Forbidden saying
    why). Leaves the transaction open (callers end it)."""
    from app.assignments.permissions import ondemand_permissions

    at = at or utcnow()
    row = db.session.get(OnDemandSession, session_id)
    membership = row and db.session.scalar(select(Membership).where(
        Membership.user_id == user_id, Membership.account_id == row.account_id))
    if row is None or membership is None or row.user_id != user_id:
        raise NotFound("There is no such OnDemand session (it may have ended).")
    permissions = ondemand_permissions(membership, at)
    if not permissions.granted:
        raise Forbidden(permissions.refusal or "No OnDemand role assignment applies to you now.")
    asks = frozenset(permissions.granted) & frozenset(CONSENT_PERMISSIONS)
    if not asks:
        raise Forbidden("Your OnDemand roles allow nothing the console can use (View screen, "
                        "Keyboard and mouse or Clipboard).")
    return TechnicianAccess(row, membership, asks)


def claim(session_id: int, visitor: Visitor, node: str, now: datetime | None = None) -> OnDemandSession:
    """An agent that presented this session's key said HELLO: spend the key (created → waiting)
    unless another connection did since the key was checked — one atomic update, so two agents
    racing with one key cannot both have it — then :func:`connected`. :class:`KeyRefused` when
    the key can no longer be used."""
    now = now or utcnow()
    result = db.session.execute(
        update(OnDemandSession)
        .where(OnDemandSession.id == session_id, OnDemandSession.state == OnDemandState.created,
               OnDemandSession.expires_at > now)
        .values(state=OnDemandState.waiting, connected_at=now))
    if result.rowcount != 1:
        db.session.rollback()
        usable(db.session.get(OnDemandSession, session_id), now)  # raises the refusal that fits
        raise KeyRefused("This session key was already used: ask the technician for a new one.")
    row = db.session.get(OnDemandSession, session_id)
    connected(row, visitor, node, now)
    return row


def consent_answered(session_id: int, asked, allowed, technician: str, how: str) -> None:
    """Audit what the person at the computer answered the technician (``ondemand.consent``)."""
    row = db.session.get(OnDemandSession, session_id)
    if row is None:
        db.session.rollback()
        return
    record("ondemand.consent", row.grouped_key,
           {"session": row.id, "technician": technician, "asked": sorted(asked),
            "allowed": sorted(allowed), "answer": how},
           account_id=row.account_id, commit=False)
    db.session.commit()


def started(session_id: int, granted, technician_id: int, now: datetime | None = None) -> bool:
    """The person at the computer allowed ``granted``: the session runs (waiting → active,
    ``started_at``, ``granted``), audited ``ondemand.started``. False when it no longer waits
    (rejected, expired or ended meanwhile)."""
    now = now or utcnow()
    result = db.session.execute(
        update(OnDemandSession)
        .where(OnDemandSession.id == session_id, OnDemandSession.state == OnDemandState.waiting)
        .values(state=OnDemandState.active, started_at=now, granted=sorted(granted)))
    if result.rowcount != 1:
        db.session.rollback()
        return False
    row = db.session.get(OnDemandSession, session_id)
    record("ondemand.started", row.grouped_key,
           {"session": row.id, "hostname": row.hostname, "granted": sorted(granted)},
           account_id=row.account_id, actor=db.session.get(User, technician_id), commit=False)
    db.session.commit()
    return True


def stopped_viewing(session_id: int) -> None:
    """The technician's console closed while the visitor's agent stays connected: the session
    waits in the queue again (the next Start asks the person at the computer again)."""
    db.session.execute(
        update(OnDemandSession)
        .where(OnDemandSession.id == session_id, OnDemandSession.state == OnDemandState.active)
        .values(state=OnDemandState.waiting, granted=[]))
    db.session.commit()


def finish(session_id: int, how: str, used, now: datetime | None = None) -> bool:
    """The agent's connection ended: delete the session and audit ``ondemand.ended`` with how,
    how long it ran and the permissions the technician used. False when it was gone already
    (rejected or expired: those were audited when they were deleted)."""
    now = now or utcnow()
    row = db.session.get(OnDemandSession, session_id)
    if row is None:
        db.session.rollback()
        return False
    ran = round((now - row.started_at).total_seconds()) if row.started_at is not None else 0
    end(row, "ended", how, {"duration_seconds": ran, "used": sorted(used)})
    db.session.commit()
    return True


def clear_node(node: str) -> list[int]:
    """Sessions a relay node held when it stopped (a crash, a restart): their agents are gone,
    so they end (audited ``ondemand.ended``). Called once when the relay starts, before any
    agent connects. The ids."""
    rows = db.session.scalars(select(OnDemandSession).where(
        OnDemandSession.relay_node == node[:100], OnDemandSession.state != OnDemandState.created)).all()
    ids = [row.id for row in rows]
    for row in rows:
        end(row, "ended", "The relay restarted: the visitor's connection was lost.")
    db.session.commit()
    return ids


def existing(session_ids) -> set[int]:
    """Which of these sessions still exist (the relay's checker: one rejected or expired
    through another relay node is gone)."""
    ids = list(session_ids)
    if not ids:
        return set()
    try:
        return set(db.session.scalars(select(OnDemandSession.id).where(OnDemandSession.id.in_(ids))))
    finally:
        db.session.rollback()
