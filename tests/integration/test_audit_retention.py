"""Audit retention: events older than six months go, oldest first, from the service, the
``tessera audit purge`` command and the server's daily housekeeping."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event, select

from app.audit.services import purge_expired
from app.models import AuditEvent, utcnow


def add_event(db, account, days_old, target, now=None):
    now = now or utcnow()
    event = AuditEvent(at=now - timedelta(days=days_old), account_id=account.id if account else None,
                       action="user.updated", target=target)
    db.session.add(event)
    db.session.commit()
    return event.id


def remaining_targets(db):
    return sorted(db.session.scalars(select(AuditEvent.target)))


def test_purge_removes_only_events_older_than_six_months(db, factory):
    account = factory.account("Acme")
    other = factory.account("Other")
    add_event(db, account, 200, "old@acme.example")
    add_event(db, other, 200, "old@other.example")
    add_event(db, None, 200, "old-unknown-user")
    add_event(db, account, 10, "recent@acme.example")
    add_event(db, other, 10, "recent@other.example")

    assert purge_expired() == 3

    assert remaining_targets(db) == ["recent@acme.example", "recent@other.example"]


def test_retention_boundary_is_183_days(app, db, factory):
    assert app.config["AUDIT_RETENTION_DAYS"] == 183
    account = factory.account("Acme")
    now = utcnow()
    add_event(db, account, 184, "184 days", now)
    add_event(db, account, 182, "182 days", now)

    purge_expired(now=now)

    assert remaining_targets(db) == ["182 days"]


def test_purge_works_oldest_first_in_batches(db, factory):
    account = factory.account("Acme")
    ids_by_age = {age: add_event(db, account, age, f"{age} days") for age in (190, 400, 250, 300, 10)}
    deleted_batches = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE FROM AUDIT_EVENT"):
            values = parameters.values() if isinstance(parameters, dict) else parameters
            deleted_batches.append(sorted(v for v in values if isinstance(v, int)))

    sa_event.listen(db.engine, "before_cursor_execute", remember)
    try:
        removed = purge_expired(batch=2)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", remember)

    assert removed == 4
    assert deleted_batches == [sorted([ids_by_age[400], ids_by_age[300]]),
                               sorted([ids_by_age[250], ids_by_age[190]])]
    assert remaining_targets(db) == ["10 days"]


def test_tessera_audit_purge_command(app, db, factory):
    account = factory.account("Acme")
    add_event(db, account, 200, "old")
    add_event(db, account, 10, "recent")

    result = app.test_cli_runner().invoke(args=["audit", "purge"])

    assert result.exit_code == 0, result.output
    assert "Purged 1 audit events" in result.output
    assert remaining_targets(db) == ["recent"]


def test_running_server_purges_once_a_day(app, db, factory, monkeypatch):
    server = pytest.importorskip("app.server")
    account = factory.account("Acme")
    add_event(db, account, 200, "old")
    add_event(db, account, 10, "recent")
    slept = []

    class StopHousekeeping(Exception):
        pass

    def sleep(seconds):
        slept.append(seconds)
        raise StopHousekeeping

    monkeypatch.setattr(server.gevent, "sleep", sleep)
    with pytest.raises(StopHousekeeping):
        server.housekeeping(app)

    assert slept == [24 * 3600]
    assert remaining_targets(db) == ["recent"]
