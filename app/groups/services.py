"""Group rules, free of Flask's request: creating, editing and removing groups, and who is in
them (memberships of the account for user groups, devices for device groups).

Called by the groups views, the Users listing's "Add to group" action, the invite and user
edit forms (``app.users.services``), the ``tessera create-group`` command and the devices
pages (:func:`attach_devices`). Directory groups (LDAP, SAML) get their members only from the
directory at sign-in, so nothing here adds or removes their members; only their status and
description change. An inactive group grants nothing (``effective_permissions`` reads
``Group.active``).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, update

from app.audit.services import record
from app.common.queries import name_taken, of_account
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Device, Group, GroupKind, Membership, Package, User, utcnow
from app.models.assignments import Assignment, assignment_device_group, assignment_user_group
from app.models.groups import group_device, group_member
from app.models.roles import Role, role_confirm_group

DIRECTORY_KINDS = (GroupKind.ldap, GroupKind.saml)
LOCAL_USER_KINDS = (GroupKind.user,)
MAX_NAME = 200
MAX_REF = 500
MAX_DESCRIPTION = 2000
MAX_SELECTION = 1000

DIRECTORY_REF_LABELS = {
    GroupKind.ldap: "Distinguished name",
    GroupKind.saml: "Claim value (group id)",
}


def parse_kind(text: str) -> GroupKind:
    try:
        return GroupKind(str(text).strip().lower())
    except ValueError:
        raise ValidationError("Choose a group kind: user, device, LDAP or SAML user group.",
                              field="kind") from None


# --------------------------------------------------------------------------- reading
def get_group(account_id: int, group_id: int) -> Group:
    """A group of ``account_id``; another account's group is not found."""
    return of_account(Group, account_id, group_id, missing="There is no such group in this account.")


def find_group(account_id: int, kind: GroupKind, name: str) -> Group:
    """The group called ``name`` (any case) of that kind: for the command line."""
    group = db.session.scalar(select(Group).where(
        Group.account_id == account_id, Group.kind == kind,
        func.lower(Group.name) == name.strip().lower()))
    if group is None:
        raise NotFound(f"There is no {kind.label.lower()} named {name.strip()!r} in this account.")
    return group


def member_count_expr():
    """Members of ``Group`` as a correlated count (listing column). Joined to the member rows
    so a link left behind by a removed user or device is never counted."""
    users = (select(func.count()).select_from(group_member)
             .join(Membership, Membership.id == group_member.c.membership_id)
             .where(group_member.c.group_id == Group.id).scalar_subquery())
    devices = (select(func.count()).select_from(group_device)
               .join(Device, Device.id == group_device.c.device_id)
               .where(group_device.c.group_id == Group.id).scalar_subquery())
    return users + devices


def groups_query(account_id: int):
    return select(Group, member_count_expr().label("members")).where(Group.account_id == account_id)


def group_columns() -> list:
    from app.common.listing import Column

    return [
        Column("name", "Name", Group.name, required=True),
        Column("kind", "Kind", Group.kind, filter="choice",
               choices=[(k.value, k.label) for k in GroupKind], coerce=GroupKind),
        Column("description", "Description", Group.description, blanks=True),
        Column("active", "Active", Group.active, filter="bool"),
        Column("members", "Members", member_count_expr(), filter=None),
        Column("created", "Created", Group.created_at, filter="date", visible=False),
        Column("modified", "Modified", Group.modified_at, filter="date", blanks=True, visible=False),
    ]


def user_members_query(group: Group):
    return (select(Membership, User).join(User, Membership.user_id == User.id)
            .join(group_member, group_member.c.membership_id == Membership.id)
            .where(group_member.c.group_id == group.id, Membership.account_id == group.account_id))


def device_members_query(group: Group):
    return (select(Device).join(group_device, group_device.c.device_id == Device.id)
            .where(group_device.c.group_id == group.id, Device.account_id == group.account_id))


def user_candidates_query(group: Group):
    """Members of the account not yet in ``group`` (the picker on the group's page)."""
    inside = select(group_member.c.membership_id).where(group_member.c.group_id == group.id)
    return (select(Membership, User).join(User, Membership.user_id == User.id)
            .where(Membership.account_id == group.account_id, Membership.id.not_in(inside)))


