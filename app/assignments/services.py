"""Role assignments and schedules: the rules for adding, changing and removing them.

Called by ``app.assignments.views`` (the Role assignments and Schedules pages) and by the
``tessera assign`` command; no Flask request in here. Every function takes the account id
and validates everything (names, the role, every group and schedule id must belong to that
account) before the first write, then commits once with its audit event:
``assignment.created``, ``assignment.updated``, ``assignment.removed``,
``assignment.schedule_set``, ``schedule.created``, ``schedule.updated``, ``schedule.removed``.

Decisions worth knowing:

* An OnDemand role has no device side: choosing device groups or Everything with it is an
  error (OnDemand sessions are not on enrolled devices).
* A side is either "Everyone"/"Everything" or a list of groups, never both.
* Removing a schedule keeps its assignments; they become unscheduled, i.e. they apply at all
  times while active. The confirmation page lists them first.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select

from app.assignments import schedule as schedules
from app.assignments.schedule import Rule
from app.audit.services import record
from app.common.queries import name_taken, of_account
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Assignment, Device, Group, GroupKind, Membership, Role, RoleType, Schedule, User, utcnow

USER_GROUP_KINDS = (GroupKind.user, GroupKind.ldap, GroupKind.saml)
MAX_NAME = 200
MAX_DESCRIPTION = 2000

STATUS_LABELS = {
    "active": "Active",
    "scheduled_on": "Active, due to schedule",
    "scheduled_off": "Not active, due to schedule",
    "inactive": "Not active",
    "disabled": "Disabled",
}


# ------------------------------------------------------------------------------ reading
def get_assignment(account_id: int, assignment_id: int) -> Assignment:
    return of_account(Assignment, account_id, assignment_id,
                      missing="There is no such role assignment in this account.")


def get_schedule(account_id: int, schedule_id: int) -> Schedule:
    return of_account(Schedule, account_id, schedule_id, missing="There is no such schedule in this account.")


def status(assignment: Assignment, at: datetime | None = None) -> tuple[str, str]:
    """(key, label) of an assignment's status at ``at`` (now), the schedule read in its own zone."""
    if assignment.disabled_reason:
        return "disabled", f"Disabled: {assignment.disabled_reason}"
    if not assignment.active:
        return "inactive", STATUS_LABELS["inactive"]
    if assignment.schedule is None:
        return "active", STATUS_LABELS["active"]
    key = "scheduled_on" if schedules.covers(assignment.schedule, at or utcnow()) else "scheduled_off"
    return key, STATUS_LABELS[key]


def assignments_query(account_id: int) -> Select:
    # The Role and Schedule entities come along so a page of rows needs no lazy loads.
    return (select(Assignment, Role, Schedule)
            .outerjoin(Role, Assignment.role_id == Role.id)
            .outerjoin(Schedule, Assignment.schedule_id == Schedule.id)
            .where(Assignment.account_id == account_id))


def assignment_columns() -> list:
    from app.common.listing import Column

    return [
        Column("name", "Name", Assignment.name, required=True),
        Column("active", "Active", Assignment.active, filter="bool"),
        Column("role", "Role", Role.name, blanks=True),
        Column("users", "User groups", None),
        Column("devices", "Device groups", None),
        Column("schedule", "Schedule", Schedule.name, blanks=True),
        Column("status", "Status", None),
        Column("description", "Description", Assignment.description, blanks=True, visible=False),
        Column("created", "Created", Assignment.created_at, filter="date", visible=False),
    ]


def group_names(assignments: list[Assignment]) -> dict[int, tuple[list[str], list[str]]]:
    """assignment id -> (user group names, device group names), for one page of the listing."""
    from app.models.assignments import assignment_device_group, assignment_user_group

    names: dict[int, tuple[list[str], list[str]]] = {a.id: ([], []) for a in assignments}
    if not names:
        return names
    for index, table in ((0, assignment_user_group), (1, assignment_device_group)):
        rows = db.session.execute(
            select(table.c.assignment_id, Group.name, Group.active)
            .join(Group, Group.id == table.c.group_id)
            .where(table.c.assignment_id.in_(list(names)))
            .order_by(func.lower(Group.name)))
        for assignment_id, name, active in rows:
            names[assignment_id][index].append(name if active else f"{name} (inactive)")
    return names


