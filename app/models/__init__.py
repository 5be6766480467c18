"""Typed SQLAlchemy models, one module per domain. Importing this package registers every
table on ``db.metadata`` (Alembic and ``db.create_all`` rely on that)."""
from app.models.accounts import Account, Membership, UserType  # noqa: F401
from app.models.audit import AuditEvent, AuditReport  # noqa: F401
from app.models.users import (  # noqa: F401
    EmailCode,
    Invite,
    PasswordReset,
    RecoveryCode,
    User,
    UserSession,
)
from app.models.base import utcnow  # noqa: F401
