"""The relay's rules that need the database: who may connect, presence, and the audit trail.

Called by ``app.relay.agent`` and ``app.relay.viewer`` when a connection opens or closes, and by
the hub's checker greenlet (``app.relay.hub``) about once a second, never per message: the hot
loop works on the plain values these functions return (``AgentGrant``, ``ViewerGrant``), not on
ORM objects. Every function ends its transaction, so a long-lived websocket holds no database
connection between calls.

Refusals raise :class:`Refused` carrying the close code of docs/protocol.md.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from app.audit.services import record
from app.auth.sessions import IDLE_TIMEOUT, SEEN_EVERY
from app.devices.services import authenticate_device, clean_text, hash_token
from app.errors import TesseraError
from app.extensions import db
from app.models import Device, EnrolmentState, Membership, Package, RemoteSession, User, UserSession, utcnow
from agents.common.protocol import CloseCode, Hello, permission_mask

VIEW_NEEDS = ("remote_session", "view_screen")
POWER_LABELS = {1: "log out", 2: "lock", 3: "restart", 4: "shut down", 5: "Ctrl+Alt+Del"}


class Refused(TesseraError):
    """A connection is refused or must end; ``close_code`` says why (docs/protocol.md)."""

    status = 403
    title = "Connection refused"

    def __init__(self, close_code: int, message: str):
        super().__init__(message)
        self.close_code = int(close_code)


def node_name() -> str:
    """This relay process's name in ``Device.relay_node`` (``TESSERA_RELAY_NODE``, else the
    host name): the device list shows where a device is connected."""
    return (os.environ.get("TESSERA_RELAY_NODE") or socket.gethostname())[:100]


def _done() -> None:
    """End the read-only transaction so the connection goes back to the pool."""
    db.session.rollback()


# ------------------------------------------------------------------------------------ agents
@dataclass(frozen=True)
class AgentGrant:
    device_id: int
    account_id: int
    hostname: str


def admit_agent(token: str | None) -> AgentGrant:
    """The device an agent's bearer token belongs to, or :class:`Refused`: 4001 unknown token,
    4004 revoked device or package, 4003 pending."""
    try:
        device = authenticate_device(token)
        if device is None:
            known = token and len(token) <= 200 and db.session.scalar(
                select(Device.id).where(Device.token_hash == hash_token(token)))
            if known:
                raise Refused(CloseCode.DEVICE_REVOKED,
                              "This device was revoked (or its deployment package was): it can no "
                              "longer connect.")
            raise Refused(CloseCode.UNAUTHENTICATED, "Unknown device token: enrol again.")
        if device.enrolment_state is not EnrolmentState.enrolled:
            raise Refused(CloseCode.DEVICE_PENDING,
                          "This device waits for an administrator to enroll it.")
        return AgentGrant(device.id, device.account_id, device.hostname)
    finally:
        _done()


def agent_online(device_id: int, hello: Hello, node: str, now: datetime | None = None) -> None:
    """Presence when an agent has said HELLO: online, since when, what it reports."""
    now = now or utcnow()
    device = db.session.get(Device, device_id)
    if device is None:
        _done()
        return
    if not device.online or device.online_since is None:
        device.online_since = now
    device.online = True
    device.last_seen_at = now
    device.relay_node = node[:100]
    device.os = clean_text(hello.os)[:200]
    device.agent_version = clean_text(hello.agent_version)[:50]
    device.logged_in_user = clean_text(hello.user)[:200]
    hostname = clean_text(hello.hostname)[:255]
    if hostname:
        device.hostname = hostname
    db.session.commit()


def agent_offline(device_id: int, now: datetime | None = None) -> None:
    now = now or utcnow()
    db.session.execute(update(Device).where(Device.id == device_id)
                       .values(online=False, online_since=None, last_seen_at=now))
    db.session.commit()


def agent_status(device_id: int, user: str) -> None:
    db.session.execute(update(Device).where(Device.id == device_id)
                       .values(logged_in_user=clean_text(user)[:200], last_seen_at=utcnow()))
    db.session.commit()


# Ids per IN (...) list: a relay holds tens of thousands of devices, and PostgreSQL takes at
# most 65,535 bound parameters in one statement.
ID_BATCH = 5000


def _batches(ids: list[int]):
    for start in range(0, len(ids), ID_BATCH):
        yield ids[start:start + ID_BATCH]


def touch_agents(device_ids, now: datetime | None = None) -> None:
    """``last_seen_at`` for every connected agent, a statement per batch of ids."""
    now = now or utcnow()
    for batch in _batches(list(device_ids)):
        db.session.execute(update(Device).where(Device.id.in_(batch)).values(last_seen_at=now))
    db.session.commit()


def forget_node(node: str) -> int:
    """Devices this node left marked online (a crash, a kill -9): offline now. Called once when
    the relay starts, before any agent connects."""
    result = db.session.execute(update(Device).where(Device.relay_node == node, Device.online == True)  # noqa: E712
                                .values(online=False, online_since=None))
    db.session.commit()
    return result.rowcount or 0


def refused_devices(device_ids) -> dict[int, Refused]:
    """Among connected devices, those that may no longer be connected (removed, revoked, their
    package revoked, back to pending), with the refusal to close them with."""
    ids = list(device_ids)
    if not ids:
        return {}
    rows = []
    try:
        for batch in _batches(ids):
            rows += db.session.execute(
                select(Device.id, Device.revoked, Device.enrolment_state, Package.revoked_at)
                .outerjoin(Package, Device.package_id == Package.id).where(Device.id.in_(batch))
            ).all()
    finally:
        _done()
    found = {row.id: row for row in rows}
    out: dict[int, Refused] = {}
    for device_id in ids:
        row = found.get(device_id)
        if row is None or row.revoked or row.revoked_at is not None:
            out[device_id] = Refused(CloseCode.DEVICE_REVOKED,
                                     "This device was revoked or removed.")
        elif row.enrolment_state is not EnrolmentState.enrolled:
            out[device_id] = Refused(CloseCode.DEVICE_PENDING,
                                     "This device waits for an administrator to enroll it.")
    return out


# ----------------------------------------------------------------------------------- viewers
@dataclass(frozen=True)
class ViewerGrant:
    """A technician admitted to view a device, and what they may do there right now."""

    sid: str
    user_id: int
    membership_id: int
    technician: str
    username: str
    device_id: int
    account_id: int
    device_name: str
    keys: frozenset[str]

    @property
    def mask(self) -> int:
        return permission_mask(self.keys)


@dataclass(frozen=True)
class ViewAccess:
    """What :func:`view_access` found: the technician, their membership in the device's account,
    the device and the technician's effective permissions on it."""

    user: User
    membership: Membership
    device: Device
    permissions: object  # app.assignments.permissions.Permissions