def schedules_query(account_id: int) -> Select:
    used = (select(func.count(Assignment.id)).where(Assignment.schedule_id == Schedule.id)
            .correlate(Schedule).scalar_subquery().label("used_by"))
    return select(Schedule, used).where(Schedule.account_id == account_id)


def schedule_columns() -> list:
    from app.common.listing import Column

    return [
        Column("name", "Name", Schedule.name, required=True),
        Column("when", "When", None),
        Column("timezone", "Timezone", Schedule.timezone),
        Column("used_by", "Used by", None, sort_expr=None),
        Column("now", "Now", None),
        Column("created", "Created", Schedule.created_at, filter="date", visible=False),
    ]


def schedule_usage(account_id: int, schedule_id: int) -> list[Assignment]:
    return list(db.session.scalars(select(Assignment).where(
        Assignment.account_id == account_id, Assignment.schedule_id == schedule_id).order_by(Assignment.name)))


def account_roles(account_id: int) -> list[Role]:
    return list(db.session.scalars(select(Role).where(Role.account_id == account_id).order_by(func.lower(Role.name))))


def account_groups(account_id: int, kinds) -> list[Group]:
    return list(db.session.scalars(select(Group).where(Group.account_id == account_id, Group.kind.in_(kinds))
                                   .order_by(func.lower(Group.name), Group.kind)))


def account_schedules(account_id: int) -> list[Schedule]:
    return list(db.session.scalars(select(Schedule).where(Schedule.account_id == account_id)
                                   .order_by(func.lower(Schedule.name))))


# ------------------------------------------------------------------------------ assignments
@dataclass
class AssignmentValues:
    """What the form (or the CLI) gives for an assignment."""

    name: str
    role_id: int | None
    active: bool = True
    everyone: bool = False
    user_group_ids: tuple[int, ...] = ()
    everything: bool = False
    device_group_ids: tuple[int, ...] = ()
    description: str = ""
    schedule_id: int | None = None


@dataclass
class _Checked:
    name: str
    role: Role
    user_groups: list[Group]
    device_groups: list[Group]
    schedule: Schedule | None
    description: str


def _groups(account_id: int, ids, kinds, what: str, field: str) -> list[Group]:
    ids = sorted({int(i) for i in ids})
    if not ids:
        return []
    found = list(db.session.scalars(select(Group).where(Group.id.in_(ids))))
    if len(found) != len(ids) or any(g.account_id != account_id for g in found):
        raise ValidationError(f"One of the chosen {what} does not exist in this account.", field=field)
    if any(g.kind not in kinds for g in found):
        raise ValidationError(f"Only {what} can be chosen here.", field=field)
    return sorted(found, key=lambda g: g.name.lower())


