"""Deployment packages: creating, editing, revoking and removing them, their enrolment keys,
the Downloads listing, the Linux installer script and the shareable installer link.

Called by ``app/downloads/views.py``, by the ``tessera create-package`` command and by the
enrolment API (``app/devices/services.enrol`` asks :func:`why_not_usable`).

Dates: a package is valid from the start (00:00 UTC) of its "valid from" day through the end of
its "valid to" day. Both are stored as the UTC midnight that starts the day; the end test adds
one day.

The installer link page (``/downloads/link/<link_token>``) uses a token of its own, not the
enrolment key: the link can be renewed (the old address stops working at once) without
re-keying devices already installed. After its "I understand" step the page hands out a signed,
time-limited download address (:func:`link_download_ack`), so the script is not fetched past
the step by accident; the script itself carries the enrolment key, as every installer must.
"""
from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Select, and_, case, func, select, update
from sqlalchemy.exc import IntegrityError

from app.audit.services import record
from app.common.queries import of_account
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Account, Device, EnrolmentState, Group, GroupKind, Package, User, utcnow

KEY_BYTES = 24  # token_urlsafe(24): 192 bits, 32 characters
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_DEVICES_LIMIT = 1_000_000
DAY = timedelta(days=1)
LINK_ACK_MAX_AGE = 24 * 3600  # the download address the "I understand" step gives, in seconds

STATUS_LABELS = {
    "active": "Active",
    "disabled": "Disabled",
    "upcoming": "Not yet valid",
    "expired": "Expired",
    "revoked": "Revoked",
}
STATE_LABELS = {"pending": "Pending", "enrolled": "Enrolled"}

# Platforms on the details page; only Linux has an installer yet.
PLATFORMS = (
    ("linux", "Linux", "available"),
    ("windows", "Windows", "planned"),
    ("macos", "macOS", "planned"),
)


@dataclass
class PackageData:
    """What the add/edit form (or the CLI) gives; validated by :func:`create_package` and
    :func:`update_package` before anything is written."""

    name: str
    description: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    max_devices: int | None = None
    active: bool = True
    device_group_id: int | None = None
    enrolment_state: EnrolmentState = EnrolmentState.pending


def day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), timezone.utc) if day is not None else None


# --------------------------------------------------------------------------- status
def package_status(package: Package, now: datetime | None = None) -> str:
    now = now or utcnow()
    if package.revoked_at is not None:
        return "revoked"
    if not package.active:
        return "disabled"
    if package.valid_to is not None and package.valid_to + DAY <= now:
        return "expired"
    if package.valid_from is not None and package.valid_from > now:
        return "upcoming"
    return "active"


def why_not_usable(package: Package, now: datetime | None = None) -> str | None:
    """Why ``package`` cannot enrol a device now (None when it can)."""
    status = package_status(package, now)
    if status == "revoked":
        return "This deployment package was revoked; its enrolment key no longer works."
    if status == "disabled":
        return "This deployment package is disabled; new devices cannot enrol with it."
    if status == "expired":
        return f"This deployment package expired at the end of {package.valid_to:%Y-%m-%d} (UTC)."
    if status == "upcoming":
        return f"This deployment package is valid from {package.valid_from:%Y-%m-%d} (UTC)."
    return None


def status_expr(now: datetime | None = None):
    """:func:`package_status` as one SQL CASE, for the listing's column, filter and sort."""
    now = now or utcnow()
    return case(
        (Package.revoked_at.is_not(None), "revoked"),
        (Package.active == False, "disabled"),  # noqa: E712  (SQL)
        (Package.valid_to <= now - DAY, "expired"),
        (Package.valid_from > now, "upcoming"),
        else_="active",
    )


# --------------------------------------------------------------------------- reading
def get_package(account_id: int, package_id: int) -> Package:
    return of_account(Package, account_id, package_id,
                      missing="There is no such deployment package in this account.")


