"""The dashboard's numbers, all counted in the database (never by loading rows into Python).

Called by ``app.dashboard.views.index``. Activity is read from the audit trail, so it needs
no bookkeeping of its own:

- active users  = distinct actors of ``sign_in.success`` events in the account,
- remote sessions = ``session.started`` events,
- enrolled devices = ``device.enrolled`` events.

The remote-control and device features record those actions when they land; until then the
counts are truthfully zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, distinct, exists, func, select

from app.extensions import db
from app.models import Account, AuditEvent, Membership, User, UserSession, utcnow

# A user counts as online while one of their browsers has been seen this recently (sessions
# refresh ``last_seen_at`` every minute while pages are used).
ONLINE_WINDOW = timedelta(minutes=5)
WEEK = timedelta(days=7)
EXPIRY_WARNING_DAYS = 15
TRIAL_EXPIRY_WARNING_DAYS = 7

ACTIVITY_ACTIONS = {
    "active_users": "sign_in.success",
    "remote_sessions": "session.started",
    "enrolled_devices": "device.enrolled",
}


@dataclass(frozen=True)
class UserStats:
    total: int
    online: int
    ldap: int
    saml: int

    @property
    def directory(self) -> int:
        return self.ldap + self.saml


@dataclass(frozen=True)
class Trend:
    this_week: int
    last_week: int

    @property
    def change(self) -> int:
        return self.this_week - self.last_week

    @property
    def words(self) -> str:
        if self.change == 0:
            return "the same as the week before"
        return f"{abs(self.change)} {'more' if self.change > 0 else 'fewer'} than the week before"


@dataclass(frozen=True)
class Expiry:
    at: datetime | None
    days_left: int | None
    warn: bool

    @property
    def expired(self) -> bool:
        return self.days_left is not None and self.days_left < 0


def user_stats(account_id: int, now: datetime | None = None) -> UserStats:
    now = now or utcnow()
    online = exists().where(
        UserSession.user_id == Membership.user_id,
        UserSession.last_seen_at >= now - ONLINE_WINDOW,
    )
    row = db.session.execute(
        select(
            func.count(Membership.id),
            func.count(case((online, 1))),
            func.count(case((User.source == "ldap", 1))),
            func.count(case((User.source == "saml", 1))),
        )
        .join(User, User.id == Membership.user_id)
        .where(Membership.account_id == account_id)
    ).one()
    return UserStats(total=row[0], online=row[1], ldap=row[2], saml=row[3])


@dataclass(frozen=True)
class DeviceStats:
    total: int  # enrolled and pending, not revoked: the devices that hold a licence seat
    online: int
    pending: int
    device_groups: int


def device_stats(account_id: int) -> DeviceStats:
    """Devices and device groups, counted in the database (two small aggregates)."""
    from app.models import Device, EnrolmentState, Group, GroupKind

    seated = Device.revoked == False  # noqa: E712  (SQL)
    row = db.session.execute(
        select(
            func.count(Device.id),
            func.count(case((and_(Device.online == True,  # noqa: E712
                                  Device.enrolment_state == EnrolmentState.enrolled), 1))),
            func.count(case((Device.enrolment_state == EnrolmentState.pending, 1))),
        ).where(Device.account_id == account_id, seated)
    ).one()
    groups = db.session.scalar(select(func.count(Group.id)).where(
        Group.account_id == account_id, Group.kind == GroupKind.device)) or 0
    return DeviceStats(total=row[0], online=row[1], pending=row[2], device_groups=groups)


def expiry(account: Account, now: datetime | None = None) -> Expiry:
    """The expiry date turns red within 15 days (7 for trial accounts), and once passed."""
    if account.expires_at is None:
        return Expiry(None, None, False)
    now = now or utcnow()
    days_left = (account.expires_at - now).days
    limit = TRIAL_EXPIRY_WARNING_DAYS if account.is_trial else EXPIRY_WARNING_DAYS
    return Expiry(account.expires_at, days_left, days_left <= limit)


def activity(account_id: int, now: datetime | None = None) -> dict[str, Trend]:
    """The last seven days against the seven before, for each of :data:`ACTIVITY_ACTIONS`."""
    now = now or utcnow()
    this_start, last_start = now - WEEK, now - 2 * WEEK
    in_this = and_(AuditEvent.at >= this_start, AuditEvent.at <= now)
    in_last = and_(AuditEvent.at >= last_start, AuditEvent.at < this_start)
    sign_in = AuditEvent.action == ACTIVITY_ACTIONS["active_users"]
    sessions = AuditEvent.action == ACTIVITY_ACTIONS["remote_sessions"]
    enrolled = AuditEvent.action == ACTIVITY_ACTIONS["enrolled_devices"]
    row = db.session.execute(
        select(
            func.count(distinct(case((and_(sign_in, in_this), AuditEvent.actor_id)))),
            func.count(distinct(case((and_(sign_in, in_last), AuditEvent.actor_id)))),
            func.count(case((and_(sessions, in_this), 1))),
            func.count(case((and_(sessions, in_last), 1))),
            func.count(case((and_(enrolled, in_this), 1))),
            func.count(case((and_(enrolled, in_last), 1))),
        ).where(
            AuditEvent.account_id == account_id,
            AuditEvent.at >= last_start,
            AuditEvent.action.in_(ACTIVITY_ACTIONS.values()),
        )
    ).one()
    return {
        "active_users": Trend(row[0], row[1]),
        "remote_sessions": Trend(row[2], row[3]),
        "enrolled_devices": Trend(row[4], row[5]),
    }


def recent_events(account_id: int, limit: int = 6) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.account_id == account_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ))
