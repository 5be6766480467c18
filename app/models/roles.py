"""Roles (what may be done) and the applications whitelisting roles restrict sessions to."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Boolean, Column, Enum, ForeignKey, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class RoleType(enum.Enum):
    device = "device"
    ondemand = "ondemand"
    confirm = "confirm"
    whitelist = "whitelist"

    @property
    def label(self) -> str:
        return {"device": "Device", "ondemand": "OnDemand", "confirm": "Confirm access",
                "whitelist": "Whitelisted applications"}[self.value]


# The permission keys a role of each type can grant (spec B4). Device roles also carry the
# client types (browser, viewer) the session may use.
DEVICE_PERMISSIONS = (
    "remote_session", "view_screen", "keyboard_mouse", "lock_input", "blank_screen", "clipboard",
    "execute_command", "file_transfer", "chat", "remote_management", "tunnel",
)
ONDEMAND_PERMISSIONS = ("view_screen", "keyboard_mouse", "clipboard", "file_transfer", "chat")
CLIENT_TYPES = ("browser", "viewer")


role_application = Table(
    "role_application",
    db.metadata,
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
    Column("application_id", ForeignKey("application.id", ondelete="CASCADE"), primary_key=True),
)

role_confirm_group = Table(
    "role_confirm_group",
    db.metadata,
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)


class Application(db.Model):
    __tablename__ = "application"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    path: Mapped[str] = mapped_column(String(1000), default="")
    executable: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Role(db.Model):
    __tablename__ = "role"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[RoleType] = mapped_column(Enum(RoleType, native_enum=False, length=12))
    description: Mapped[str] = mapped_column(Text, default="")
    predefined: Mapped[bool] = mapped_column(Boolean, default=False)
    # Device / OnDemand roles: granted permission keys and client types.
    permissions: Mapped[list] = mapped_column(JSON, default=list)
    client_types: Mapped[list] = mapped_column(JSON, default=list)
    # Confirm-access roles.
    confirm_on_host: Mapped[bool] = mapped_column(Boolean, default=False)
    confirm_by_email: Mapped[bool] = mapped_column(Boolean, default=False)
    # Exceptions for confirm and whitelist roles: skip when the computer is locked / nobody is
    # logged in; for email confirmation, "only when" the host cannot answer.
    except_when_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    except_when_nobody_logged_in: Mapped[bool] = mapped_column(Boolean, default=False)
    email_only_when_host_unanswered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)

    applications: Mapped[list[Application]] = relationship(secondary=role_application)
    confirm_groups: Mapped[list["Group"]] = relationship(secondary=role_confirm_group)  # noqa: F821
