"""Effective permissions: what a user may do on a device at an instant, and why.

This is the ONE place the access rules live. Every page, the CLI, and the relay (issue 5, for
every message) ask here:

* :func:`effective_permissions` ``(user_or_membership, device, at)`` -> :class:`Permissions`:
  the granted permission keys (``app.models.roles.DEVICE_PERMISSIONS``) and client types, each
  with the assignments that grant it, plus the Confirm-access and Whitelisted-applications
  roles that apply (the relay and console enforce those);
* :func:`ondemand_permissions` ``(membership, at)``: the same for OnDemand sessions (no device);
* :func:`reachable_devices` ``(membership, at)`` -> a ``select(Device)`` for My devices (with
  :func:`reach` computed once per request when several queries need it);
* :func:`check_permissions` ``(membership, device, at)``: the Check permissions page and
  ``tessera check-permissions``: the effective permissions and, for every assignment of the
  account that does not apply, the reasons.

An assignment applies to (membership, device) at ``at`` when all of these hold:

1. the membership is enabled, the device is in the same account, enrolled and not revoked;
2. the assignment is active and was not disabled by the system (``disabled_reason`` empty);
3. its role exists and has the right type (Device for devices; Confirm access and
   Whitelisted applications roles ride along; OnDemand for OnDemand sessions, for
   memberships with OnDemand enabled);
4. user side: Everyone, or the membership is in one of its ACTIVE user groups (local, LDAP
   or SAML);
5. device side: Everything, or the device is in one of its ACTIVE device groups;
6. its schedule (if any) covers ``at`` (``app.assignments.schedule.covers``).

Rules 2-5 are SQL: EXISTS subqueries through ``assignment_user_group`` -> ``group_member`` and
``assignment_device_group`` -> ``group_device`` on their primary keys, so the cost does not
grow with the number of devices or users. Rule 6 is Python on the few matching assignments.
:func:`check_permissions` evaluates the same SQL expressions as columns instead of filters, so
the explanation can never disagree with the answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, false, or_, select, true

from app.assignments.schedule import covers
from app.extensions import db
from app.models import Assignment, Device, EnrolmentState, Group, GroupKind, Membership, Role, RoleType, Schedule, User
from app.models.assignments import assignment_device_group, assignment_user_group
from app.models.groups import group_device, group_member
from app.models.roles import CLIENT_TYPES, DEVICE_PERMISSIONS, ONDEMAND_PERMISSIONS

USER_KINDS = (GroupKind.user, GroupKind.ldap, GroupKind.saml)
DEVICE_SIDE_TYPES = (RoleType.device, RoleType.confirm, RoleType.whitelist)

PERMISSION_LABELS = {
    "remote_session": "Remote session", "view_screen": "View screen",
    "keyboard_mouse": "Keyboard and mouse", "lock_input": "Lock keyboard and mouse",
    "blank_screen": "Blank screen", "clipboard": "Clipboard", "execute_command": "Execute command",
    "file_transfer": "File transfer", "chat": "Chat", "remote_management": "Remote management",
    "tunnel": "Tunnel",
}
CLIENT_TYPE_LABELS = {"browser": "Browser", "viewer": "Installed viewer"}


@dataclass(frozen=True)
class Grant:
    """One assignment (and its role) that grants something."""

    assignment_id: int
    assignment: str
    role_id: int
    role: str

    def as_dict(self) -> dict:
        return {"assignment_id": self.assignment_id, "assignment": self.assignment,
                "role_id": self.role_id, "role": self.role}


@dataclass(frozen=True)
class AppliedRole:
    """A Confirm-access or Whitelisted-applications role that applies, with its assignment."""

    grant: Grant
    role: Role

    def as_dict(self) -> dict:
        data = self.grant.as_dict()
        role = self.role
        if role.type is RoleType.confirm:
            data.update(confirm_on_host=role.confirm_on_host, confirm_by_email=role.confirm_by_email,
                        email_groups=sorted(g.name for g in role.confirm_groups),
                        email_only_when_host_unanswered=role.email_only_when_host_unanswered)
        else:
            data["applications"] = sorted(a.name for a in role.applications if a.enabled)
        data.update(except_when_locked=role.except_when_locked,
                    except_when_nobody_logged_in=role.except_when_nobody_logged_in)
        return data


@dataclass
class Permissions:
    """The answer of :func:`effective_permissions` / :func:`ondemand_permissions`.

    ``granted`` and ``client_types`` map a key to the grants, in the canonical key order.
    ``refusal`` says why nothing can apply at all (empty when assignments were looked at).
    """

    at: datetime
    membership_id: int | None
    device_id: int | None
    granted: dict[str, list[Grant]] = field(default_factory=dict)
    client_types: dict[str, list[Grant]] = field(default_factory=dict)
    confirm: list[AppliedRole] = field(default_factory=list)
    whitelist: list[AppliedRole] = field(default_factory=list)
    refusal: str = ""

    def allows(self, permission: str) -> bool:
        return permission in self.granted

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.granted)

    @property
    def grants(self) -> list[Grant]:
        """Every distinct assignment that grants something, in name order."""
        seen = {g.assignment_id: g for grants in self.granted.values() for g in grants}
        return sorted(seen.values(), key=lambda g: g.assignment.lower())

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "granted": {key: [g.as_dict() for g in grants] for key, grants in self.granted.items()},
            "client_types": {key: [g.as_dict() for g in grants] for key, grants in self.client_types.items()},
            "confirm_access_roles": [r.as_dict() for r in self.confirm],
            "whitelist_roles": [r.as_dict() for r in self.whitelist],
            "refusal": self.refusal,
        }


# ------------------------------------------------------------------------------ SQL pieces
def user_side(membership_id: int):
    """Assignment matches the membership: Everyone, or member of one of its active user groups."""
    in_group = exists(
        select(1)
        .select_from(assignment_user_group)
        .join(group_member, and_(group_member.c.group_id == assignment_user_group.c.group_id,
                                 group_member.c.membership_id == membership_id))
        .join(Group, Group.id == assignment_user_group.c.group_id)
        .where(assignment_user_group.c.assignment_id == Assignment.id, Group.active == true(),
               Group.kind.in_(USER_KINDS))
    )
    return or_(Assignment.everyone == true(), in_group)


def device_side(device_id: int):
    """Assignment matches the device: Everything, or the device is in one of its active device groups."""
    in_group = exists(
        select(1)
        .select_from(assignment_device_group)
        .join(group_device, and_(group_device.c.group_id == assignment_device_group.c.group_id,
                                 group_device.c.device_id == device_id))
        .join(Group, Group.id == assignment_device_group.c.group_id)
        .where(assignment_device_group.c.assignment_id == Assignment.id, Group.active == true(),
               Group.kind == GroupKind.device)
    )
    return or_(Assignment.everything == true(), in_group)


def _in_inactive_user_group(membership_id: int):
    return exists(
        select(1).select_from(assignment_user_group)
        .join(group_member, and_(group_member.c.group_id == assignment_user_group.c.group_id,
                                 group_member.c.membership_id == membership_id))
        .join(Group, Group.id == assignment_user_group.c.group_id)
        .where(assignment_user_group.c.assignment_id == Assignment.id, Group.active == false())
    )


def _in_inactive_device_group(device_id: int):
    return exists(
        select(1).select_from(assignment_device_group)
        .join(group_device, and_(group_device.c.group_id == assignment_device_group.c.group_id,
                                 group_device.c.device_id == device_id))
        .join(Group, Group.id == assignment_device_group.c.group_id)
        .where(assignment_device_group.c.assignment_id == Assignment.id, Group.active == false())
    )


def _live(account_id: int):
    """Assignment is switched on and its role is of this account."""
    return and_(Assignment.account_id == account_id, Assignment.active == true(),
                Assignment.disabled_reason == "", Role.account_id == account_id)


def _candidates(account_id: int, conditions, types) -> list[tuple[Assignment, Role, Schedule | None]]:
    query = (
        select(Assignment, Role, Schedule)
        .join(Role, Assignment.role_id == Role.id)
        .outerjoin(Schedule, Assignment.schedule_id == Schedule.id)
        .where(_live(account_id), Role.type.in_(types), *conditions)
        .order_by(Assignment.name, Assignment.id)
    )
    return [tuple(row) for row in db.session.execute(query)]


# ------------------------------------------------------------------------------ the answers
def resolve_membership(user_or_membership: User | Membership, account_id: int) -> Membership | None:
    """A membership as is; a user's membership in ``account_id`` (``None`` when not a member)."""
    if isinstance(user_or_membership, Membership):
        return user_or_membership
    return db.session.scalar(select(Membership).where(Membership.user_id == user_or_membership.id,
                                                      Membership.account_id == account_id))