def device_candidates_query(group: Group):
    inside = select(group_device.c.device_id).where(group_device.c.group_id == group.id)
    return select(Device).where(Device.account_id == group.account_id, Device.id.not_in(inside))


def user_member_columns() -> list:
    from app.common.listing import Column

    return [
        Column("name", "Name", User.first_name + " " + User.last_name, required=True,
               sort_expr=(User.first_name, User.last_name)),
        Column("username", "Username", User.username),
        Column("enabled", "Enabled", Membership.enabled, filter="bool"),
    ]


def device_member_columns() -> list:
    from app.common.listing import Column

    return [
        Column("hostname", "Hostname", Device.hostname, required=True),
        Column("alias", "Alias", Device.alias, blanks=True),
        Column("os", "Operating system", Device.os, blanks=True),
        Column("logged_in_user", "Logged-in user", Device.logged_in_user, blanks=True, visible=False),
    ]


def user_group_choices(account_id: int, *, active_only: bool = True) -> list[Group]:
    """Local user groups (the only ones people are put in by hand), by name."""
    query = select(Group).where(Group.account_id == account_id, Group.kind.in_(LOCAL_USER_KINDS))
    if active_only:
        query = query.where(Group.active.is_(True))
    return list(db.session.scalars(query.order_by(func.lower(Group.name), Group.id)))


def groups_of_kind(account_id: int, kinds) -> list[Group]:
    return list(db.session.scalars(
        select(Group).where(Group.account_id == account_id, Group.kind.in_(list(kinds)))
        .order_by(func.lower(Group.name), Group.id)))


def groups_of_membership(membership: Membership) -> list[Group]:
    return list(db.session.scalars(
        select(Group).join(group_member, group_member.c.group_id == Group.id)
        .where(group_member.c.membership_id == membership.id, Group.account_id == membership.account_id)
        .order_by(func.lower(Group.name), Group.id)))


@dataclass
class GroupUsage:
    """What refers to a group (shown before it is removed)."""

    user_assignments: list[Assignment]
    device_assignments: list[Assignment]
    confirm_roles: list[Role]
    packages: list[Package]

    @property
    def empty(self) -> bool:
        return not (self.user_assignments or self.device_assignments or self.confirm_roles
                    or self.packages)


def group_usage(group: Group) -> GroupUsage:
    def assignments(table):
        return list(db.session.scalars(
            select(Assignment).join(table, table.c.assignment_id == Assignment.id)
            .where(table.c.group_id == group.id, Assignment.account_id == group.account_id)
            .order_by(Assignment.name)))

    return GroupUsage(
        user_assignments=assignments(assignment_user_group),
        device_assignments=assignments(assignment_device_group),
        confirm_roles=list(db.session.scalars(
            select(Role).join(role_confirm_group, role_confirm_group.c.role_id == Role.id)
            .where(role_confirm_group.c.group_id == group.id, Role.account_id == group.account_id)
            .order_by(Role.name))),
        packages=list(db.session.scalars(
            select(Package).where(Package.device_group_id == group.id,
                                  Package.account_id == group.account_id).order_by(Package.name))),
    )


# --------------------------------------------------------------------------- writing
def _clean(name: str, description: str, directory_ref: str, kind: GroupKind) -> tuple[str, str, str]:
    name = " ".join((name or "").split())
    description = (description or "").strip()
    directory_ref = (directory_ref or "").strip()
    if not name:
        raise ValidationError("Enter a name for the group.", field="name")
    if len(name) > MAX_NAME:
        raise ValidationError(f"The name is longer than {MAX_NAME} characters.", field="name")
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"The description is longer than {MAX_DESCRIPTION} characters.",
                              field="description")
    if kind in DIRECTORY_KINDS:
        if not directory_ref:
            raise ValidationError(f"Enter the group's {DIRECTORY_REF_LABELS[kind].lower()} in the "
                                  "directory.", field="directory_ref")
        if len(directory_ref) > MAX_REF:
            raise ValidationError(f"The {DIRECTORY_REF_LABELS[kind].lower()} is longer than "
                                  f"{MAX_REF} characters.", field="directory_ref")
    else:
        directory_ref = ""
    return name, description, directory_ref


