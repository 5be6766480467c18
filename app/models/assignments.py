"""Role assignments (who gets which role on which devices) and the schedules that say when."""
from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Optional

from sqlalchemy import JSON, Boolean, Column, Date, Enum, ForeignKey, Integer, String, Table, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.groups import Group
    from app.models.roles import Role


class Recurrence(enum.Enum):
    none = "none"
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    yearly = "yearly"


class Schedule(db.Model):
    """When assignments apply. Times are wall-clock times in ``timezone`` (zoneinfo name).

    daily: ``daily_mode`` weekdays | weekends | every_n (``interval`` days);
    weekly: every ``interval`` weeks on ``weekdays`` (0 = Monday .. 6 = Sunday);
    monthly: every ``interval`` months on ``month_day`` (1-31) or the last day (``month_day`` 0);
    yearly: every year on the start date's day and month.
    """

    __tablename__ = "schedule"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[Optional[date]] = mapped_column(Date, nullable=True)
    all_day: Mapped[bool] = mapped_column(Boolean, default=True)
    start_time: Mapped[Optional[time]] = mapped_column(Time, nullable=True)
    end_time: Mapped[Optional[time]] = mapped_column(Time, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    recurrence: Mapped[Recurrence] = mapped_column(Enum(Recurrence, native_enum=False, length=10), default=Recurrence.none)
    daily_mode: Mapped[str] = mapped_column(String(10), default="every_n")
    interval: Mapped[int] = mapped_column(Integer, default=1)
    weekdays: Mapped[list] = mapped_column(JSON, default=list)
    month_day: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


assignment_user_group = Table(
    "assignment_user_group",
    db.metadata,
    Column("assignment_id", ForeignKey("assignment.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)

assignment_device_group = Table(
    "assignment_device_group",
    db.metadata,
    Column("assignment_id", ForeignKey("assignment.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)


class Assignment(db.Model):
    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    role_id: Mapped[Optional[int]] = mapped_column(ForeignKey("role.id", ondelete="SET NULL"), nullable=True, index=True)
    everyone: Mapped[bool] = mapped_column(Boolean, default=False)
    everything: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    schedule_id: Mapped[Optional[int]] = mapped_column(ForeignKey("schedule.id", ondelete="SET NULL"), nullable=True, index=True)
    # Why the system switched it off (role removed, every whitelisted application disabled).
    disabled_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)

    role: Mapped[Optional["Role"]] = relationship()
    schedule: Mapped[Optional[Schedule]] = relationship()
    user_groups: Mapped[list["Group"]] = relationship(secondary=assignment_user_group)
    device_groups: Mapped[list["Group"]] = relationship(secondary=assignment_device_group)