def find_by_link(link_token: str) -> Package:
    """The package behind a shareable installer link (public pages). Revoked: gone."""
    package = None
    if link_token and len(link_token) <= 64:
        package = db.session.scalar(select(Package).where(Package.link_token == link_token))
    if package is None or package.revoked_at is not None:
        raise NotFound("This installer link does not exist or no longer works. Ask your "
                       "administrator for a new one.")
    return package


def device_groups(account_id: int) -> list[Group]:
    """The account's device groups, the choices for "device group to join"."""
    return list(db.session.scalars(
        select(Group).where(Group.account_id == account_id, Group.kind == GroupKind.device)
        .order_by(Group.name, Group.id)))


def find_device_group(account_id: int, name: str) -> Group:
    group = db.session.scalar(select(Group).where(
        Group.account_id == account_id, Group.kind == GroupKind.device, Group.name == name.strip()))
    if group is None:
        raise NotFound(f"There is no device group named {name.strip()!r} in this account.")
    return group


def device_count(package_id: int) -> int:
    return db.session.scalar(select(func.count(Device.id)).where(Device.package_id == package_id)) or 0


# --------------------------------------------------------------------------- the listing
def _devices_subquery():
    return (select(func.count(Device.id)).where(Device.package_id == Package.id)
            .correlate(Package).scalar_subquery())


def packages_query(account_id: int, now: datetime | None = None) -> Select:
    return (select(Package, status_expr(now).label("status"), _devices_subquery().label("devices"))
            .where(Package.account_id == account_id))


def package_columns(now: datetime | None = None) -> list:
    from app.common.listing import Column

    now = now or utcnow()
    status = status_expr(now)
    rank = case({"active": 1, "upcoming": 2, "disabled": 3, "expired": 4, "revoked": 5},
                value=status, else_=6)
    matches = {
        "revoked": Package.revoked_at.is_not(None),
        "disabled": and_(Package.revoked_at.is_(None), Package.active == False),  # noqa: E712
        "expired": and_(Package.revoked_at.is_(None), Package.active == True,  # noqa: E712
                        Package.valid_to <= now - DAY),
        "upcoming": and_(Package.revoked_at.is_(None), Package.active == True,  # noqa: E712
                         (Package.valid_to.is_(None)) | (Package.valid_to > now - DAY),
                         Package.valid_from > now),
    }
    matches["active"] = and_(
        Package.revoked_at.is_(None), Package.active == True,  # noqa: E712
        (Package.valid_to.is_(None)) | (Package.valid_to > now - DAY),
        (Package.valid_from.is_(None)) | (Package.valid_from <= now))
    return [
        Column("name", "Name", Package.name, required=True),
        Column("state", "Enrollment state", Package.enrolment_state, filter="choice",
               choices=list(STATE_LABELS.items()), coerce=EnrolmentState.__getitem__),
        Column("valid_from", "Valid from", Package.valid_from, filter="date", blanks=True),
        Column("valid_to", "Valid to", Package.valid_to, filter="date", blanks=True),
        Column("devices", "Devices", None, sort_expr=_devices_subquery()),
        Column("status", "Status", status, filter="choice", sort_expr=rank,
               choices=list(STATUS_LABELS.items()), match=matches.__getitem__),
        Column("description", "Description", Package.description, visible=False, blanks=True),
        Column("created", "Created", Package.created_at, filter="date", visible=False),
    ]