def _ensure_unique(account_id: int, kind: GroupKind, name: str, except_id: int | None = None) -> None:
    if name_taken(Group, account_id, name, Group.kind == kind, except_id=except_id):
        raise Conflict(f"There is already a {kind.label.lower()} named {name!r}.", field="name")


def create_group(account_id: int, kind: GroupKind, name: str, *, description: str = "",
                 active: bool = True, directory_ref: str = "", created_by_id: int | None = None,
                 commit: bool = True) -> Group:
    name, description, directory_ref = _clean(name, description, directory_ref, kind)
    _ensure_unique(account_id, kind, name)
    group = Group(account_id=account_id, kind=kind, name=name, description=description,
                  active=active, directory_ref=directory_ref, created_by_id=created_by_id,
                  created_at=utcnow())
    db.session.add(group)
    db.session.flush()
    record("group.created", name, {"kind": kind.value, "active": active,
                                   "directory_ref": directory_ref}, account_id=account_id, commit=False)
    if commit:
        db.session.commit()
    return group


def update_group(account_id: int, group_id: int, *, name: str, description: str, active: bool,
                 directory_ref: str = "") -> Group:
    """Edit a group. Directory groups keep their name and directory reference: only their
    status and description change (the directory owns the rest)."""
    group = get_group(account_id, group_id)
    if group.kind in DIRECTORY_KINDS:
        name, directory_ref = group.name, group.directory_ref
    name, description, directory_ref = _clean(name, description, directory_ref, group.kind)
    _ensure_unique(account_id, group.kind, name, except_id=group.id)
    changes = {}
    for attr, value in (("name", name), ("description", description), ("active", active),
                        ("directory_ref", directory_ref)):
        old = getattr(group, attr)
        if old != value:
            changes[attr] = [old, value]
            setattr(group, attr, value)
    if changes:
        group.modified_at = utcnow()
        record("group.updated", group.name, changes, account_id=account_id, commit=False)
    db.session.commit()
    return group


def remove_group(account_id: int, group_id: int) -> str:
    """Remove a group. Its users and devices stay; assignments, confirm-by-email roles and
    packages that named it simply stop naming it. The link rows are deleted explicitly since
    SQLite does not enforce the foreign keys' ``ON DELETE`` rules."""
    group = get_group(account_id, group_id)
    name, kind = group.name, group.kind
    usage = group_usage(group)
    for table in (group_member, group_device, role_confirm_group, assignment_user_group,
                  assignment_device_group):
        db.session.execute(delete(table).where(table.c.group_id == group.id))
    db.session.execute(update(Package).where(Package.device_group_id == group.id)
                       .values(device_group_id=None))
    db.session.execute(delete(Group).where(Group.id == group.id))
    record("group.removed", name, {
        "kind": kind.value,
        "assignments": sorted({a.name for a in usage.user_assignments + usage.device_assignments}),
        "confirm_roles": [r.name for r in usage.confirm_roles],
        "packages": [p.name for p in usage.packages],
    }, account_id=account_id, commit=False)
    db.session.commit()
    return name


def _ids(values) -> list[int]:
    ids = sorted({int(v) for v in values})
    if len(ids) > MAX_SELECTION:
        raise ValidationError(f"Select at most {MAX_SELECTION} at a time.")
    return ids


def ensure_manual_members(group: Group, holds: str) -> None:
    if group.kind in DIRECTORY_KINDS:
        raise Conflict(f"{group.name} is an {group.kind.label}: its members come from the directory "
                       "at sign-in and cannot be added or removed here.")
    if holds == "users" and group.kind is not GroupKind.user:
        raise Conflict(f"{group.name} is a device group: add devices to it, not users.")
    if holds == "devices" and group.kind is not GroupKind.device:
        raise Conflict(f"{group.name} is a user group: add users to it, not devices.")


def memberships_of_users(account_id: int, user_ids: list[int]) -> list[Membership]:
    found = list(db.session.scalars(select(Membership).where(
        Membership.account_id == account_id, Membership.user_id.in_(user_ids))))
    if len(found) != len(user_ids):
        raise NotFound("Some of the selected users are not in this account; nothing was changed.")
    return found


