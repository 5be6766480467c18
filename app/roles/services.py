"""Role rules, free of Flask's request: the four role types and what each may hold, the
predefined roles every account starts with, add / edit / copy / remove, and what happens to
role assignments when a role goes away.

Called by the roles views, ``app.users.services.create_account`` (through
:func:`create_predefined_roles`), the demo, and the applications services (whitelist roles).
Other areas read :data:`PERMISSION_LABELS` / :func:`permission_label` for display.

Predefined roles are read-only: they can be viewed and copied, never edited or removed, so
every account keeps the same known baseline (copy one to change it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update

from app.audit.services import record
from app.common.queries import name_taken, of_account
from app.errors import Conflict, Forbidden, NotFound, ValidationError
from app.extensions import db
from app.models import Account, Application, Group, GroupKind, Role, RoleType, utcnow
from app.models.assignments import Assignment
from app.models.roles import (
    CLIENT_TYPES,
    DEVICE_PERMISSIONS,
    ONDEMAND_PERMISSIONS,
    role_application,
    role_confirm_group,
)

PERMISSION_LABELS = {
    "remote_session": "Remote session",
    "view_screen": "View screen",
    "keyboard_mouse": "Keyboard and mouse",
    "lock_input": "Lock keyboard and mouse",
    "blank_screen": "Blank screen",
    "clipboard": "Clipboard",
    "execute_command": "Execute command",
    "file_transfer": "File transfer",
    "chat": "Chat",
    "remote_management": "Remote management",
    "tunnel": "Tunnel",
}
CLIENT_TYPE_LABELS = {"browser": "Control through browser", "viewer": "Installed viewer"}
TYPE_PERMISSIONS = {RoleType.device: DEVICE_PERMISSIONS, RoleType.ondemand: ONDEMAND_PERMISSIONS}

ROLE_REMOVED = "Role removed"
MAX_NAME = 200
MAX_DESCRIPTION = 2000


def permission_label(key: str) -> str:
    return PERMISSION_LABELS.get(key, key.replace("_", " ").capitalize())


def parse_type(text: str) -> RoleType:
    try:
        return RoleType(str(text).strip().lower())
    except ValueError:
        raise ValidationError("Choose a role type: Device, OnDemand, Confirm access or "
                              "Whitelisted applications.", field="type") from None


@dataclass
class RoleInput:
    """What the role form (or a caller) says a role should be. Only the parts that belong to
    ``type`` are kept; the rest is ignored."""

    name: str
    type: RoleType
    description: str = ""
    permissions: list[str] = field(default_factory=list)
    client_types: list[str] = field(default_factory=list)
    confirm_on_host: bool = False
    confirm_by_email: bool = False
    confirm_group_ids: list[int] = field(default_factory=list)
    except_when_locked: bool = False
    except_when_nobody_logged_in: bool = False
    email_only_when_host_unanswered: bool = False
    application_ids: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- predefined roles
PREDEFINED: tuple[RoleInput, ...] = (
    RoleInput("Administrator", RoleType.device,
              "Everything a remote session can do, from the browser or the installed viewer.",
              permissions=list(DEVICE_PERMISSIONS), client_types=list(CLIENT_TYPES)),
    RoleInput("Web Support", RoleType.device,
              "Everyday support from the browser only: see and control the screen, share the "
              "clipboard and chat.",
              permissions=["remote_session", "view_screen", "keyboard_mouse", "clipboard", "chat"],
              client_types=["browser"]),
    RoleInput("Full Access", RoleType.ondemand,
              "Everything an OnDemand session can do. Applies to OnDemand sessions only.",
              permissions=list(ONDEMAND_PERMISSIONS)),
    RoleInput("Confirm Access Required", RoleType.confirm,
              "The person at the device confirms each session before it starts, unless the "
              "computer is locked or nobody is logged in.",
              confirm_on_host=True, except_when_locked=True, except_when_nobody_logged_in=True),
)


def create_predefined_roles(account: Account) -> list[Role]:
    """Give ``account`` the predefined roles it does not have yet (by name). Flushes, never
    commits: ``create_account`` commits it with the account. Idempotent, so the demo can call
    it for an account made before roles existed."""
    existing = set(db.session.scalars(select(func.lower(Role.name)).where(Role.account_id == account.id)))
    made = []
    for spec in PREDEFINED:
        if spec.name.lower() in existing:
            continue
        role = Role(account_id=account.id, name=spec.name, type=spec.type,
                    description=spec.description, predefined=True, created_at=utcnow())
        _apply(role, spec, [], [])
        db.session.add(role)
        made.append(role)
    db.session.flush()
    return made


# --------------------------------------------------------------------------- reading
def get_role(account_id: int, role_id: int) -> Role:
    return of_account(Role, account_id, role_id, missing="There is no such role in this account.")


def find_role(account_id: int, name: str) -> Role:
    role = db.session.scalar(select(Role).where(Role.account_id == account_id,
                                                func.lower(Role.name) == name.strip().lower()))
    if role is None:
        raise NotFound(f"There is no role named {name.strip()!r} in this account.")
    return role


def assignment_count_expr():
    return (select(func.count(Assignment.id)).where(Assignment.role_id == Role.id)
            .scalar_subquery())


def roles_query(account_id: int):
    return select(Role, assignment_count_expr().label("assignments")).where(Role.account_id == account_id)


def role_columns() -> list:
    from app.common.listing import Column

    return [
        Column("name", "Name", Role.name, required=True),
        Column("type", "Type", Role.type, filter="choice",
               choices=[(t.value, t.label) for t in RoleType], coerce=RoleType),
        Column("description", "Description", Role.description, blanks=True),
        Column("predefined", "Predefined", Role.predefined, filter="bool"),
        Column("assignments", "Role assignments", assignment_count_expr(), filter=None),
        Column("created", "Created", Role.created_at, filter="date", visible=False),
        Column("modified", "Modified", Role.modified_at, filter="date", blanks=True, visible=False),
    ]


def role_assignments(role: Role) -> list[Assignment]:
    return list(db.session.scalars(
        select(Assignment).where(Assignment.role_id == role.id, Assignment.account_id == role.account_id)
        .order_by(func.lower(Assignment.name), Assignment.id)))


def confirm_group_choices(account_id: int) -> list[Group]:
    """Groups whose members may get confirm-by-email mails: every kind that holds users."""
    return list(db.session.scalars(
        select(Group).where(Group.account_id == account_id, Group.kind != GroupKind.device)
        .order_by(func.lower(Group.name), Group.id)))


def application_choices(account_id: int) -> list[Application]:
    return list(db.session.scalars(
        select(Application).where(Application.account_id == account_id)
        .order_by(func.lower(Application.name), Application.id)))


def input_from(role: Role) -> RoleInput:
    """A role as form input (edit and copy start from it)."""
    return RoleInput(
        name=role.name, type=role.type, description=role.description,
        permissions=list(role.permissions or []), client_types=list(role.client_types or []),
        confirm_on_host=role.confirm_on_host, confirm_by_email=role.confirm_by_email,
        confirm_group_ids=[g.id for g in role.confirm_groups],
        except_when_locked=role.except_when_locked,
        except_when_nobody_logged_in=role.except_when_nobody_logged_in,
        email_only_when_host_unanswered=role.email_only_when_host_unanswered,
        application_ids=[a.id for a in role.applications],
    )


def copy_name(account_id: int, name: str) -> str:
    """"Copy of X", or "Copy of X (2)", ... : the first name no role of the account has."""
    taken = set(db.session.scalars(select(func.lower(Role.name)).where(Role.account_id == account_id)))
    base = f"Copy of {name}"[:MAX_NAME - 5]
    candidate, n = base, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{base} ({n})"
    return candidate


def copy_input(role: Role) -> RoleInput:
    spec = input_from(role)
    spec.name = copy_name(role.account_id, role.name)
    return spec


# --------------------------------------------------------------------------- validating
def _validate(account_id: int, spec: RoleInput, except_id: int | None = None) -> tuple[list[Group], list[Application]]:
    """Every rule, checked before anything is written. Returns the resolved confirm groups
    and applications."""
    spec.name = " ".join((spec.name or "").split())
    spec.description = (spec.description or "").strip()
    if not spec.name:
        raise ValidationError("Enter a name for the role.", field="name")
    if len(spec.name) > MAX_NAME:
        raise ValidationError(f"The name is longer than {MAX_NAME} characters.", field="name")
    if len(spec.description) > MAX_DESCRIPTION:
        raise ValidationError(f"The description is longer than {MAX_DESCRIPTION} characters.",
                              field="description")
    if name_taken(Role, account_id, spec.name, except_id=except_id):
        raise Conflict(f"There is already a role named {spec.name!r}.", field="name")

    groups: list[Group] = []
    applications: list[Application] = []
    if spec.type in TYPE_PERMISSIONS:
        allowed = TYPE_PERMISSIONS[spec.type]
        wrong = [p for p in spec.permissions if p not in allowed]
        if wrong:
            raise ValidationError(f"{spec.type.label} roles cannot grant: " + ", ".join(wrong) + ".",
                                  field="permissions")
        if not spec.permissions:
            raise ValidationError(f"Choose at least one permission for the {spec.type.label} role.",
                                  field="permissions")
    if spec.type is RoleType.device:
        wrong = [c for c in spec.client_types if c not in CLIENT_TYPES]
        if wrong:
            raise ValidationError("Unknown client type: " + ", ".join(wrong) + ".", field="client_types")
        if not spec.client_types:
            raise ValidationError("Choose at least one client type: the browser, the installed "
                                  "viewer, or both.", field="client_types")
    if spec.type is RoleType.confirm:
        if not (spec.confirm_on_host or spec.confirm_by_email):
            raise ValidationError("Choose how access is confirmed: on the device, by email, or "
                                  "both.", field="confirm_on_host")
        if spec.confirm_by_email:
            ids = sorted({int(i) for i in spec.confirm_group_ids})
            if not ids:
                raise ValidationError("Choose at least one user group to receive the "
                                      "confirmation emails.", field="confirm_groups")
            groups = list(db.session.scalars(select(Group).where(
                Group.id.in_(ids), Group.account_id == account_id, Group.kind != GroupKind.device)))
            if len(groups) != len(ids):
                raise ValidationError("Some of the chosen groups are not user groups of this "
                                      "account.", field="confirm_groups")
    if spec.type is RoleType.whitelist:
        ids = sorted({int(i) for i in spec.application_ids})
        if not ids:
            raise ValidationError("Choose at least one application to whitelist.",
                                  field="applications")
        applications = list(db.session.scalars(select(Application).where(
            Application.id.in_(ids), Application.account_id == account_id)))
        if len(applications) != len(ids):
            raise ValidationError("Some of the chosen applications are not in this account.",
                                  field="applications")
    return groups, applications


def _apply(role: Role, spec: RoleInput, groups: list[Group], applications: list[Application]) -> None:
    """Write ``spec`` onto ``role``, clearing whatever does not belong to its type."""
    role.name, role.type, role.description = spec.name, spec.type, spec.description
    kind = spec.type
    allowed = TYPE_PERMISSIONS.get(kind, ())
    role.permissions = [p for p in allowed if p in spec.permissions]
    role.client_types = [c for c in CLIENT_TYPES if c in spec.client_types] if kind is RoleType.device else []
    role.confirm_on_host = kind is RoleType.confirm and spec.confirm_on_host
    role.confirm_by_email = kind is RoleType.confirm and spec.confirm_by_email
    role.confirm_groups = groups if role.confirm_by_email else []
    has_exceptions = kind in (RoleType.confirm, RoleType.whitelist)
    role.except_when_locked = has_exceptions and spec.except_when_locked
    role.except_when_nobody_logged_in = has_exceptions and spec.except_when_nobody_logged_in
    role.email_only_when_host_unanswered = role.confirm_by_email and spec.email_only_when_host_unanswered
    role.applications = applications if kind is RoleType.whitelist else []


def _summary(role: Role) -> dict:
    return {
        "type": role.type.value, "permissions": role.permissions, "client_types": role.client_types,
        "confirm_on_host": role.confirm_on_host, "confirm_by_email": role.confirm_by_email,
        "confirm_groups": sorted(g.name for g in role.confirm_groups),
        "except_when_locked": role.except_when_locked,
        "except_when_nobody_logged_in": role.except_when_nobody_logged_in,
        "email_only_when_host_unanswered": role.email_only_when_host_unanswered,
        "applications": sorted(a.name for a in role.applications),
    }


# --------------------------------------------------------------------------- writing
def create_role(account_id: int, spec: RoleInput, *, copied_from: Role | None = None) -> Role:
    groups, applications = _validate(account_id, spec)
    role = Role(account_id=account_id, predefined=False, created_at=utcnow())
    _apply(role, spec, groups, applications)
    db.session.add(role)
    db.session.flush()
    details = _summary(role)
    if copied_from is not None:
        details["copied_from"] = copied_from.name
    record("role.copied" if copied_from is not None else "role.created", role.name, details,
           account_id=account_id, commit=False)
    db.session.commit()
    return role


def update_role(account_id: int, role_id: int, spec: RoleInput) -> Role:
    """Edit a role. Predefined roles are read-only; a role used by assignments keeps its type
    (an assignment is built for its role's type: OnDemand ones have no device groups)."""
    role = get_role(account_id, role_id)
    if role.predefined:
        raise Forbidden(f"{role.name} is a predefined role: it can be viewed and copied, not "
                        "changed. Copy it to make your own version.")
    used = role_assignments(role)
    if spec.type is not role.type and used:
        raise Conflict(f"{role.name} is used by {len(used)} role assignment"
                       f"{'s' if len(used) != 1 else ''}, so its type cannot change. Copy it and "
                       "change the copy's type instead.", field="type")
    groups, applications = _validate(account_id, spec, except_id=role.id)
    before = _summary(role) | {"name": role.name, "description": role.description}
    _apply(role, spec, groups, applications)
    after = _summary(role) | {"name": role.name, "description": role.description}
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changes:
        role.modified_at = utcnow()
        record("role.updated", role.name, changes, account_id=account_id, commit=False)
    db.session.flush()
    if role.type is RoleType.whitelist:
        from app.applications.services import reconcile_whitelist_assignments

        reconcile_whitelist_assignments(account_id)
    db.session.commit()
    return role


def remove_role(account_id: int, role_id: int) -> tuple[str, list[str]]:
    """Remove a role. Its assignments are kept but switched off (``active=False``,
    ``disabled_reason`` "Role removed") so nobody gains or keeps access through them; the
    caller has shown :func:`role_assignments` first. Returns the role's name and the names of
    the assignments that were disabled."""
    role = get_role(account_id, role_id)
    if role.predefined:
        raise Forbidden(f"{role.name} is a predefined role and cannot be removed.")
    name = role.name
    assignments = role_assignments(role)
    now = utcnow()
    db.session.execute(
        update(Assignment).where(Assignment.role_id == role.id, Assignment.account_id == account_id)
        .values(active=False, disabled_reason=ROLE_REMOVED, role_id=None, modified_at=now)
        .execution_options(synchronize_session=False))
    # Spelled out: SQLite does not enforce the foreign keys' ON DELETE rules.
    for table in (role_application, role_confirm_group):
        db.session.execute(delete(table).where(table.c.role_id == role.id))
    db.session.execute(delete(Role).where(Role.id == role.id))
    disabled = [a.name for a in assignments]
    record("role.removed", name, {"type": role.type.value, "disabled_assignments": disabled},
           account_id=account_id, commit=False)
    db.session.commit()
    db.session.expire_all()
    return name, disabled