# --------------------------------------------------------------------------- writing
def _clean(account_id: int, data: PackageData, package_id: int | None = None) -> tuple[str, str, Group | None]:
    """Every check of a package's fields, before anything is written."""
    name = (data.name or "").strip()
    if not name:
        raise ValidationError("Enter a name for the deployment package.", field="name")
    if len(name) > MAX_NAME:
        raise ValidationError(f"The name is longer than {MAX_NAME} characters.", field="name")
    description = (data.description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"The description is longer than {MAX_DESCRIPTION} characters.",
                              field="description")
    if data.valid_from and data.valid_to and data.valid_from > data.valid_to:
        raise ValidationError("\u201cValid to\u201d is before \u201cvalid from\u201d: choose an end "
                              "date on or after the start date.", field="valid_to")
    if data.max_devices is not None and not 1 <= data.max_devices <= MAX_DEVICES_LIMIT:
        raise ValidationError(f"The number of devices must be between 1 and {MAX_DEVICES_LIMIT:,} "
                              "(or empty for no limit).", field="max_devices")
    if not isinstance(data.enrolment_state, EnrolmentState):
        raise ValidationError("Choose Pending or Enrolled.", field="enrolment_state")
    group = None
    if data.device_group_id is not None:
        group = db.session.get(Group, data.device_group_id)
        if group is None or group.account_id != account_id or group.kind is not GroupKind.device:
            raise ValidationError("Choose a device group of this account (or none).",
                                  field="device_group_id")
    clash = select(Package.id).where(Package.account_id == account_id, Package.name == name)
    if package_id is not None:
        clash = clash.where(Package.id != package_id)
    if db.session.scalar(clash) is not None:
        raise Conflict(f"A deployment package named {name!r} exists already.", field="name")
    return name, description, group


def _new_key() -> str:
    """A new enrolment key. Never one starting with "-": it is typed after ``--enroll-key`` on a
    command line, where argparse would take it for an option (one key in 64 did)."""
    while True:
        key = secrets.token_urlsafe(KEY_BYTES)
        if key.startswith("-"):
            continue
        if db.session.scalar(select(Package.id).where(Package.enrollment_key == key)) is None:
            return key


def _summary(package: Package) -> dict:
    return {
        "enrolment_state": package.enrolment_state.value,
        "active": package.active,
        "valid_from": package.valid_from.date().isoformat() if package.valid_from else None,
        "valid_to": package.valid_to.date().isoformat() if package.valid_to else None,
        "max_devices": package.max_devices,
        "device_group": package.device_group.name if package.device_group else None,
    }


def create_package(account_id: int, data: PackageData, *, created_by: User | None = None) -> Package:
    name, description, group = _clean(account_id, data)
    package = Package(
        account_id=account_id, name=name, description=description, enrollment_key=_new_key(),
        valid_from=day_start(data.valid_from), valid_to=day_start(data.valid_to),
        max_devices=data.max_devices, active=data.active, enrolment_state=data.enrolment_state,
        device_group=group, created_by_id=created_by.id if created_by else None, created_at=utcnow(),
    )
    db.session.add(package)
    try:
        db.session.flush()
    except IntegrityError:  # the same name saved by someone else a moment ago
        db.session.rollback()
        raise Conflict(f"A deployment package named {name!r} exists already.", field="name") from None
    record("package.created", name, _summary(package), account_id=account_id, actor=created_by,
           commit=False)
    db.session.commit()
    return package


def update_package(account_id: int, package_id: int, data: PackageData) -> Package:
    package = get_package(account_id, package_id)
    if package.revoked_at is not None:
        raise Conflict("A revoked deployment package cannot be changed.")
    name, description, group = _clean(account_id, data, package.id)
    before = {"name": package.name, "description": package.description, **_summary(package)}
    package.name, package.description = name, description
    package.valid_from, package.valid_to = day_start(data.valid_from), day_start(data.valid_to)
    package.max_devices, package.active = data.max_devices, data.active
    package.enrolment_state, package.device_group = data.enrolment_state, group
    after = {"name": package.name, "description": package.description, **_summary(package)}
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"A deployment package named {name!r} exists already.", field="name") from None
    if changes:
        record("package.updated", package.name, changes, account_id=account_id, commit=False)
    db.session.commit()
    return package


