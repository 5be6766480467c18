"""Recording audit events and keeping them for the retention period.

``record()`` is called by every service that changes something a customer would want to trace
(sign-ins, users, account and configuration changes; later sessions and transfers).
"""
from __future__ import annotations

import json
from datetime import timedelta

from flask import current_app, g, has_request_context, request
from flask_login import current_user
from sqlalchemy import delete, select

from app.extensions import db
from app.models import Account, AuditEvent, User, utcnow


def record(
    action: str,
    target: str = "",
    details: dict | str | None = None,
    *,
    account_id: int | None = None,
    actor: User | None = None,
    commit: bool = True,
) -> AuditEvent | None:
    """Add an audit event. The account's "audit logging" switch is honoured; events with no
    account (a sign-in attempt for an unknown name) are always kept."""
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user._get_current_object()
    if account_id is None and has_request_context():
        membership = g.get("membership")
        account_id = membership.account_id if membership is not None else None
    if account_id is not None:
        account = db.session.get(Account, account_id)
        if account is not None and not account.audit_enabled:
            return None
    if isinstance(details, dict):
        details = json.dumps(details, sort_keys=True, default=str)
    event = AuditEvent(
        at=utcnow(),
        account_id=account_id,
        actor_id=actor.id if actor is not None else None,
        actor=actor.username if actor is not None else "",
        ip=(request.remote_addr or "") if has_request_context() else "",
        action=action,
        target=target[:320],
        details=details or "",
    )
    db.session.add(event)
    if commit:
        db.session.commit()
    return event


def purge_expired(now=None, batch: int = 5000) -> int:
    """Delete events older than ``AUDIT_RETENTION_DAYS`` (183, six months), oldest first, in
    batches of ``batch`` with a commit after each, so a large backlog never holds one huge
    transaction. Returns how many were removed.

    Called by ``tessera audit purge`` and once a day by the server's housekeeping greenlet
    (``app/server.py``).
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=current_app.config["AUDIT_RETENTION_DAYS"])
    removed = 0
    while True:
        ids = db.session.scalars(
            select(AuditEvent.id).where(AuditEvent.at < cutoff)
            .order_by(AuditEvent.at, AuditEvent.id).limit(batch)
        ).all()
        if not ids:
            break
        db.session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))
        db.session.commit()
        removed += len(ids)
    return removed


# --- the Logs page ----------------------------------------------------------------------------

# How the Logs page names the actions it knows; anything else is shown as recorded.
ACTION_LABELS = {
    "sign_in.success": "Signed in",
    "sign_in.failed": "Sign-in failed",
    "sign_out": "Signed out",
    "sign_in.code_failed": "Sign-in code not accepted",
    "sign_in.recovery_code_used": "Recovery code used",
    "password.reset_requested": "Password reset requested",
    "password.reset_refused": "Password reset refused",
    "report.generated": "Log report generated",
    "report.downloaded": "Log report downloaded",
    "report.deleted": "Log report deleted",
    "session.started": "Remote session started",
    "session.ended": "Remote session ended",
    "session.power": "Power action requested",
    "confirm.requested": "Access confirmation requested",
    "confirm.allowed": "Access allowed by confirmation",
    "confirm.denied": "Access denied by confirmation",
    "confirm.expired": "Access confirmation expired",
    "confirm.cancelled": "Access confirmation cancelled",
    "confirm.skipped": "Access confirmation waived",
    "ondemand.created": "OnDemand session key created",
    "ondemand.emailed": "OnDemand session link emailed",
    "ondemand.key_tried": "OnDemand session key typed",
    "ondemand.key_throttled": "OnDemand session key refused: too many tried",
    "ondemand.connected": "OnDemand agent connected",
    "ondemand.consent": "OnDemand session answered at the computer",
    "ondemand.started": "OnDemand session started",
    "ondemand.ended": "OnDemand session ended",
    "ondemand.rejected": "OnDemand session rejected",
    "ondemand.expired": "OnDemand session expired",
}


def action_label(action: str) -> str:
    if action in ACTION_LABELS:
        return ACTION_LABELS[action]
    return action.replace("_", " ").replace(".", ": ").capitalize()


def details_text(details: str) -> str:
    """``details`` for reading: a JSON object becomes ``key: value, ...``; other text as is."""
    if not details or not details.startswith("{"):
        return details or ""
    try:
        data = json.loads(details)
    except ValueError:
        return details
    if not isinstance(data, dict):
        return details
    return ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in data.items())


def events_query(account_id: int):
    """The account's events for the Logs listing; never another account's."""
    return select(AuditEvent).where(AuditEvent.account_id == account_id)


def event_columns() -> list:
    from app.common.listing import Column

    return [
        Column("time", "Time", AuditEvent.at, filter="date", required=True),
        Column("actor", "User", AuditEvent.actor, blanks=True),
        Column("ip", "IP address", AuditEvent.ip, blanks=True),
        Column("action", "Action", AuditEvent.action),
        Column("target", "Target", AuditEvent.target, blanks=True),
        Column("details", "Details", AuditEvent.details, blanks=True),
    ]
