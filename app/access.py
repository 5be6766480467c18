"""The one place that decides who may do what.

Views call :func:`require` (or use :func:`requires` as a decorator); templates call
:func:`can`. Nothing else compares user types. The matrix follows the portal's privilege table:
a *User* sees their devices and profile, a *Group manager* also manages users and devices and
reads roles and logs, an *Account administrator* also manages groups, roles, authentication and
deployment packages, and the *Account owner* also configures the account.
A permission in :data:`CONDITIONS` also needs something of the membership: My sessions (OnDemand)
is for members with "OnDemand sessions" enabled and an OnDemand role assignment applying now,
whatever their type.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import g
from flask_login import current_user

from app.errors import Forbidden
from app.models.accounts import Membership, UserType

U, GM, ADM, OWN = UserType.user, UserType.group_manager, UserType.administrator, UserType.owner

# permission -> the least user type that holds it
PERMISSIONS: dict[str, UserType] = {
    "portal.use": U,
    "profile.edit": U,
    "devices.mine": U,
    "sessions.mine": U,
    "dashboard.view": GM,
    "users.view": GM,
    "users.manage": GM,
    "devices.view": GM,
    "devices.manage": GM,
    "roles.view": GM,
    # Group managers read groups (they manage the users and devices in them); changing a
    # group or who is in it stays with administrators, since membership decides access.
    "groups.view": GM,
    "logs.view": GM,
    "logs.report": GM,
    "logs.delete_report": ADM,
    "groups.manage": ADM,
    "roles.manage": ADM,
    "devices.remove": ADM,
    "packages.manage": ADM,
    "applications.manage": ADM,
    "security.manage": ADM,
    "authentication.manage": ADM,
    "account.view": ADM,
    "account.configure": OWN,
}

def _ondemand_refusal(membership: Membership) -> str:
    """Why this membership may not use My sessions (OnDemand) now: the membership's "OnDemand
    sessions" switch (the account's OnDemand licence counts who has it on), then an OnDemand
    role assignment applying now. "" when it may."""
    if not membership.ondemand_enabled:
        return ("OnDemand sessions are not enabled for your user. An administrator of the account "
                "can enable them on your user's page.")
    from app.models import utcnow
    from app.ondemand.services import ondemand_refusal

    return ondemand_refusal(membership, utcnow())


# permission -> what else it needs of the membership, beyond its type: a function giving the
# sentence that says why not ("" when it may). The sidebar hides what it refuses, the view
# answers 403 with the sentence.
CONDITIONS: dict[str, Callable[[Membership], str]] = {
    "sessions.mine": _ondemand_refusal,
}


def current_membership() -> Membership | None:
    return g.get("membership")


def current_type() -> UserType | None:
    membership = current_membership()
    return membership.type if membership is not None and membership.enabled else None


def can(permission: str, membership: Membership | None = None) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    if membership is None:
        if not current_user.is_authenticated:
            return False
        membership = current_membership()
    if membership is None or not membership.enabled:
        return False
    if membership.type.rank < PERMISSIONS[permission].rank:
        return False
    condition = CONDITIONS.get(permission)
    return condition is None or not condition(membership)


def require(permission: str) -> None:
    if can(permission):
        return
    membership = current_membership() if current_user.is_authenticated else None
    condition = CONDITIONS.get(permission)
    if (condition is not None and membership is not None and membership.enabled
            and membership.type.rank >= PERMISSIONS[permission].rank):
        raise Forbidden(condition(membership) or "You do not have permission to do that.")
    raise Forbidden("You do not have permission to do that.")


def requires(permission: str):
    """View decorator: signed in, with a membership that holds ``permission``."""

    def decorate(view):
        view.required_permission = permission

        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                # Signed out: to the sign-in page (401 + HX-Redirect for HTMX), not a 403.
                from flask import current_app

                return current_app.login_manager.unauthorized()
            require(permission)
            return view(*args, **kwargs)

        wrapper.required_permission = permission
        return wrapper

    return decorate


def may_manage_member(actor: Membership | None, target: Membership) -> bool:
    """Edit/remove rules for users: same account, ``users.manage``, never a higher type, and
    the owner only through account configuration."""
    if actor is None or not actor.enabled or actor.account_id != target.account_id:
        return False
    if not can("users.manage", actor):
        return False
    if target.type is OWN:
        return False
    return actor.type.rank >= target.type.rank


def assignable_types(actor: Membership | None) -> list[UserType]:
    """The user types ``actor`` may give when inviting or editing: up to their own, never owner."""
    if actor is None or not can("users.manage", actor):
        return []
    return [t for t in UserType if t is not OWN and t.rank <= actor.type.rank]