def revoke_package(account_id: int, package_id: int, confirmation: str) -> int:
    """Revoke: the key stops enrolling and every device of the package is marked revoked (they
    stay listed and their tokens are refused). Returns how many devices were revoked."""
    package = get_package(account_id, package_id)
    if (confirmation or "").strip().lower() != "revoke":
        raise ValidationError("Type the word revoke to confirm.", field="confirmation")
    if package.revoked_at is not None:
        raise Conflict("This deployment package is revoked already.")
    package.revoked_at = utcnow()
    result = db.session.execute(
        update(Device).where(Device.package_id == package.id, Device.account_id == account_id,
                             Device.revoked == False)  # noqa: E712
        .values(revoked=True, online=False, modified_at=utcnow()))
    revoked = result.rowcount or 0
    record("package.revoked", package.name, {"devices_revoked": revoked}, account_id=account_id,
           commit=False)
    db.session.commit()
    return revoked


def removal_problem(package: Package) -> str | None:
    """Why ``package`` may not be removed now (None when it may)."""
    if package.revoked_at is not None:
        return None
    count = device_count(package.id)
    if count:
        return (f"{package.name} still has {count} device{'s' if count != 1 else ''}. Revoke the "
                "package first, or remove its devices; then it can be removed.")
    return None


def remove_package(account_id: int, package_id: int) -> str:
    package = get_package(account_id, package_id)
    problem = removal_problem(package)
    if problem:
        raise Conflict(problem)
    name = package.name
    # Revoked devices stay listed (as Revoked) without their package; SQLite does not apply
    # the foreign key's SET NULL itself.
    db.session.execute(update(Device).where(Device.package_id == package.id).values(package_id=None))
    db.session.delete(package)
    record("package.removed", name, account_id=account_id, commit=False)
    db.session.commit()
    return name


def renew_link(account_id: int, package_id: int) -> Package:
    """A new installer-link address; the old one stops working at once."""
    package = get_package(account_id, package_id)
    if package.revoked_at is not None:
        raise Conflict("A revoked deployment package has no installer link.")
    package.link_token = secrets.token_urlsafe(KEY_BYTES)
    record("package.link_renewed", package.name, account_id=account_id, commit=False)
    db.session.commit()
    return package


# --------------------------------------------------------------------------- installers
def _ack_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="tessera.installer-link")


def link_download_ack(secret_key: str, package: Package) -> str:
    """The signed value the "I understand" step adds to the link page's download address."""
    return _ack_serializer(secret_key).dumps(package.link_token)


def check_link_download_ack(secret_key: str, package: Package, ack: str) -> bool:
    try:
        token = _ack_serializer(secret_key).loads(ack or "", max_age=LINK_ACK_MAX_AGE)
    except BadSignature:
        return False
    return secrets.compare_digest(str(token), package.link_token)


def _comment(text: str) -> str:
    """Text safe inside a shell comment: one line, printable."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]


def linux_installer(package: Package, portal_url: str, *, wheel_url: str = "",
                    wheel_file: str = "", wheel_sha256: str = "", agent_pip_spec: str = "") -> str:
    """The Linux installer script for ``package``: every value is shell-quoted.

    By default the script downloads the agent wheel the Portal serves (``wheel_url``, see
    ``app/downloads/agent_wheel.py``) as ``wheel_file``, checks it against ``wheel_sha256``
    and pip-installs that file. A non-empty ``agent_pip_spec`` (config ``AGENT_PIP_SPEC``)
    is installed instead; the device's ``TESSERA_AGENT_PIP_SPEC`` overrides both."""
    from flask import render_template

    if not agent_pip_spec and not (wheel_url and wheel_file and wheel_sha256):
        raise ValueError("the installer needs the agent wheel's address and checksum, or a pip spec")
    return render_template(
        "downloads/install-linux.sh",
        package_comment=_comment(package.name),
        company_comment=_comment(db.session.get(Account, package.account_id).company),
        portal_url=shlex.quote(portal_url.rstrip("/")),
        enrollment_key=shlex.quote(package.enrollment_key),
        agent_pip_spec=shlex.quote(agent_pip_spec),
        agent_wheel_url=shlex.quote(wheel_url),
        agent_wheel_file=shlex.quote(wheel_file),
        agent_wheel_sha256=shlex.quote(wheel_sha256),
    )


def installer_filename(package: Package) -> str:
    return "tessera-agent-install-linux.sh"