def device_refusal(membership: Membership | None, device: Device) -> str:
    """Why nothing can apply to this pair at all ("" when assignments decide)."""
    if membership is None or membership.account_id != device.account_id:
        return "The device belongs to another account."
    if not membership.enabled:
        return "The user is disabled in this account."
    if device.revoked:
        return "The device is revoked: its package was revoked, so it can never connect again."
    if device.enrolment_state is not EnrolmentState.enrolled:
        return "The device is pending: an administrator has to enroll it first."
    return ""


def _collect(result: Permissions, rows, at: datetime, keys: tuple[str, ...]) -> Permissions:
    granted: dict[str, list[Grant]] = {}
    clients: dict[str, list[Grant]] = {}
    for assignment, role, schedule in rows:
        if not covers(schedule, at):
            continue
        grant = Grant(assignment.id, assignment.name, role.id, role.name)
        if role.type is RoleType.confirm:
            result.confirm.append(AppliedRole(grant, role))
        elif role.type is RoleType.whitelist:
            result.whitelist.append(AppliedRole(grant, role))
        else:
            for key in role.permissions or ():
                if key in keys:
                    granted.setdefault(key, []).append(grant)
            for key in role.client_types or ():
                if key in CLIENT_TYPES and role.type is RoleType.device:
                    clients.setdefault(key, []).append(grant)
    result.granted = {key: granted[key] for key in keys if key in granted}
    result.client_types = {key: clients[key] for key in CLIENT_TYPES if key in clients}
    return result