# A role names the clients it may be used from (Role.client_types); the websocket of a signed-in
# browser is "browser", the installed viewer (planned, docs/viewer.md) will be "viewer".
CLIENT_REFUSALS = {
    "browser": "Your roles do not allow remote control through the browser (only the installed viewer).",
    "viewer": "Your roles do not allow remote control through the installed viewer (only the browser).",
}


def view_access(user_id: int, device_id: int, at: datetime, client: str = "browser") -> ViewAccess:
    """The one rule for who may view a device's screen, shared by the relay (:func:`viewer_grant`,
    on connecting and about every second) and the console page (``app.console.views``): raise
    :class:`Refused` with 4009 when the device is not theirs to view (no such device in one of
    their accounts, or no ``remote_session`` + ``view_screen`` now, or no applying role allows
    ``client``), 4001 when their user is disabled there, 4004 when the device is revoked. Leaves the transaction open (callers end it)."""
    from app.assignments.permissions import effective_permissions

    user = db.session.get(User, user_id)
    device = db.session.get(Device, device_id)
    membership = device and db.session.scalar(select(Membership).where(
        Membership.user_id == user_id, Membership.account_id == device.account_id))
    if user is None or device is None or membership is None:
        raise Refused(CloseCode.NOT_PERMITTED, "You may not view this device.")
    if not membership.enabled:
        raise Refused(CloseCode.UNAUTHENTICATED, "Your user is disabled in this account.")
    permissions = effective_permissions(membership, device, at)
    if device.revoked:
        raise Refused(CloseCode.DEVICE_REVOKED, "This device was revoked.")
    if not all(permissions.allows(key) for key in VIEW_NEEDS):
        raise Refused(CloseCode.NOT_PERMITTED,
                      permissions.refusal or "You may not view this device's screen.")
    if client not in permissions.client_types:
        raise Refused(CloseCode.NOT_PERMITTED, CLIENT_REFUSALS[client])
    return ViewAccess(user, membership, device, permissions)


def viewer_grant(sid: str | None, user_id: int | None, device_id: int,
                 at: datetime | None = None) -> ViewerGrant:
    """Check a technician's sign-in and their effective permissions on a device *now*, or raise
    :class:`Refused`: 4001 not (or no longer) signed in, then :func:`view_access`'s refusals.
    Called when a viewer connects and again about every second."""
    at = at or utcnow()
    try:
        row, user = signed_in(sid, user_id, at)
        access = view_access(user_id, device_id, at)
        device, membership = access.device, access.membership
        grant = ViewerGrant(sid, user_id, membership.id, user.display_name, user.username,
                            device.id, device.account_id, device.display_name,
                            frozenset(access.permissions.granted))
        keep_signed_in(row, at)
        return grant
    finally:
        _done()


