"""Groups: local user groups, device groups, and the directory kinds (LDAP, SAML) whose members
come from the directory. An inactive group grants nothing."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import Boolean, Column, Enum, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.accounts import Membership
    from app.models.devices import Device


class GroupKind(enum.Enum):
    user = "user"
    device = "device"
    ldap = "ldap"
    saml = "saml"

    @property
    def label(self) -> str:
        return {"user": "User group", "device": "Device group", "ldap": "LDAP user group",
                "saml": "SAML user group"}[self.value]

    @property
    def holds_users(self) -> bool:
        return self is not GroupKind.device


group_member = Table(
    "group_member",
    db.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("membership_id", ForeignKey("membership.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_group_member_membership_id", "membership_id"),
)

group_device = Table(
    "group_device",
    db.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", ForeignKey("device.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_group_device_device_id", "device_id"),
)


class Group(db.Model):
    __tablename__ = "groups"  # "group" is an SQL keyword
    __table_args__ = (UniqueConstraint("account_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    kind: Mapped[GroupKind] = mapped_column(Enum(GroupKind, native_enum=False, length=10))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Directory groups: the group's distinguished name (LDAP) or claim value (SAML).
    directory_ref: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    modified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)

    members: Mapped[list["Membership"]] = relationship(secondary=group_member)
    devices: Mapped[list["Device"]] = relationship(secondary=group_device, back_populates="groups")
