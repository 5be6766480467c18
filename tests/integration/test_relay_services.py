"""The relay's database chores at the scale of a busy node: the device check and the presence
touch take any number of connected devices (more ids than PostgreSQL's 65,535 bound parameters
allow in one statement)."""
from __future__ import annotations

from datetime import timedelta

from agents.common.protocol import CloseCode
from app.models import Device, utcnow
from app.relay.services import refused_devices, touch_agents
from tests.integration import access_world as w

MANY = 70_000


def test_the_device_check_takes_more_ids_than_one_statement_can_bind(db, factory):
    account = factory.account()
    kept, revoked = w.device(account, "kept-pc"), w.device(account, "revoked-pc", revoked=True)
    ids = list(range(10_000_000, 10_000_000 + MANY)) + [kept.id, revoked.id]
    refused = refused_devices(ids)
    assert kept.id not in refused
    assert refused[revoked.id].close_code == CloseCode.DEVICE_REVOKED
    assert len(refused) == MANY + 1, "every id that is not a device is refused as removed"


def test_presence_touch_takes_more_ids_than_one_statement_can_bind(db, factory):
    account = factory.account()
    first, last = w.device(account, "first-pc"), w.device(account, "last-pc")
    when = utcnow() - timedelta(minutes=3)
    touch_agents([first.id] + list(range(10_000_000, 10_000_000 + MANY)) + [last.id], now=when)
    db.session.expire_all()
    for device_id in (first.id, last.id):
        seen = db.session.get(Device, device_id).last_seen_at
        assert abs((seen.replace(tzinfo=None) - when.replace(tzinfo=None)).total_seconds()) < 1
