"""Remote control sessions: who watched or controlled which device, when, with what, and how
it ended. Written by the relay (``app.relay.services``), shown on a device's details page; the
audit log keeps its own ``session.started`` / ``session.ended`` events too."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import UTCDateTime, utcnow


class RemoteSession(db.Model):
    __tablename__ = "remote_session"
    __table_args__ = (Index("ix_remote_session_device_started", "device_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), nullable=True)
    # Kept as text so the record stays readable after the user is removed.
    technician: Mapped[str] = mapped_column(String(320), default="")
    viewer: Mapped[int] = mapped_column(Integer, default=0)  # the relay's viewer number
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    # Permission keys, comma-separated: what was granted when it started, and what was used.
    permissions: Mapped[str] = mapped_column(String(400), default="")
    used: Mapped[str] = mapped_column(String(400), default="")
    close_code: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(200), default="")

    @property
    def duration_seconds(self) -> int | None:
        if self.ended_at is None:
            return None
        return max(0, round((self.ended_at - self.started_at).total_seconds()))

    def keys(self, field: str) -> list[str]:
        value = getattr(self, field)
        return [key for key in value.split(",") if key] if value else []