def _check_name(account_id: int, name: str, model, noun: str, exclude_id: int | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError(f"Give the {noun} a name.", field="name")
    if len(name) > MAX_NAME:
        raise ValidationError(f"The name can be at most {MAX_NAME} characters.", field="name")
    if name_taken(model, account_id, name, except_id=exclude_id):
        raise Conflict(f"A {noun} named \u201c{name}\u201d exists already in this account.", field="name")
    return name


def _check_assignment(account_id: int, values: AssignmentValues, exclude_id: int | None) -> _Checked:
    name = _check_name(account_id, values.name, Assignment, "role assignment", exclude_id)
    role = db.session.get(Role, values.role_id) if values.role_id else None
    if role is None or role.account_id != account_id:
        raise ValidationError("Choose a role of this account.", field="role")
    if values.everyone and values.user_group_ids:
        raise ValidationError("Choose Everyone or user groups, not both.", field="user_groups")
    user_groups = _groups(account_id, values.user_group_ids, USER_GROUP_KINDS, "user groups", "user_groups")
    if not values.everyone and not user_groups:
        raise ValidationError("Choose Everyone or at least one user group.", field="user_groups")
    if role.type is RoleType.ondemand:
        if values.everything or values.device_group_ids:
            raise ValidationError(
                f"\u201c{role.name}\u201d is an OnDemand role: it applies to OnDemand sessions, not to "
                "devices, so leave the device groups and Everything empty.", field="device_groups")
        device_groups = []
    else:
        if values.everything and values.device_group_ids:
            raise ValidationError("Choose Everything or device groups, not both.", field="device_groups")
        device_groups = _groups(account_id, values.device_group_ids, (GroupKind.device,), "device groups",
                                "device_groups")
        if not values.everything and not device_groups:
            raise ValidationError("Choose Everything or at least one device group.", field="device_groups")
    found_schedule = None
    if values.schedule_id:
        found_schedule = db.session.get(Schedule, values.schedule_id)
        if found_schedule is None or found_schedule.account_id != account_id:
            raise ValidationError("Choose a schedule of this account, or none.", field="schedule")
    description = (values.description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"The description can be at most {MAX_DESCRIPTION} characters.", field="description")
    return _Checked(name, role, user_groups, device_groups, found_schedule, description)


def _apply(assignment: Assignment, checked: _Checked, values: AssignmentValues) -> None:
    assignment.name = checked.name
    assignment.role = checked.role
    assignment.active = bool(values.active)
    assignment.everyone = bool(values.everyone)
    assignment.everything = bool(values.everything) and checked.role.type is not RoleType.ondemand
    assignment.user_groups = checked.user_groups
    assignment.device_groups = checked.device_groups
    assignment.schedule = checked.schedule
    assignment.description = checked.description


def _summary(assignment: Assignment) -> dict:
    return {
        "role": assignment.role.name if assignment.role else None,
        "active": assignment.active,
        "users": "Everyone" if assignment.everyone else [g.name for g in assignment.user_groups],
        "devices": ("Everything" if assignment.everything else [g.name for g in assignment.device_groups]),
        "schedule": assignment.schedule.name if assignment.schedule else None,
    }


def create_assignment(account_id: int, values: AssignmentValues, actor: User | None = None) -> Assignment:
    checked = _check_assignment(account_id, values, None)
    assignment = Assignment(account_id=account_id)
    _apply(assignment, checked, values)
    db.session.add(assignment)
    db.session.flush()
    record("assignment.created", assignment.name, _summary(assignment), account_id=account_id, actor=actor,
           commit=False)
    db.session.commit()
    return assignment


def update_assignment(account_id: int, assignment_id: int, values: AssignmentValues,
                      actor: User | None = None) -> Assignment:
    assignment = get_assignment(account_id, assignment_id)
    checked = _check_assignment(account_id, values, assignment.id)
    _apply(assignment, checked, values)
    # Saving it again is the administrator's way of saying "it is fine now".
    assignment.disabled_reason = ""
    assignment.modified_at = utcnow()
    record("assignment.updated", assignment.name, _summary(assignment), account_id=account_id, actor=actor,
           commit=False)
    db.session.commit()
    return assignment


def assignments_for(account_id: int, ids) -> list[Assignment]:
    """The assignments with these ids; NotFound (nothing done) when any is not in the account."""
    ids = sorted({int(i) for i in ids})
    if not ids:
        raise ValidationError("Select at least one role assignment first.")
    found = list(db.session.scalars(select(Assignment).where(Assignment.id.in_(ids)).order_by(Assignment.name)))
    if len(found) != len(ids) or any(a.account_id != account_id for a in found):
        raise NotFound("One of the selected role assignments does not exist in this account; nothing was changed.")
    return found


def remove_assignments(account_id: int, ids, actor: User | None = None) -> list[str]:
    targets = assignments_for(account_id, ids)
    names = [a.name for a in targets]
    for assignment in targets:
        db.session.delete(assignment)
    record("assignment.removed", ", ".join(names), {"count": len(names)}, account_id=account_id, actor=actor,
           commit=False)
    db.session.commit()
    return names


def set_schedule(account_id: int, ids, schedule_id: int | None, actor: User | None = None) -> list[str]:
    """Apply one schedule to several assignments (``None``: remove their schedule)."""
    targets = assignments_for(account_id, ids)
    chosen = get_schedule(account_id, schedule_id) if schedule_id else None
    for assignment in targets:
        assignment.schedule = chosen
        assignment.modified_at = utcnow()
    names = [a.name for a in targets]
    record("assignment.schedule_set", ", ".join(names), {"schedule": chosen.name if chosen else None},
           account_id=account_id, actor=actor, commit=False)
    db.session.commit()
    return names


# ------------------------------------------------------------------------------ schedules
def _apply_rule(target: Schedule, rule: Rule) -> None:
    target.start_date, target.end_date = rule.start_date, rule.end_date
    target.all_day, target.start_time, target.end_time = rule.all_day, rule.start_time, rule.end_time
    target.timezone, target.recurrence = rule.timezone, rule.recurrence
    target.daily_mode, target.interval = rule.daily_mode, rule.interval
    target.weekdays, target.month_day = list(rule.weekdays), rule.month_day


def _rule_details(name: str, rule: Rule) -> dict:
    return {"name": name, "when": schedules.describe(rule)}


def create_schedule(account_id: int, name: str, rule: Rule, actor: User | None = None) -> Schedule:
    name = _check_name(account_id, name, Schedule, "schedule", None)
    rule = schedules.validate(rule)
    created = Schedule(account_id=account_id, name=name)
    _apply_rule(created, rule)
    db.session.add(created)
    record("schedule.created", name, _rule_details(name, rule), account_id=account_id, actor=actor, commit=False)
    db.session.commit()
    return created


def update_schedule(account_id: int, schedule_id: int, name: str, rule: Rule, actor: User | None = None) -> Schedule:
    target = get_schedule(account_id, schedule_id)
    name = _check_name(account_id, name, Schedule, "schedule", target.id)
    rule = schedules.validate(rule)
    target.name = name
    _apply_rule(target, rule)
    record("schedule.updated", name, _rule_details(name, rule), account_id=account_id, actor=actor, commit=False)
    db.session.commit()
    return target


def remove_schedule(account_id: int, schedule_id: int, actor: User | None = None) -> list[str]:
    """Remove a schedule; its assignments stay, unscheduled. Returns their names."""
    target = get_schedule(account_id, schedule_id)
    users = schedule_usage(account_id, schedule_id)
    for assignment in users:
        assignment.schedule = None
        assignment.modified_at = utcnow()
    names = [a.name for a in users]
    db.session.delete(target)
    record("schedule.removed", target.name, {"unscheduled": names}, account_id=account_id, actor=actor,
           commit=False)
    db.session.commit()
    return names


# ------------------------------------------------------------------------------ look-ups by name
def find_role(account_id: int, name: str) -> Role:
    role = db.session.scalar(select(Role).where(Role.account_id == account_id,
                                                func.lower(Role.name) == (name or "").strip().lower()))
    if role is None:
        raise NotFound(f"No role named {name!r} in this account.")
    return role


def find_group(account_id: int, name: str, kinds) -> Group:
    found = list(db.session.scalars(select(Group).where(Group.account_id == account_id, Group.name == name,
                                                        Group.kind.in_(kinds))))
    if not found:
        what = "device group" if tuple(kinds) == (GroupKind.device,) else "user group"
        raise NotFound(f"No {what} named {name!r} in this account.")
    if len(found) > 1:
        raise ValidationError(f"Several groups are named {name!r} ("
                              + ", ".join(g.kind.label for g in found) + "); rename one first.")
    return found[0]


def find_schedule(account_id: int, name: str) -> Schedule:
    found = db.session.scalar(select(Schedule).where(Schedule.account_id == account_id, Schedule.name == name))
    if found is None:
        raise NotFound(f"No schedule named {name!r} in this account.")
    return found


def find_member(account_id: int, username: str) -> Membership:
    text = (username or "").strip().lower()
    membership = db.session.scalar(select(Membership).join(User, Membership.user_id == User.id).where(
        Membership.account_id == account_id, func.lower(User.username) == text))
    if membership is None:
        raise NotFound(f"No user {username!r} in this account.", field="user")
    return membership


def find_device(account_id: int, text: str) -> Device:
    """A device by hostname (or alias), or by ``#id`` when several share a name."""
    text = (text or "").strip()
    if text.startswith("#") and text[1:].isdigit():
        device = db.session.get(Device, int(text[1:]))
        if device is None or device.account_id != account_id:
            raise NotFound(f"No device {text} in this account.", field="device")
        return device
    found = list(db.session.scalars(select(Device).where(
        Device.account_id == account_id,
        (func.lower(Device.hostname) == text.lower()) | (func.lower(Device.alias) == text.lower()))
        .order_by(Device.id).limit(10)))
    if not found:
        raise NotFound(f"No device named {text!r} in this account.", field="device")
    if len(found) > 1:
        raise ValidationError(f"Several devices are named {text!r}: give one by id ("
                              + ", ".join(f"#{d.id}" for d in found) + ").", field="device")
    return found[0]


# ------------------------------------------------------------------------------ My devices
MAX_FAVOURITES_SHOWN = 50


def my_devices_query(membership: Membership, at: datetime, known=None) -> Select:
    """The My devices rows of ``membership`` at ``at``: ``(Device, favourite)`` for every device
    some applying assignment lets them reach (``permissions.reachable_devices``; ``known`` is
    its ``permissions.reach`` when the caller has it already)."""
    from sqlalchemy import and_

    from app.assignments.permissions import reachable_devices
    from app.models import DeviceFavourite

    favourite = DeviceFavourite.user_id.is_not(None).label("favourite")
    return (reachable_devices(membership, at, known).add_columns(favourite)
            .outerjoin(DeviceFavourite, and_(DeviceFavourite.device_id == Device.id,
                                             DeviceFavourite.user_id == membership.user_id)))


def my_favourites(membership: Membership, at: datetime, known=None, limit: int = MAX_FAVOURITES_SHOWN) -> list[Device]:
    """The user's favourite devices among those they may reach now, by name (shown first on
    My devices). Driven by the user's few favourites, so it costs the same at any fleet size."""
    from sqlalchemy import and_

    from app.assignments.permissions import reachable_devices
    from app.models import DeviceFavourite

    query = (reachable_devices(membership, at, known)
             .join(DeviceFavourite, and_(DeviceFavourite.device_id == Device.id,
                                         DeviceFavourite.user_id == membership.user_id))
             .order_by(Device.hostname, Device.id).limit(limit))
    return list(db.session.scalars(query))


def my_device_columns() -> list:
    """Columns of the My devices listing. It sorts by name by default: that order walks the
    account/hostname index and stops after a page, where "favourites first" would sort every
    reachable device (the favourites are shown above the listing instead)."""
    from sqlalchemy import case

    from app.common.listing import Column
    from app.models import DeviceFavourite

    return [
        Column("favourite", "Favourite", DeviceFavourite.user_id.is_not(None), filter="bool",
               sort_expr=(case((DeviceFavourite.user_id.is_(None), 1), else_=0), Device.hostname)),
        Column("name", "Device", Device.hostname, required=True),
        Column("alias", "Alias", Device.alias, blanks=True, visible=False),
        Column("online", "Online", Device.online, filter="bool"),
        Column("logged_in_user", "Logged-in user", Device.logged_in_user, blanks=True),
        Column("os", "Operating system", Device.os),
        Column("description", "Description", Device.description, blanks=True, visible=False),
        Column("action", "Remote control", None),
    ]
