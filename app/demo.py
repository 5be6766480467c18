"""The demo account: one user of every type, so a fresh install can be tried at once."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Account, UserType

COMPANY = "Demo Company"
OWNER = "owner@demo.example.com"
USERS = [
    ("admin@demo.example.com", UserType.administrator, "Ada", "Admin"),
    ("manager@demo.example.com", UserType.group_manager, "Max", "Manager"),
    ("user@demo.example.com", UserType.user, "Uma", "User"),
]


def _demo_ondemand(account: Account) -> None:
    """OnDemand sessions work out of the box: the predefined OnDemand role assigned to everyone
    (the users with OnDemand enabled — all demo users but Uma — may then create sessions)."""
    from app.assignments.services import AssignmentValues, create_assignment
    from app.models import Assignment, Role, RoleType

    name = "Demo: OnDemand sessions for everyone"
    if db.session.scalar(select(Assignment.id).where(Assignment.account_id == account.id,
                                                     Assignment.name == name)) is not None:
        return
    role = db.session.scalar(select(Role).where(Role.account_id == account.id, Role.type == RoleType.ondemand,
                                                Role.predefined.is_(True)).order_by(Role.id))
    if role is not None:
        create_assignment(account.id, AssignmentValues(name=name, role_id=role.id, everyone=True))


def seed_demo() -> list[str]:
    from app.users.services import create_account, create_user

    password = current_app.config["DEMO_PASSWORD"]
    account = db.session.scalar(select(Account).where(Account.company == COMPANY))
    if account is None:
        account = create_account(COMPANY, OWNER, password, timezone="Europe/Copenhagen")
        owner = account.owner
        owner.first_name, owner.last_name = "Olivia", "Owner"
        for email, user_type, first, last in USERS:
            create_user(account, email, password, user_type, first_name=first, last_name=last,
                        created_by=owner, ondemand_enabled=user_type is not UserType.user)
        db.session.commit()
    from app.roles.services import create_predefined_roles

    # An account made before roles existed gets its predefined roles too.
    if create_predefined_roles(account):
        db.session.commit()
    _demo_ondemand(account)
    lines = [f"Demo account {COMPANY!r}; every demo user's password is {password}"]
    lines.append(f"  {'Account owner':<22} {OWNER}")
    lines += [f"  {t.label:<22} {email}" for email, t, _, _ in USERS]
    return lines
