"""The one place that decides who may do what.

Views call :func:`require` (or use :func:`requires` as a decorator); templates call
:func:`can`. Nothing else compares user types. The matrix follows the portal's privilege table:
a *User* sees their devices and profile, a *Group manager* also manages users and devices and
reads roles and logs, an *Account administrator* also manages groups, roles, authentication and
deployment packages, and the *Account owner* also configures the account.
A permission in :data:`SWITCHES` also needs a switch on the membership: My sessions (OnDemand)
is for members with "OnDemand sessions" enabled, whatever their type.
"""
from __future__ import annotations

from functools import wraps

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

# permission -> (the membership switch it also needs, the sentence when that switch is off).
# "OnDemand sessions" is such a switch: the account's OnDemand licence counts who has it on.
SWITCHES: dict[str, tuple[str, str]] = {
    "sessions.mine": ("ondemand_enabled", "OnDemand sessions are not enabled for your user. An "
                      "administrator of the account can enable them on your user's page."),
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
    switch = SWITCHES.get(permission)
    if switch is not None and not getattr(membership, switch[0]):
        return False
    return membership.type.rank >= PERMISSIONS[permission].rank


def require(permission: str) -> None:
    if not can(permission):
        membership = current_membership()
        switch = SWITCHES.get(permission)
        if (switch is not None and membership is not None and membership.enabled
                and membership.type.rank >= PERMISSIONS[permission].rank):
            raise Forbidden(switch[1])
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