def effective_permissions(user_or_membership: User | Membership, device: Device, at: datetime) -> Permissions:
    """What the user may do on ``device`` at the aware instant ``at``: the union over the
    assignments that apply (module docstring), with the grants of each key."""
    membership = resolve_membership(user_or_membership, device.account_id)
    result = Permissions(at, membership.id if membership else None, device.id)
    result.refusal = device_refusal(membership, device)
    if result.refusal:
        return result
    rows = _candidates(device.account_id, (user_side(membership.id), device_side(device.id)), DEVICE_SIDE_TYPES)
    return _collect(result, rows, at, DEVICE_PERMISSIONS)


def ondemand_permissions(membership: Membership, at: datetime) -> Permissions:
    """What the membership may do in an OnDemand session at ``at`` (OnDemand roles only; the
    membership needs OnDemand enabled)."""
    result = Permissions(at, membership.id, None)
    if not membership.enabled:
        result.refusal = "The user is disabled in this account."
    elif not membership.ondemand_enabled:
        result.refusal = "OnDemand sessions are not enabled for this user."
    if result.refusal:
        return result
    rows = _candidates(membership.account_id, (user_side(membership.id),), (RoleType.ondemand,))
    return _collect(result, rows, at, ONDEMAND_PERMISSIONS)


def reaching_assignments(membership: Membership, at: datetime) -> list[tuple[Assignment, Role, Schedule | None]]:
    """The Device-role assignments that give ``membership`` something on some device at ``at``."""
    if not membership.enabled:
        return []
    rows = _candidates(membership.account_id, (user_side(membership.id),), (RoleType.device,))
    return [row for row in rows if row[1].permissions and covers(row[2], at)]


@dataclass(frozen=True)
class Reach:
    """Which devices a membership reaches at an instant: all of the account's (``everything``)
    or those in ``group_ids`` (active device groups of its applying assignments)."""

    account_id: int
    everything: bool = False
    group_ids: tuple[int, ...] = ()

    @property
    def nothing(self) -> bool:
        return not self.everything and not self.group_ids


def reach(membership: Membership, at: datetime) -> Reach:
    """Two small queries (the applying assignments, their active device groups), whatever the
    number of devices. Compute it once per request and hand it to :func:`reachable_devices`."""
    rows = reaching_assignments(membership, at)
    if any(assignment.everything for assignment, _, _ in rows):
        return Reach(membership.account_id, everything=True)
    if not rows:
        return Reach(membership.account_id)
    group_ids = tuple(db.session.scalars(
        select(assignment_device_group.c.group_id).distinct()
        .join(Group, Group.id == assignment_device_group.c.group_id)
        .where(assignment_device_group.c.assignment_id.in_([a.id for a, _, _ in rows]),
               Group.active == true(), Group.kind == GroupKind.device)
        .order_by(assignment_device_group.c.group_id)))
    return Reach(membership.account_id, group_ids=group_ids)


