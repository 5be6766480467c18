"""Typed SQLAlchemy models, one module per domain. Importing this package registers every
table on ``db.metadata`` (Alembic and ``db.create_all`` rely on that)."""
from app.models.access_requests import AccessRequest, AccessRequestState  # noqa: F401
from app.models.accounts import Account, Membership, UserType  # noqa: F401
from app.models.assignments import Assignment, Recurrence, Schedule  # noqa: F401
from app.models.audit import AuditEvent, AuditReport  # noqa: F401
from app.models.devices import Device, DeviceFavourite, EnrolmentState, Package  # noqa: F401
from app.models.groups import Group, GroupKind  # noqa: F401
from app.models.ondemand import OnDemandSession, OnDemandState  # noqa: F401
from app.models.remote_sessions import RemoteSession  # noqa: F401
from app.models.roles import Application, Role, RoleType  # noqa: F401
from app.models.users import (  # noqa: F401
    EmailCode,
    Invite,
    PasswordReset,
    RecoveryCode,
    User,
    UserSession,
)
from app.models.base import utcnow  # noqa: F401