def devices_by_ids(account_id: int, device_ids: list[int]) -> list[Device]:
    found = list(db.session.scalars(select(Device).where(
        Device.account_id == account_id, Device.id.in_(device_ids))))
    if len(found) != len(device_ids):
        raise NotFound("Some of the selected devices are not in this account; nothing was changed.")
    return found


def _add_links(table, column: str, group_id: int, ids: list[int]) -> int:
    present = set(db.session.scalars(select(table.c[column]).where(
        table.c.group_id == group_id, table.c[column].in_(ids))))
    new = [i for i in ids if i not in present]
    if new:
        db.session.execute(insert(table), [{"group_id": group_id, column: i} for i in new])
    return len(new)


@dataclass
class Attached:
    group: Group
    added: int
    already: int


def attach_users(group_id: int, user_ids, account_id: int, *, commit: bool = True) -> Attached:
    """Put the account's users ``user_ids`` (user ids, as the Users listing selects them) in
    a local user group. All or nothing: an id outside the account changes nothing."""
    group = get_group(account_id, group_id)
    ensure_manual_members(group, "users")
    ids = _ids(user_ids)
    if not ids:
        raise ValidationError("Select at least one user.")
    memberships = memberships_of_users(account_id, ids)
    added = _add_links(group_member, "membership_id", group.id, [m.id for m in memberships])
    if added:
        record("group.members_added", group.name,
               {"users": sorted(m.user.username for m in memberships)}, account_id=account_id,
               commit=False)
        group.modified_at = utcnow()
    if commit:
        db.session.commit()
    return Attached(group, added, len(ids) - added)


def attach_devices(group_id: int, device_ids, account_id: int, *, commit: bool = True) -> Attached:
    """Put the account's devices ``device_ids`` in a device group. All or nothing: a device
    of another account changes nothing. The devices pages call this for "Add to group"."""
    group = get_group(account_id, group_id)
    ensure_manual_members(group, "devices")
    ids = _ids(device_ids)
    if not ids:
        raise ValidationError("Select at least one device.")
    devices = devices_by_ids(account_id, ids)
    added = _add_links(group_device, "device_id", group.id, ids)
    if added:
        record("group.devices_added", group.name, {"devices": sorted(d.hostname for d in devices)},
               account_id=account_id, commit=False)
        group.modified_at = utcnow()
    if commit:
        db.session.commit()
    return Attached(group, added, len(ids) - added)


def detach_members(group_id: int, member_ids, account_id: int) -> int:
    """Take users (user ids) or devices (device ids), by the group's kind, out of a local
    group. The users and devices themselves stay."""
    group = get_group(account_id, group_id)
    ids = _ids(member_ids)
    if not ids:
        raise ValidationError("Select at least one member.")
    if group.kind is GroupKind.device:
        ensure_manual_members(group, "devices")
        devices = devices_by_ids(account_id, ids)
        result = db.session.execute(delete(group_device).where(
            group_device.c.group_id == group.id, group_device.c.device_id.in_(ids)))
        names = sorted(d.hostname for d in devices)
    else:
        ensure_manual_members(group, "users")
        memberships = memberships_of_users(account_id, ids)
        result = db.session.execute(delete(group_member).where(
            group_member.c.group_id == group.id,
            group_member.c.membership_id.in_([m.id for m in memberships])))
        names = sorted(m.user.username for m in memberships)
    if result.rowcount:
        group.modified_at = utcnow()
        record("group.members_removed", group.name, {"members": names}, account_id=account_id,
               commit=False)
    db.session.commit()
    return result.rowcount or 0


def resolve_user_groups(account_id: int, group_ids) -> list[Group]:
    """The active local user groups ``group_ids`` names (invite and user edit forms); any other
    id (another account's, a device group, an inactive group) is refused."""
    ids = sorted({int(i) for i in group_ids or []})
    if not ids:
        return []
    found = list(db.session.scalars(select(Group).where(
        Group.id.in_(ids), Group.account_id == account_id, Group.kind.in_(LOCAL_USER_KINDS),
        Group.active.is_(True))))
    if len(found) != len(ids):
        raise ValidationError("Some of the chosen groups are not active user groups of this "
                              "account.", field="groups")
    return found


