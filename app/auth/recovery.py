"""Recovery codes: sets of ten single-use codes that stand in for the emailed sign-in code.

Called by the recovery-codes page (``/profile/recovery-codes`` in ``app/auth/views.py``) to
make a set, and by the sign-in code step to spend one. Only argon2 hashes are stored, so a set
can be shown exactly once, when it is made; a new set deletes the old one.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from app.audit.services import record
from app.auth.passwords import hash_password, verify_password
from app.extensions import db
from app.models import RecoveryCode, User, utcnow

SET_SIZE = 10
# No 0/o, 1/l/i: a code copied from paper must read back the same.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS, GROUP_LENGTH = 3, 4
_SHAPE = re.compile(rf"^[{ALPHABET}]{{{GROUPS * GROUP_LENGTH}}}$")


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH))
    return "-".join(raw[i:i + GROUP_LENGTH] for i in range(0, len(raw), GROUP_LENGTH))


def normalise(text: str) -> str | None:
    """``' ABCD efgh-JKMN '`` -> ``'abcd-efgh-jkmn'``; ``None`` when it cannot be a code."""
    raw = re.sub(r"[\s-]", "", text or "").lower()
    if not _SHAPE.match(raw):
        return None
    return "-".join(raw[i:i + GROUP_LENGTH] for i in range(0, len(raw), GROUP_LENGTH))


def generate_set(user: User) -> list[str]:
    """Replace ``user``'s recovery codes with a fresh set and return it (the only time the
    codes exist in clear)."""
    codes = [new_code() for _ in range(SET_SIZE)]
    now = utcnow()
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=hash_password(code), created_at=now) for code in codes
    )
    record("recovery_codes.generated", user.username, {"codes": SET_SIZE}, actor=user, commit=False)
    db.session.commit()
    return codes


@dataclass(frozen=True)
class SetStatus:
    exists: bool
    unused: int
    created_at: datetime | None


def status(user: User) -> SetStatus:
    total, unused, created = db.session.execute(
        select(
            func.count(RecoveryCode.id),
            func.count(RecoveryCode.id).filter(RecoveryCode.used_at.is_(None)),
            func.max(RecoveryCode.created_at),
        ).where(RecoveryCode.user_id == user.id)
    ).one()
    return SetStatus(exists=total > 0, unused=unused, created_at=created)


def spend(user: User, text: str) -> bool:
    """Use one of ``user``'s unused codes. True when ``text`` matched one (now spent)."""
    code = normalise(text)
    if code is None:
        return False
    rows = db.session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).all()
    for row in rows:
        if verify_password(row.code_hash, code):
            # A concurrent request may have spent it first: only one UPDATE wins.
            won = db.session.execute(
                RecoveryCode.__table__.update()
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=utcnow())
            ).rowcount
            db.session.commit()
            return won == 1
    return False
