"""Test helpers for OnDemand sessions: a technician who may use them (OnDemand enabled on the
membership and an OnDemand role assignment for everyone in the account), sessions put into a
state or moved back in time (the controllable clock: rows written with past timestamps).

Used by tests/integration/test_ondemand_pages.py, test_ondemand_launcher.py,
test_authorization_matrix.py and tests/e2e/test_ondemand_pages_e2e.py; every function works on
whatever database the current app context is bound to (a test app, or a live server's).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import Account, Assignment, Membership, Role, RoleType, User, utcnow
from app.models.ondemand import OnDemandSession, OnDemandState
from app.ondemand import services

CONSENT = ("view_screen", "keyboard_mouse", "clipboard")


def membership_of(user: User, account_id: int) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                      Membership.account_id == account_id))


def ondemand_role_for_everyone(account_id: int, permissions=CONSENT) -> Assignment:
    """An OnDemand role and an active assignment of it to everyone in the account (made once
    per account)."""
    found = db.session.scalar(select(Assignment).join(Role, Assignment.role_id == Role.id).where(
        Assignment.account_id == account_id, Role.type == RoleType.ondemand, Assignment.everyone.is_(True)))
    if found is not None:
        return found
    role = Role(account_id=account_id, name=f"OnDemand {uuid.uuid4().hex[:6]}", type=RoleType.ondemand,
                permissions=list(permissions), client_types=[])
    db.session.add(role)
    db.session.flush()
    assignment = Assignment(account_id=account_id, name=f"OnDemand for everyone {role.id}", role_id=role.id,
                            everyone=True, everything=False, active=True)
    db.session.add(assignment)
    db.session.commit()
    return assignment


def enable_ondemand(user: User, account_id: int, with_role: bool = True) -> Membership:
    """Switch "OnDemand sessions" on for the user's membership; ``with_role`` also gives the
    account an OnDemand role assignment for everyone."""
    membership = membership_of(user, account_id)
    membership.ondemand_enabled = True
    db.session.commit()
    if with_role:
        ondemand_role_for_everyone(account_id)
    return membership


def new_session(user: User, account_id: int) -> OnDemandSession:
    """A fresh session (key not used yet) of a technician made able to create one."""
    return services.create_session(enable_ondemand(user, account_id))


def make_waiting(row: OnDemandSession, hostname="pc-visitor", os_name="Debian GNU/Linux 12", user="ann",
                 at: datetime | None = None) -> OnDemandSession:
    """What the relay does when the agent says HELLO (``services.connected``), ``at`` a time
    of the test's choosing."""
    services.connected(row, services.Visitor(hostname, os_name, user, "0.1.0"), "test-node", now=at or utcnow())
    return row


def make_active(row: OnDemandSession, granted=("view_screen",)) -> OnDemandSession:
    row.state, row.started_at, row.granted = OnDemandState.active, utcnow(), list(granted)
    db.session.commit()
    return row


def age(row: OnDemandSession, created: timedelta | None = None, connected: timedelta | None = None) -> None:
    """Move the session's clock back: created (and its key's expiry) or connected that long ago."""
    if created is not None:
        row.created_at = utcnow() - created
        row.expires_at = row.created_at + timedelta(hours=24)
    if connected is not None:
        row.connected_at = utcnow() - connected
    db.session.commit()


def account_of(user: User) -> Account:
    return db.session.get(Account, user.primary_account_id)
