"""Deployment packages (how devices enrol), devices, and per-user favourites."""
from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow
from app.models.groups import group_device

if TYPE_CHECKING:
    from app.models.groups import Group


class EnrolmentState(enum.Enum):
    pending = "pending"
    enrolled = "enrolled"


def _new_link_token() -> str:
    return secrets.token_urlsafe(24)


class Package(db.Model):
    """A deployment package: its enrolment key lets agents enrol into the account."""

    __tablename__ = "package"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Shown on the details page and baked into installers, so kept readable; 128+ bits.
    enrollment_key: Mapped[str] = mapped_column(String(64), unique=True)
    valid_from: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    valid_to: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    max_devices: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    enrolment_state: Mapped[EnrolmentState] = mapped_column(
        Enum(EnrolmentState, native_enum=False, length=10), default=EnrolmentState.pending
    )
    device_group_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"), nullable=True
    )
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    # The shareable installer-link page's address (/downloads/link/<link_token>): a token of its
    # own, not the enrolment key, so a leaked link can be renewed (and the old one stop working)
    # without re-keying the devices already installed.
    link_token: Mapped[str] = mapped_column(String(64), unique=True, default=_new_link_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)

    device_group: Mapped[Optional["Group"]] = relationship()
    devices: Mapped[list["Device"]] = relationship(back_populates="package")


class Device(db.Model):
    """A machine whose agent enrolled with a package. Its token (only the sha256 is kept) is the
    agent's credential; a revoked package's devices stay listed as Revoked and never connect."""

    __tablename__ = "device"
    __table_args__ = (
        UniqueConstraint("account_id", "hardware_id"),
        Index("ix_device_account_hostname", "account_id", "hostname"),
        # Effective permissions / My devices (app/assignments/permissions.py): the devices that
        # can be reached at all, so counting a user's reachable devices is two index-only scans.
        Index("ix_device_reachable", "account_id", "id",
              postgresql_where=text("enrolment_state = 'enrolled' AND NOT revoked"),
              sqlite_where=text("enrolment_state = 'enrolled' AND NOT revoked")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    package_id: Mapped[Optional[int]] = mapped_column(ForeignKey("package.id", ondelete="SET NULL"), nullable=True, index=True)
    hardware_id: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hostname: Mapped[str] = mapped_column(String(255))
    alias: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    os: Mapped[str] = mapped_column(String(200), default="")
    agent_version: Mapped[str] = mapped_column(String(50), default="")
    logged_in_user: Mapped[str] = mapped_column(String(200), default="")
    enrolment_state: Mapped[EnrolmentState] = mapped_column(
        Enum(EnrolmentState, native_enum=False, length=10), default=EnrolmentState.pending
    )
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Presence, written by the relay (issue 5): online flag, since when, last seen, which node.
    online: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    online_since: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    last_seen_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    relay_node: Mapped[str] = mapped_column(String(100), default="")
    enrolled_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)

    package: Mapped[Optional[Package]] = relationship(back_populates="devices")
    groups: Mapped[list["Group"]] = relationship(secondary=group_device, back_populates="devices")

    @property
    def display_name(self) -> str:
        return self.alias or self.hostname

    @property
    def status(self) -> str:
        if self.revoked:
            return "revoked"
        if self.enrolment_state is EnrolmentState.pending:
            return "pending"
        return "online" if self.online else "offline"


class DeviceFavourite(db.Model):
    __tablename__ = "device_favourite"

    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