def reachable_devices(membership: Membership, at: datetime, known: Reach | None = None) -> Select:
    """``select(Device)`` of the devices some applying assignment lets ``membership`` reach at
    ``at``: enrolled, not revoked, in the account, and (unless an assignment says Everything)
    in an active device group of one of those assignments. The caller adds order and paging.
    ``known`` is a :func:`reach` computed before for the same membership and instant.

    The filter is an EXISTS on ``group_device``'s primary key (group_id, device_id); counting
    merges it with the ``ix_device_reachable`` partial index, and a page ordered by hostname
    walks ``ix_device_account_hostname`` and stops after the page."""
    found = known or reach(membership, at)
    base = select(Device).where(Device.account_id == membership.account_id,
                                Device.enrolment_state == EnrolmentState.enrolled,
                                Device.revoked == false())
    if found.nothing:
        return base.where(false())
    if found.everything:
        return base
    return base.where(exists(select(1).select_from(group_device).where(
        group_device.c.device_id == Device.id, group_device.c.group_id.in_(found.group_ids))))


# ------------------------------------------------------------------------------ explaining
@dataclass
class AssignmentCheck:
    """One assignment of the account, and whether (or why not) it applies."""

    assignment: Assignment
    role: Role | None
    applies: bool
    reasons: list[str]

    def as_dict(self) -> dict:
        return {"assignment_id": self.assignment.id, "assignment": self.assignment.name,
                "role": self.role.name if self.role else None,
                "role_type": self.role.type.value if self.role else None,
                "applies": self.applies, "reasons": self.reasons}


@dataclass
class Check:
    permissions: Permissions
    assignments: list[AssignmentCheck]

    @property
    def summary(self) -> str:
        p = self.permissions
        if p.refusal:
            return p.refusal
        if p.granted:
            return f"{len(p.granted)} permission{'s' if len(p.granted) != 1 else ''} granted."
        if not self.assignments:
            return "The account has no role assignments."
        return "No assignment grants anything to this user on this device at that time."

    def as_dict(self) -> dict:
        data = self.permissions.as_dict()
        data["summary"] = self.summary
        data["assignments"] = [a.as_dict() for a in self.assignments]
        return data


def check_permissions(membership: Membership, device: Device, at: datetime) -> Check:
    """The effective permissions plus, for every assignment of the account, whether it applies
    and, if not, every reason (the same SQL conditions, read as columns)."""
    permissions = effective_permissions(membership, device, at)
    user_match = user_side(membership.id).label("user_match")
    device_match = device_side(device.id).label("device_match")
    rows = db.session.execute(
        select(Assignment, Role, Schedule, user_match, device_match,
               _in_inactive_user_group(membership.id).label("inactive_user_group"),
               _in_inactive_device_group(device.id).label("inactive_device_group"))
        .outerjoin(Role, and_(Assignment.role_id == Role.id, Role.account_id == Assignment.account_id))
        .outerjoin(Schedule, Assignment.schedule_id == Schedule.id)
        .where(Assignment.account_id == device.account_id)
        .order_by(Assignment.name, Assignment.id)
    ).all()
    applying = {g.assignment_id for grants in permissions.granted.values() for g in grants}
    applying |= {r.grant.assignment_id for r in permissions.confirm + permissions.whitelist}
    checks = []
    for row in rows:
        assignment, role, schedule = row.Assignment, row.Role, row.Schedule
        reasons = _reasons(row, permissions, at)
        applies = assignment.id in applying
        if applies:
            reasons = []
        elif not reasons:
            reasons = ["Its role grants no permission."]
        checks.append(AssignmentCheck(assignment, role, applies, reasons))
    return Check(permissions, checks)


def _reasons(row: Any, permissions: Permissions, at: datetime) -> list[str]:
    assignment, role, schedule = row.Assignment, row.Role, row.Schedule
    reasons = []
    if permissions.refusal:
        reasons.append(permissions.refusal)
    if assignment.disabled_reason:
        reasons.append(f"Disabled: {assignment.disabled_reason}")
    elif not assignment.active:
        reasons.append("The assignment is not active.")
    if role is None:
        reasons.append("It has no role (the role was removed).")
    elif role.type is RoleType.ondemand:
        reasons.append("Its role is an OnDemand role: it applies to OnDemand sessions, not to devices.")
    if not row.user_match:
        if row.inactive_user_group:
            reasons.append("The user is only in inactive user groups of this assignment.")
        else:
            reasons.append("The user is not in any of its user groups.")
    if role is None or role.type is not RoleType.ondemand:
        if not row.device_match:
            if row.inactive_device_group:
                reasons.append("The device is only in inactive device groups of this assignment.")
            else:
                reasons.append("The device is not in any of its device groups.")
    if schedule is not None and not covers(schedule, at):
        reasons.append(f"Outside its schedule \u201c{schedule.name}\u201d.")
    return reasons
