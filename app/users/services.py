"""User and account rules, free of Flask's request: creating accounts and users, licence
counters and limits. Views and the CLI call these."""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from app.auth.passwords import check_password_rules, hash_password
from app.errors import Conflict, LimitReached, NotFound, ValidationError
from app.extensions import db
from app.models import Account, Membership, User, UserType, utcnow


def normalise_email(text: str) -> str:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as err:
        raise ValidationError(f"{text.strip() or 'An empty address'} is not a valid email address: {err}",
                              field="email") from None


def licence_counters(account: Account) -> dict[str, tuple[int, int]]:
    users = db.session.scalar(
        select(func.count(Membership.id)).where(Membership.account_id == account.id)
    ) or 0
    ondemand = db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.account_id == account.id, Membership.ondemand_enabled.is_(True)
        )
    ) or 0
    return {
        "users": (users, account.max_users),
        "ondemand_users": (ondemand, account.max_ondemand_users),
        "devices": (0, account.max_devices),
    }


def ensure_room(account: Account, new_users: int = 1, new_ondemand: int = 0) -> None:
    counters = licence_counters(account)
    used, limit = counters["users"]
    if used + new_users > limit:
        raise LimitReached(
            f"The licence allows {limit} users and {used} are in use: "
            f"there is no room for {new_users} more."
        )
    used, limit = counters["ondemand_users"]
    if new_ondemand and used + new_ondemand > limit:
        raise LimitReached(
            f"The licence allows {limit} OnDemand users and {used} are in use."
        )


def find_account(company: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.company == company))
    if account is None:
        raise NotFound(f"No account named {company!r}.")
    return account


def create_account(company: str, email: str, password: str, **settings) -> Account:
    """A new account with its owner (username = email). Used by the CLI and the demo."""
    company = company.strip()
    if not company:
        raise ValidationError("The company name is required.", field="company")
    if db.session.scalar(select(Account.id).where(Account.company == company)) is not None:
        raise Conflict(f"An account named {company!r} exists already.")
    email = normalise_email(email)
    check_password_rules(password)
    if db.session.scalar(select(User.id).where(User.username == email)) is not None:
        raise Conflict(f"A user {email} exists already.")
    account = Account(company=company, contact_email=email, **settings)
    owner = User(username=email, email=email, password_hash=hash_password(password))
    db.session.add_all([account, owner])
    db.session.flush()
    owner.primary_account_id = account.id
    db.session.add(Membership(user=owner, account=account, type=UserType.owner, ondemand_enabled=True))
    db.session.flush()
    account.owner_id = owner.id
    db.session.commit()
    return account


def create_user(
    account: Account,
    email: str,
    password: str | None,
    user_type: UserType,
    *,
    first_name: str = "",
    last_name: str = "",
    created_by: User | None = None,
    ondemand_enabled: bool = False,
    enabled: bool = True,
) -> Membership:
    """Add a user to ``account`` (or an existing user of another account, as a new membership)."""
    if user_type is UserType.owner:
        raise ValidationError("An account has exactly one owner; change it in account configuration.")
    email = normalise_email(email)
    if password is not None:
        check_password_rules(password)
    user = db.session.scalar(select(User).where(User.username == email))
    if user is not None and any(m.account_id == account.id for m in user.memberships):
        raise Conflict(f"{email} is already a user of this account.")
    ensure_room(account, 1, 1 if ondemand_enabled else 0)
    if user is None:
        user = User(
            username=email,
            email=email,
            first_name=first_name,
            last_name=last_name,
            password_hash=hash_password(password) if password is not None else None,
            primary_account_id=account.id,
        )
        db.session.add(user)
    membership = Membership(
        user=user,
        account=account,
        type=user_type,
        enabled=enabled,
        ondemand_enabled=ondemand_enabled,
        created_by_id=created_by.id if created_by else None,
        created_at=utcnow(),
    )
    db.session.add(membership)
    db.session.commit()
    return membership