def signed_in(sid: str | None, user_id: int | None, at: datetime) -> tuple[UserSession, User]:
    """The technician's sign-in behind a viewer's websocket, while it lasts, or :class:`Refused`
    4001. Shared by device viewers and OnDemand viewers (``app.relay.ondemand``). Leaves the
    transaction open (callers end it)."""
    row = db.session.get(UserSession, sid) if sid else None
    if row is None or user_id is None or row.user_id != user_id:
        raise Refused(CloseCode.UNAUTHENTICATED, "Sign in to the Portal first.")
    user = db.session.get(User, user_id)
    if user is None or row.session_version != user.session_version \
            or at - row.last_seen_at > IDLE_TIMEOUT:
        raise Refused(CloseCode.UNAUTHENTICATED, "Your sign-in has ended: sign in again.")
    return row, user


def keep_signed_in(row: UserSession, at: datetime) -> None:
    """A console in use keeps its sign-in alive."""
    if at - row.last_seen_at > SEEN_EVERY:
        row.last_seen_at = at
        db.session.commit()


def _actor(grant: ViewerGrant) -> User | None:
    return db.session.get(User, grant.user_id)


# How a session ended, in words, by the close code of the viewer's connection.
ENDINGS = {
    CloseCode.NORMAL: "Closed by the technician.",
    CloseCode.GOING_AWAY: "The technician's page was closed.",
    CloseCode.UNAUTHENTICATED: "The technician's sign-in ended.",
    CloseCode.DEVICE_REVOKED: "The device was revoked or removed.",
    CloseCode.PERMISSION_WITHDRAWN: "The technician's permission was withdrawn.",
    CloseCode.IDLE: "The connection went silent.",
    CloseCode.SERVER_ERROR: "The relay failed.",
}


def ending(close_code: int | None, reason: str = "") -> str:
    """A sentence for how a session ended (the reason the relay gave, else by close code)."""
    if close_code in ENDINGS:
        return ENDINGS[close_code]
    if close_code in (None, 1005, 1006):
        return "The connection was lost."
    return reason or f"Closed with code {close_code}."


def session_started(grant: ViewerGrant, viewer_id: int) -> int:
    """Record and audit a viewer admitted to a device; the :class:`RemoteSession` id."""
    try:
        row = RemoteSession(account_id=grant.account_id, device_id=grant.device_id, user_id=grant.user_id,
                            technician=f"{grant.technician} ({grant.username})"[:320], viewer=viewer_id,
                            permissions=",".join(sorted(grant.keys)))
        db.session.add(row)
        db.session.flush()
        session_id = row.id
        record("session.started", grant.device_name,
               {"device_id": grant.device_id, "viewer": viewer_id, "session": session_id,
                "permissions": sorted(grant.keys)},
               account_id=grant.account_id, actor=_actor(grant), commit=False)
        db.session.commit()  # the row and the event together (no event when audit is off)
        return session_id
    finally:
        # The viewer's greenlet lives as long as the session: it must not keep a pooled
        # connection checked out (reading row.id after the commit would start a transaction).
        _done()


def session_ended(session_id: int, grant: ViewerGrant, viewer_id: int, used: set[str],
                  close_code: int | None, reason: str = "") -> None:
    """Close the session's record (duration, the permissions used, how it ended) and audit it."""
    try:
        ended = utcnow()
        row = db.session.get(RemoteSession, session_id)
        started = row.started_at if row is not None else ended
        if row is not None:
            row.ended_at, row.used = ended, ",".join(sorted(used))
            row.close_code, row.reason = close_code, reason[:200]
            db.session.commit()
        record("session.ended", grant.device_name,
               {"device_id": grant.device_id, "viewer": viewer_id, "session": session_id,
                "duration_seconds": round((ended - started).total_seconds()),
                "used": sorted(used), "close_code": close_code, "reason": reason[:200],
                "ended": ending(close_code, reason)},
               account_id=grant.account_id, actor=_actor(grant))
    finally:
        _done()


def recent_sessions(device_id: int, limit: int = 10) -> list[RemoteSession]:
    """The device's latest sessions, newest first (its details page)."""
    return list(db.session.scalars(select(RemoteSession).where(RemoteSession.device_id == device_id)
                                   .order_by(RemoteSession.started_at.desc(), RemoteSession.id.desc())
                                   .limit(limit)))


def audit_power(grant: ViewerGrant, action: int) -> None:
    record("session.power", grant.device_name,
           {"device_id": grant.device_id, "action": POWER_LABELS.get(action, str(action))},
           account_id=grant.account_id, actor=_actor(grant))

