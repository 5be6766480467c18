"""Accounts (one company's tenancy) and memberships (a user's place and type in an account)."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.users import User


class UserType(enum.Enum):
    """The four user types, in rising order of privilege (portal §4.1)."""

    user = 1
    group_manager = 2
    administrator = 3
    owner = 4

    @property
    def rank(self) -> int:
        return self.value

    @property
    def label(self) -> str:
        return {
            "user": "User",
            "group_manager": "Group manager",
            "administrator": "Account administrator",
            "owner": "Account owner",
        }[self.name]

    @classmethod
    def parse(cls, text: str) -> "UserType":
        key = text.strip().lower().replace("-", "_").replace(" ", "_")
        if key == "account_administrator":
            key = "administrator"
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown user type {text!r}") from None


# What a click on a device does by default: the account's setting, overridable per membership.
REMOTE_ACTIONS = {
    "browser": "Control in the browser",
    "viewer": "Control with the installed viewer",
}


class MfaPolicy(enum.Enum):
    disabled = "disabled"
    per_user = "per_user"
    enforced = "enforced"


class Account(db.Model):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    company: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_email: Mapped[str] = mapped_column(String(320), default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    default_action: Mapped[str] = mapped_column(String(20), default="browser")
    mfa_policy: Mapped[MfaPolicy] = mapped_column(
        Enum(MfaPolicy, native_enum=False, length=20), default=MfaPolicy.per_user
    )
    audit_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_users: Mapped[int] = mapped_column(Integer, default=25)
    max_ondemand_users: Mapped[int] = mapped_column(Integer, default=5)
    max_devices: Mapped[int] = mapped_column(Integer, default=50)
    is_trial: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    owner_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("user.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )
    # Deferred: every page loads the account, only the logo route needs the bytes; pages test
    # ``logo_*_type`` to know whether a logo exists.
    logo_wide: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True, deferred=True)
    logo_wide_type: Mapped[str] = mapped_column(String(40), default="")
    logo_square: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True, deferred=True)
    logo_square_type: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[Optional["User"]] = relationship(foreign_keys=[owner_id], post_update=True)
    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.company!r}>"


class Membership(db.Model):
    """A user's place in one account: type, alias, flags. A user may belong to several."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("user_id", "account_id"),
        # The Users listing: an account's members newest first without sorting them all.
        Index("ix_membership_account_id_created_at", "account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    type: Mapped[UserType] = mapped_column(Enum(UserType, native_enum=False, length=20))
    alias: Mapped[str] = mapped_column(String(100), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    ondemand_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    default_action: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), nullable=True
    )
    modified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    modified_by_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), nullable=True
    )

    user: Mapped["User"] = relationship(back_populates="memberships", foreign_keys=[user_id])
    account: Mapped[Account] = relationship(back_populates="memberships")
    created_by: Mapped[Optional["User"]] = relationship(foreign_keys=[created_by_id])
    modified_by: Mapped[Optional["User"]] = relationship(foreign_keys=[modified_by_id])
