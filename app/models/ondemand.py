"""OnDemand sessions (spec D1–D3): a technician's one-time 9-digit key for a stranger's computer.

Life of a row (``app.ondemand.services`` writes it, the relay's ``app.relay.ondemand`` reads it):

* ``created`` — My sessions → "Create session" made it: ``key`` (9 digits from ``secrets``),
  ``link_token`` (the address of the public link page). The key is valid for
  :data:`KEY_LIFETIME` from ``created_at`` (``expires_at``) and for **one** connection.
* ``waiting`` — a ``tessera-ondemand`` agent connected with the key (``connected_at``; what it
  reported: hostname, os, user, agent version — attacker input, kept cleaned and escaped on
  output). It waits in the technician's queue for at most :data:`WAIT_LIMIT`.
* ``active`` — the technician pressed Start: the console opened, the person at the computer was
  asked, and ``granted`` holds the permission keys they allowed (``view_screen``,
  ``keyboard_mouse``, ``clipboard``).

A session that ends (closed by either side, rejected, dropped after waiting too long, its key
expired unused) is **deleted**: the key cannot be used again because it no longer exists, and
the audit log (``ondemand.*`` events) keeps the record.
"""
from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Optional

from sqlalchemy import JSON, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.models.users import User

KEY_DIGITS = 9
KEY_LIFETIME = timedelta(hours=24)   # an unused key expires
WAIT_LIMIT = timedelta(hours=1)      # a waiting session is dropped


class OnDemandState(enum.Enum):
    created = "created"
    waiting = "waiting"
    active = "active"

    @property
    def label(self) -> str:
        return {"created": "Key not used yet", "waiting": "Waiting", "active": "In session"}[self.value]


class OnDemandSession(db.Model):
    __tablename__ = "ondemand_session"
    __table_args__ = (Index("ix_ondemand_session_user_state", "user_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    # The technician who created it: their queue, and the only one who may start it.
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(KEY_DIGITS), unique=True)
    link_token: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[OnDemandState] = mapped_column(
        Enum(OnDemandState, native_enum=False, length=10), default=OnDemandState.created)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    emailed_to: Mapped[str] = mapped_column(String(320), default="")
    # Set when the agent connected (the key is spent from then on).
    connected_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, nullable=True)
    relay_node: Mapped[str] = mapped_column(String(100), default="")
    hostname: Mapped[str] = mapped_column(String(255), default="")
    os: Mapped[str] = mapped_column(String(200), default="")
    visitor_user: Mapped[str] = mapped_column(String(200), default="")
    agent_version: Mapped[str] = mapped_column(String(50), default="")
    # Permission keys the person at the computer allowed when the technician started.
    granted: Mapped[list] = mapped_column(JSON, default=list)

    user: Mapped["User"] = relationship()

    @property
    def grouped_key(self) -> str:
        """``123 456 789``: how the key is shown and read out."""
        return " ".join(self.key[i:i + 3] for i in range(0, len(self.key), 3))

    def wait_ends(self) -> Optional[datetime]:
        return self.connected_at + WAIT_LIMIT if self.connected_at is not None else None
