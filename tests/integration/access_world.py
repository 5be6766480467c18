"""Test helpers for the access model: roles, groups, devices, schedules and assignments made
straight as model rows (the Groups/Roles/Devices pages are other features), plus a naive
pure-Python oracle of the assignment rules for property tests.

Used by test_assignments*.py, test_check_permissions.py and test_my_devices.py.
"""
from __future__ import annotations

import secrets
from datetime import date, time

from sqlalchemy import select

from app.extensions import db
from app.models import (Account, Assignment, Device, DeviceFavourite, EnrolmentState, Group, GroupKind,
                        Membership, Recurrence, Role, RoleType, Schedule, User)

ALL_DEVICE = ["remote_session", "view_screen", "keyboard_mouse", "clipboard", "file_transfer", "chat"]


def membership_of(user: User, account: Account) -> Membership:
    return db.session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                      Membership.account_id == account.id))


def role(account: Account, name: str, type: RoleType = RoleType.device, permissions=None,
         client_types=("browser",), **kw) -> Role:
    made = Role(account_id=account.id, name=name, type=type,
                permissions=list(ALL_DEVICE if permissions is None else permissions),
                client_types=list(client_types if type is RoleType.device else ()), **kw)
    db.session.add(made)
    db.session.commit()
    return made


def group(account: Account, name: str, kind: GroupKind = GroupKind.user, members=(), devices=(),
          active: bool = True) -> Group:
    made = Group(account_id=account.id, name=name, kind=kind, active=active)
    made.members = list(members)
    made.devices = list(devices)
    db.session.add(made)
    db.session.commit()
    return made


def device(account: Account, hostname: str, state: EnrolmentState = EnrolmentState.enrolled,
           revoked: bool = False, **kw) -> Device:
    made = Device(account_id=account.id, hostname=hostname, hardware_id=secrets.token_hex(8),
                  token_hash=secrets.token_hex(32), enrolment_state=state, revoked=revoked, **kw)
    db.session.add(made)
    db.session.commit()
    return made


def schedule(account: Account, name: str, **kw) -> Schedule:
    values = dict(start_date=date(2024, 1, 1), timezone="UTC", all_day=True, recurrence=Recurrence.none,
                  interval=1, weekdays=[], month_day=1, daily_mode="every_n")
    values.update(kw)
    made = Schedule(account_id=account.id, name=name, **values)
    db.session.add(made)
    db.session.commit()
    return made


def office_hours(account: Account, name: str = "Office hours", zone: str = "Europe/Copenhagen") -> Schedule:
    return schedule(account, name, timezone=zone, all_day=False, start_time=time(9), end_time=time(17),
                    recurrence=Recurrence.daily, daily_mode="weekdays")


def assignment(account: Account, name: str, role: Role, user_groups=(), device_groups=(), everyone=False,
               everything=False, schedule: Schedule | None = None, active=True, disabled_reason="") -> Assignment:
    made = Assignment(account_id=account.id, name=name, role=role, everyone=everyone, everything=everything,
                      schedule=schedule, active=active, disabled_reason=disabled_reason)
    made.user_groups = list(user_groups)
    made.device_groups = list(device_groups)
    db.session.add(made)
    db.session.commit()
    return made


def favourite(user: User, dev: Device) -> None:
    db.session.add(DeviceFavourite(user_id=user.id, device_id=dev.id))
    db.session.commit()


def naive_permissions(membership: Membership, dev: Device, at) -> set[str]:
    """The rules of app/assignments/permissions.py written the slow, obvious way."""
    from app.assignments.schedule import covers

    if membership.account_id != dev.account_id or not membership.enabled:
        return set()
    if dev.revoked or dev.enrolment_state is not EnrolmentState.enrolled:
        return set()
    granted: set[str] = set()
    for a in db.session.scalars(select(Assignment).where(Assignment.account_id == dev.account_id)):
        if not a.active or a.disabled_reason or a.role is None or a.role.type is not RoleType.device:
            continue
        users_ok = a.everyone or any(g.active and g.kind is not GroupKind.device and membership in g.members
                                     for g in a.user_groups)
        devices_ok = a.everything or any(g.active and g.kind is GroupKind.device and dev in g.devices
                                         for g in a.device_groups)
        if users_ok and devices_ok and covers(a.schedule, at):
            granted |= set(a.role.permissions)
    return granted
