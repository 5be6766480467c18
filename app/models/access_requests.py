"""Confirm access (spec B8): a technician's request to start a session on a device whose
Confirm-access role asks the person at the host, or members of user groups by email, first.
The relay creates one per gated connection attempt and waits for the first answer."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class AccessRequestState(enum.Enum):
    pending = "pending"
    allowed = "allowed"
    denied = "denied"
    expired = "expired"      # nobody answered in time
    cancelled = "cancelled"  # the technician went away before an answer


class AccessRequest(db.Model):
    __tablename__ = "access_request"
    __table_args__ = (Index("ix_access_request_device_created", "device_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    # Kept as text: the request stays readable after the user or device is gone.
    technician: Mapped[str] = mapped_column(String(320), default="")
    username: Mapped[str] = mapped_column(String(320), default="")
    device_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[AccessRequestState] = mapped_column(
        Enum(AccessRequestState, native_enum=False, length=16),
        default=AccessRequestState.pending)
    # Who answered, and how: "host" (the prompt on the device) or "email" (a group member's link).
    answered_by: Mapped[str] = mapped_column(String(320), default="")
    answered_via: Mapped[str] = mapped_column(String(16), default="")
    answered_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