def set_user_groups(membership: Membership, groups: list[Group]) -> dict | None:
    """Make ``membership``'s active local user groups exactly ``groups`` (already resolved by
    :func:`resolve_user_groups`). Memberships of inactive and directory groups are left alone:
    the form does not offer them. Returns the change for the audit record, or None."""
    offered = {g.id for g in user_group_choices(membership.account_id)}
    wanted = {g.id for g in groups}
    current = set(db.session.scalars(
        select(group_member.c.group_id).where(group_member.c.membership_id == membership.id)))
    add = wanted - current
    drop = (current & offered) - wanted
    if add:
        db.session.execute(insert(group_member),
                           [{"group_id": g, "membership_id": membership.id} for g in sorted(add)])
    if drop:
        db.session.execute(delete(group_member).where(
            group_member.c.membership_id == membership.id, group_member.c.group_id.in_(drop)))
    if not add and not drop:
        return None
    names = {g.id: g.name for g in groups_of_kind(membership.account_id, LOCAL_USER_KINDS)}
    return {"added": sorted(names[g] for g in add), "removed": sorted(names[g] for g in drop)}


def forget_memberships(membership_ids) -> None:
    """Delete the group links of memberships about to be deleted (SQLite keeps dangling rows
    otherwise, and could hand a reused id someone else's groups). Called by the users services."""
    ids = list(membership_ids)
    if ids:
        db.session.execute(delete(group_member).where(group_member.c.membership_id.in_(ids)))


def forget_devices(device_ids) -> None:
    """The same for devices about to be deleted (the devices services call it)."""
    ids = list(device_ids)
    if ids:
        db.session.execute(delete(group_device).where(group_device.c.device_id.in_(ids)))


# --------------------------------------------------------------------------- command line
def create_group_with_members(account_id: int, kind: GroupKind, name: str, members: list[str]) -> Group:
    """``tessera create-group``: a local user or device group with members named by email
    (user groups) or hostname (device groups). Every name is checked before anything is
    written; one unknown name creates nothing."""
    if kind not in (GroupKind.user, GroupKind.device):
        raise ValidationError("The command line creates user and device groups only.")
    wanted = [m.strip() for m in members if m and m.strip()]
    if kind is GroupKind.user:
        lowered = sorted({m.lower() for m in wanted})
        rows = db.session.execute(
            select(Membership.id, func.lower(User.username), func.lower(func.coalesce(User.email, "")))
            .join(User, Membership.user_id == User.id)
            .where(Membership.account_id == account_id,
                   (func.lower(User.username).in_(lowered)) | (func.lower(User.email).in_(lowered)))
        ).all()
        by_name = {}
        for membership_id, username, email in rows:
            by_name.setdefault(username, membership_id)
            if email:
                by_name.setdefault(email, membership_id)
        unknown = [m for m in wanted if m.lower() not in by_name]
        if unknown:
            raise NotFound("No user with the email " + ", ".join(unknown) + " in this account; "
                           "nothing was created.")
        ids = sorted({by_name[m.lower()] for m in wanted})
        table, column = group_member, "membership_id"
    else:
        lowered = sorted({m.lower() for m in wanted})
        rows = db.session.execute(select(Device.id, func.lower(Device.hostname)).where(
            Device.account_id == account_id, func.lower(Device.hostname).in_(lowered))).all()
        by_name: dict[str, list[int]] = {}
        for device_id, hostname in rows:
            by_name.setdefault(hostname, []).append(device_id)
        unknown = [m for m in wanted if m.lower() not in by_name]
        if unknown:
            raise NotFound("No device with the hostname " + ", ".join(unknown) + " in this "
                           "account; nothing was created.")
        # Hostnames are not unique: every device of that name joins.
        ids = sorted({i for m in wanted for i in by_name[m.lower()]})
        table, column = group_device, "device_id"
    group = create_group(account_id, kind, name, commit=False)
    if ids:
        db.session.execute(insert(table), [{"group_id": group.id, column: i} for i in ids])
    db.session.commit()
    return group
