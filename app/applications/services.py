"""Applications for whitelisting roles (name, enabled, path, executable, description), and the
rule that ties them to role assignments: an assignment whose whitelist role has no enabled
application left is switched off (``disabled_reason`` :data:`ALL_DISABLED`), and switched on
again when one of its applications is enabled.

Called by the applications views and by ``app.roles.services.update_role`` (a whitelist role's
applications changed).
"""
from __future__ import annotations

from sqlalchemy import delete, func, select, update

from app.audit.services import record
from app.common.queries import name_taken, of_account
from app.errors import Conflict, ValidationError
from app.extensions import db
from app.models import Application, Role, RoleType, utcnow
from app.models.assignments import Assignment
from app.models.roles import role_application

ALL_DISABLED = "All whitelisted applications are disabled"
LIMITS = {"name": 200, "path": 1000, "executable": 255, "description": 2000}


def get_application(account_id: int, application_id: int) -> Application:
    return of_account(Application, account_id, application_id,
                      missing="There is no such application in this account.")


def role_count_expr():
    return (select(func.count()).select_from(role_application)
            .where(role_application.c.application_id == Application.id).scalar_subquery())


def applications_query(account_id: int):
    return select(Application, role_count_expr().label("roles")).where(Application.account_id == account_id)


def application_columns() -> list:
    from app.common.listing import Column

    return [
        Column("name", "Name", Application.name, required=True),
        Column("enabled", "Enabled", Application.enabled, filter="bool"),
        Column("executable", "Executable", Application.executable),
        Column("path", "Path", Application.path, blanks=True),
        Column("description", "Description", Application.description, blanks=True),
        Column("roles", "Roles", role_count_expr(), filter=None),
        Column("created", "Created", Application.created_at, filter="date", visible=False),
    ]


def roles_using(application: Application) -> list[Role]:
    return list(db.session.scalars(
        select(Role).join(role_application, role_application.c.role_id == Role.id)
        .where(role_application.c.application_id == application.id,
               Role.account_id == application.account_id)
        .order_by(func.lower(Role.name))))


def _clean(account_id: int, values: dict, except_id: int | None = None) -> dict:
    cleaned = {k: (values.get(k) or "").strip() for k in LIMITS}
    cleaned["name"] = " ".join(cleaned["name"].split())
    if not cleaned["name"]:
        raise ValidationError("Enter a name for the application.", field="name")
    if not cleaned["executable"]:
        raise ValidationError("Enter the executable's file name, for instance notepad.exe.",
                              field="executable")
    for key, limit in LIMITS.items():
        if len(cleaned[key]) > limit:
            raise ValidationError(f"The {key} is longer than {limit} characters.", field=key)
    if name_taken(Application, account_id, cleaned["name"], except_id=except_id):
        raise Conflict(f"There is already an application named {cleaned['name']!r}.", field="name")
    return cleaned


def create_application(account_id: int, *, name: str, executable: str, path: str = "",
                       description: str = "", enabled: bool = True) -> Application:
    cleaned = _clean(account_id, {"name": name, "executable": executable, "path": path,
                                  "description": description})
    application = Application(account_id=account_id, enabled=enabled, created_at=utcnow(), **cleaned)
    db.session.add(application)
    db.session.flush()
    record("application.created", application.name, cleaned | {"enabled": enabled},
           account_id=account_id, commit=False)
    db.session.commit()
    return application


def update_application(account_id: int, application_id: int, *, name: str, executable: str,
                       path: str, description: str, enabled: bool) -> tuple[Application, list[str], list[str]]:
    """Edit an application. Returns it with the names of the assignments this switched off
    and on (through their whitelist roles)."""
    application = get_application(account_id, application_id)
    cleaned = _clean(account_id, {"name": name, "executable": executable, "path": path,
                                  "description": description}, except_id=application.id)
    changes = {}
    for attr, value in [*cleaned.items(), ("enabled", enabled)]:
        old = getattr(application, attr)
        if old != value:
            changes[attr] = [old, value]
            setattr(application, attr, value)
    if changes:
        record("application.updated", application.name, changes, account_id=account_id, commit=False)
    db.session.flush()
    disabled, enabled_again = reconcile_whitelist_assignments(account_id)
    db.session.commit()
    return application, disabled, enabled_again


def remove_application(account_id: int, application_id: int) -> tuple[str, list[str]]:
    """Remove an application from the account and from every whitelist role; assignments
    left with no enabled application are switched off. Returns its name and those
    assignments' names."""
    application = get_application(account_id, application_id)
    name = application.name
    roles = [r.name for r in roles_using(application)]
    # Spelled out: SQLite does not enforce the foreign keys' ON DELETE rules.
    db.session.execute(delete(role_application).where(role_application.c.application_id == application.id))
    db.session.execute(delete(Application).where(Application.id == application.id))
    disabled, _ = reconcile_whitelist_assignments(account_id)
    record("application.removed", name, {"roles": roles, "disabled_assignments": disabled},
           account_id=account_id, commit=False)
    db.session.commit()
    db.session.expire_all()
    return name, disabled


def reconcile_whitelist_assignments(account_id: int) -> tuple[list[str], list[str]]:
    """Switch off the active assignments of every whitelist role with no enabled application,
    and switch back on the ones this rule switched off whose role has one again. Assignments
    someone switched off by hand (no reason, or another reason) are never switched on here.
    Does not commit. Returns the names switched off and on."""
    enabled_apps = (select(func.count()).select_from(role_application)
                    .join(Application, Application.id == role_application.c.application_id)
                    .where(role_application.c.role_id == Role.id, Application.enabled.is_(True))
                    .scalar_subquery())
    starved = select(Role.id).where(Role.account_id == account_id, Role.type == RoleType.whitelist,
                                    enabled_apps == 0)
    fed = select(Role.id).where(Role.account_id == account_id, Role.type == RoleType.whitelist,
                                enabled_apps > 0)
    to_disable = list(db.session.scalars(select(Assignment).where(
        Assignment.account_id == account_id, Assignment.active.is_(True),
        Assignment.role_id.in_(starved)).order_by(Assignment.name)))
    to_enable = list(db.session.scalars(select(Assignment).where(
        Assignment.account_id == account_id, Assignment.active.is_(False),
        Assignment.disabled_reason == ALL_DISABLED, Assignment.role_id.in_(fed)).order_by(Assignment.name)))
    now = utcnow()
    for assignment in to_disable:
        assignment.active, assignment.disabled_reason, assignment.modified_at = False, ALL_DISABLED, now
        record("assignment.disabled", assignment.name, {"reason": ALL_DISABLED},
               account_id=account_id, commit=False)
    for assignment in to_enable:
        assignment.active, assignment.disabled_reason, assignment.modified_at = True, "", now
        record("assignment.enabled", assignment.name,
               {"reason": "A whitelisted application was enabled again"},
               account_id=account_id, commit=False)
    db.session.flush()
    return [a.name for a in to_disable], [a.name for a in to_enable]
