"""Devices: enrolment through the agent API, device tokens, the Devices listing, Enroll,
edits, favourites, removal, and the licence count.

Called by ``app/devices/views.py`` (the pages), ``app/api/views.py`` (the agent API), the
dashboard and the licence counters (``app.users.services.licence_counters``), and by the relay
(issue 5) through :func:`authenticate_device`.

Rules worth knowing:

* A device token is ``secrets.token_urlsafe(32)`` (256 bits), shown to the agent once; only its
  sha256 is stored. Re-enrolling (same hardware id, same account) returns the same device and
  a NEW token that replaces the old one: the agent re-enrols when it has lost its token (a
  re-install, a wiped disk), and an old token that may have leaked with the old installation
  must not keep working next to the new one.
* The licence (``Account.max_devices``) and a package's "number of devices" count enrolled and
  pending devices, not revoked ones: a revoked device can never connect, so it holds no seat.
  It stays listed as Revoked until removed, and can come back only by enrolling with another
  (valid) package, which then counts it again.
* A device that was enrolled stays enrolled when it re-enrols; a new device, or a revoked one
  coming back, takes its package's enrolment state.
* Pending devices authenticate (their agent needs ``/api/v1/agent/me`` to learn when it has
  been enrolled); what a pending device may do is for the relay to decide.
"""
from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, case, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from app.audit.services import record
from app.common.queries import of_account
from app.errors import Conflict, Forbidden, LimitReached, NotFound, TesseraError, ValidationError
from app.extensions import db
from app.models import Account, Device, DeviceFavourite, EnrolmentState, Group, GroupKind, Package, utcnow
from app.models.groups import group_device

TOKEN_BYTES = 32
STATUS_LABELS = {"online": "Online", "offline": "Offline", "pending": "Pending", "revoked": "Revoked"}
STATE_LABELS = {"pending": "Pending", "enrolled": "Enrolled"}
MAX_ALIAS = 200
MAX_DESCRIPTION = 2000

# The enrolment request's fields: name -> (longest accepted length, required non-empty).
ENROL_FIELDS = {
    "enrollment_key": (64, True),
    "hostname": (255, True),
    "os": (200, False),
    "agent_version": (50, False),
    "hardware_id": (200, True),
}


class MalformedRequest(TesseraError):
    """The agent's request is not what the API accepts (answered 400)."""

    status = 400
    title = "Malformed request"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def clean_text(value: str) -> str:
    """Agent-reported text as stored: control and format characters (newlines, escape
    sequences, bidirectional overrides) removed, then trimmed. It is still attacker input and
    always escaped when shown."""
    return "".join(ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf")).strip()


@dataclass(frozen=True)
class EnrolRequest:
    enrollment_key: str
    hostname: str
    os: str
    agent_version: str
    hardware_id: str


def parse_enrol_request(payload) -> EnrolRequest:
    """Check the JSON body of ``POST /api/v1/agent/enroll``: an object whose five fields are
    strings within their lengths (the required ones not empty after cleaning)."""
    if not isinstance(payload, dict):
        raise MalformedRequest("The body must be a JSON object with the fields "
                               + ", ".join(ENROL_FIELDS) + ".")
    values = {}
    for name, (longest, required) in ENROL_FIELDS.items():
        if name not in payload:
            raise MalformedRequest(f"The field {name} is missing.")
        value = payload[name]
        if not isinstance(value, str):
            raise MalformedRequest(f"The field {name} must be a string.")
        if len(value) > longest:
            raise MalformedRequest(f"The field {name} is longer than {longest} characters.")
        value = clean_text(value)
        if required and not value:
            raise MalformedRequest(f"The field {name} must not be empty.")
        values[name] = value
    return EnrolRequest(**values)


@dataclass
class Enrolment:
    device: Device
    token: str  # the plain token: given to the agent once, never stored
    created: bool


def _licensed(query: Select) -> Select:
    return query.where(Device.revoked == False)  # noqa: E712  (SQL)


def count_licensed_devices(account_id: int) -> int:
    """Devices holding a licence seat: enrolled and pending, not revoked."""
    return db.session.scalar(_licensed(select(func.count(Device.id)).where(
        Device.account_id == account_id))) or 0


def _package_devices(package_id: int) -> int:
    return db.session.scalar(_licensed(select(func.count(Device.id)).where(
        Device.package_id == package_id))) or 0


def enrol(request: EnrolRequest, now: datetime | None = None) -> Enrolment:
    """Enrol (or re-enrol) a device with a package's enrolment key.

    Unknown key: :class:`NotFound`. Revoked, disabled, expired or not yet valid package:
    :class:`Forbidden`. The package's or the licence's device limit reached:
    :class:`LimitReached`. Two agents racing with the same hardware id end as one device (the
    unique constraint decides, the loser re-enrols the winner's device).
    """
    from app.downloads.services import why_not_usable

    now = now or utcnow()
    for attempt in range(3):
        try:
            return _enrol_once(request, now, why_not_usable)
        except IntegrityError:
            db.session.rollback()
    raise Conflict("The device could not be enrolled at the same time as another attempt; try again.")


def _enrol_once(request: EnrolRequest, now: datetime, why_not_usable) -> Enrolment:
    package = db.session.scalar(select(Package).where(Package.enrollment_key == request.enrollment_key))
    if package is None:
        raise NotFound("Unknown enrolment key.")
    problem = why_not_usable(package, now)
    if problem:
        raise Forbidden(problem)
    # Serialise enrolments per account (PostgreSQL row lock; SQLite serialises writers
    # anyway), so two agents cannot both take the last licence seat.
    account = db.session.scalar(select(Account).where(Account.id == package.account_id).with_for_update())
    device = db.session.scalar(select(Device).where(
        Device.account_id == account.id, Device.hardware_id == request.hardware_id))
    was_seated = device is not None and not device.revoked
    new_to_package = not was_seated or device.package_id != package.id
    if new_to_package and package.max_devices is not None:
        if _package_devices(package.id) >= package.max_devices:
            raise LimitReached(f"The deployment package allows {package.max_devices} device"
                               f"{'s' if package.max_devices != 1 else ''} and all are in use.")
    if not was_seated and count_licensed_devices(account.id) >= account.max_devices:
        raise LimitReached(f"The account's licence allows {account.max_devices} devices and all "
                           "are in use.")

    token = secrets.token_urlsafe(TOKEN_BYTES)
    created = device is None
    was_enrolled = was_seated and device.enrolment_state is EnrolmentState.enrolled
    if created:
        device = Device(account_id=account.id, hardware_id=request.hardware_id, created_at=now)
        db.session.add(device)
    state = EnrolmentState.enrolled if was_enrolled else package.enrolment_state
    device.package_id = package.id
    device.token_hash = hash_token(token)
    device.hostname, device.os, device.agent_version = request.hostname, request.os, request.agent_version
    device.revoked = False
    device.enrolment_state = state
    if state is EnrolmentState.enrolled and not was_enrolled:
        device.enrolled_at = now
    if not created:
        device.modified_at = now
    if package.device_group is not None and package.device_group not in device.groups:
        device.groups.append(package.device_group)
    db.session.flush()  # an IntegrityError here: another request enrolled this hardware id

    details = {"package": package.name, "hardware_id": request.hardware_id, "os": request.os,
               "agent_version": request.agent_version, "re_enrolled": not created}
    if state is EnrolmentState.enrolled and not was_enrolled:
        action = "device.enrolled"
    elif state is EnrolmentState.pending:
        action = "device.enrol_requested"
    else:
        action = "device.re_enrolled"
    record(action, request.hostname, details, account_id=account.id, actor=None, commit=False)
    db.session.commit()
    return Enrolment(device, token, created)


def authenticate_device(token: str | None) -> Device | None:
    """The device whose agent holds ``token``, or None: unknown token, revoked device, or a
    device of a revoked package. The relay (issue 5) calls this on every connection."""
    if not token or len(token) > 200:
        return None
    device = db.session.scalar(select(Device).where(Device.token_hash == hash_token(token)))
    if device is None or device.revoked:
        return None
    if device.package_id is not None:
        revoked_at = db.session.scalar(select(Package.revoked_at).where(Package.id == device.package_id))
        if revoked_at is not None:
            return None
    return device


# --------------------------------------------------------------------------- the listing
def status_expr():
    """:attr:`Device.status` as one SQL CASE, for the listing's column and sort."""
    return case(
        (Device.revoked == True, "revoked"),  # noqa: E712
        (Device.enrolment_state == EnrolmentState.pending, "pending"),
        (Device.online == True, "online"),  # noqa: E712
        else_="offline",
    )


def _status_match(token: str):
    live = and_(Device.revoked == False, Device.enrolment_state == EnrolmentState.enrolled)  # noqa: E712
    return {
        "revoked": Device.revoked == True,  # noqa: E712
        "pending": and_(Device.revoked == False, Device.enrolment_state == EnrolmentState.pending),  # noqa: E712
        "online": and_(live, Device.online == True),  # noqa: E712
        "offline": and_(live, Device.online == False),  # noqa: E712
    }[token]


def _favourite_expr():
    return DeviceFavourite.device_id.is_not(None)


def devices_query(account_id: int, user_id: int) -> Select:
    """The account's devices with their package's name and whether ``user_id`` starred them."""
    return (
        select(Device, Package.name.label("package_name"), _favourite_expr().label("favourite"),
               status_expr().label("status"))
        .outerjoin(Package, Device.package_id == Package.id)
        .outerjoin(DeviceFavourite, and_(DeviceFavourite.device_id == Device.id,
                                         DeviceFavourite.user_id == user_id))
        .where(Device.account_id == account_id)
    )


def device_columns(account_id: int) -> list:
    from app.common.listing import Column

    status = status_expr()
    groups = device_groups(account_id)

    def in_group(token: str):
        return Device.id.in_(select(group_device.c.device_id).where(group_device.c.group_id == int(token)))

    return [
        # Sorted favourites first, then by hostname: the listing's default order.
        Column("favourite", "Favourite", _favourite_expr(), filter="bool",
               sort_expr=(case((_favourite_expr(), 0), else_=1), Device.hostname)),
        Column("hostname", "Hostname", Device.hostname, required=True),
        Column("status", "Status", status, filter="choice", choices=list(STATUS_LABELS.items()),
               match=_status_match,
               sort_expr=case({"online": 1, "offline": 2, "pending": 3, "revoked": 4}, value=status, else_=5)),
        Column("alias", "Alias", Device.alias, blanks=True),
        Column("groups", "Groups", Device.id, filter="choice", sortable=False,
               choices=[(str(g.id), g.name) for g in groups], match=in_group),
        Column("logged_in_user", "Logged-in user", Device.logged_in_user, blanks=True),
        Column("os", "OS", Device.os, blanks=True),
        Column("agent_version", "Agent version", Device.agent_version, visible=False, blanks=True),
        Column("state", "Enrollment state", Device.enrolment_state, filter="choice",
               choices=list(STATE_LABELS.items()), coerce=EnrolmentState.__getitem__),
        Column("package", "Deployment package", Package.name, blanks=True),
        Column("description", "Description", Device.description, visible=False, blanks=True),
        Column("last_seen", "Last seen", Device.last_seen_at, filter="date", visible=False, blanks=True),
        Column("created", "Added", Device.created_at, filter="date", visible=False),
        Column("action", "Remote control", None),  # the console, for enrolled devices
    ]


def groups_by_device(device_ids: list[int]) -> dict[int, list[Group]]:
    """The groups of each device of one listing page, in one query."""
    found: dict[int, list[Group]] = {i: [] for i in device_ids}
    if not device_ids:
        return found
    rows = db.session.execute(
        select(group_device.c.device_id, Group).join(Group, Group.id == group_device.c.group_id)
        .where(group_device.c.device_id.in_(device_ids)).order_by(Group.name))
    for device_id, group in rows:
        found[device_id].append(group)
    return found


def device_groups(account_id: int) -> list[Group]:
    return list(db.session.scalars(
        select(Group).where(Group.account_id == account_id, Group.kind == GroupKind.device)
        .order_by(Group.name, Group.id)))


# --------------------------------------------------------------------------- one device
def get_device(account_id: int, device_id: int) -> Device:
    return of_account(Device, account_id, device_id, missing="There is no such device in this account.")


def _devices(account_id: int, device_ids: list[int]) -> list[Device]:
    wanted = sorted(set(device_ids))
    if not wanted:
        raise ValidationError("Select at least one device.")
    devices = list(db.session.scalars(select(Device).where(
        Device.account_id == account_id, Device.id.in_(wanted)).order_by(Device.hostname, Device.id)))
    if len(devices) != len(wanted):
        raise NotFound("Some of the selected devices are not in this account.")
    return devices


def is_favourite(user_id: int, device_id: int) -> bool:
    return db.session.get(DeviceFavourite, (user_id, device_id)) is not None


def update_device(account_id: int, device_id: int, *, alias: str, description: str,
                  group_ids: list[int]) -> Device:
    device = get_device(account_id, device_id)
    alias, description = clean_text(alias or ""), (description or "").strip()
    if len(alias) > MAX_ALIAS:
        raise ValidationError(f"The alias is longer than {MAX_ALIAS} characters.", field="alias")
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError(f"The description is longer than {MAX_DESCRIPTION} characters.",
                              field="description")
    wanted = sorted(set(group_ids))
    groups = list(db.session.scalars(select(Group).where(
        Group.id.in_(wanted), Group.account_id == account_id, Group.kind == GroupKind.device))) if wanted else []
    if len(groups) != len(wanted):
        raise ValidationError("Choose device groups of this account.", field="groups")
    changes = {}
    if device.alias != alias:
        changes["alias"] = [device.alias, alias]
        device.alias = alias
    if device.description != description:
        changes["description"] = [device.description, description]
        device.description = description
    before = sorted(g.name for g in device.groups)
    after = sorted(g.name for g in groups)
    if before != after:
        changes["groups"] = [before, after]
        device.groups = groups
    if changes:
        device.modified_at = utcnow()
        record("device.updated", device.hostname, changes, account_id=account_id, commit=False)
    db.session.commit()
    return device


@dataclass
class EnrollResult:
    enrolled: list[str]
    already: list[str]

    @property
    def message(self) -> str:
        parts = []
        if self.enrolled:
            n = len(self.enrolled)
            parts.append(f"{n} device{'s' if n != 1 else ''} enrolled: {', '.join(self.enrolled)}.")
        if self.already:
            parts.append("Already enrolled: " + ", ".join(self.already) + ".")
        return " ".join(parts)


def enroll_devices(account_id: int, device_ids: list[int]) -> EnrollResult:
    """The administrator's Enroll for pending devices, one or many. A revoked device in the
    selection refuses the whole request (nothing changes); enrolled ones are left as they are."""
    devices = _devices(account_id, device_ids)
    revoked = [d.display_name for d in devices if d.revoked]
    if revoked:
        raise Conflict("Revoked devices cannot be enrolled (enrol them again with another "
                       "deployment package): " + ", ".join(revoked) + ". Nothing was changed.")
    result = EnrollResult([], [])
    now = utcnow()
    for device in devices:
        if device.enrolment_state is EnrolmentState.enrolled:
            result.already.append(device.display_name)
            continue
        device.enrolment_state = EnrolmentState.enrolled
        device.enrolled_at = device.modified_at = now
        result.enrolled.append(device.display_name)
        record("device.enrolled", device.hostname, {"by": "administrator"}, account_id=account_id,
               commit=False)
    db.session.commit()
    return result


def set_favourites(user_id: int, account_id: int, device_ids: list[int], favourite: bool) -> int:
    """Star (or unstar) devices for one user; returns how many changed. My devices uses this
    too, with the devices the user may reach."""
    devices = _devices(account_id, device_ids)
    ids = [d.id for d in devices]
    current = set(db.session.scalars(select(DeviceFavourite.device_id).where(
        DeviceFavourite.user_id == user_id, DeviceFavourite.device_id.in_(ids))))
    if favourite:
        missing = [i for i in ids if i not in current]
        if missing:
            db.session.execute(insert(DeviceFavourite), [
                {"user_id": user_id, "device_id": i, "created_at": utcnow()} for i in missing])
        changed = len(missing)
    else:
        db.session.execute(delete(DeviceFavourite).where(
            DeviceFavourite.user_id == user_id, DeviceFavourite.device_id.in_(list(current))))
        changed = len(current)
    db.session.commit()
    return changed


def toggle_favourite(user_id: int, account_id: int, device_id: int) -> bool:
    """Flip one star; returns whether the device is now a favourite."""
    device = get_device(account_id, device_id)
    now_favourite = not is_favourite(user_id, device.id)
    try:
        set_favourites(user_id, account_id, [device.id], now_favourite)
    except IntegrityError:  # a double click raced itself: it is a favourite either way
        db.session.rollback()
        return True
    return now_favourite


def removal_targets(account_id: int, device_ids: list[int]) -> list[Device]:
    return _devices(account_id, device_ids)


def remove_devices(account_id: int, device_ids: list[int]) -> list[str]:
    """Delete devices: their tokens stop working at once. An agent that is still installed
    and holds a valid enrolment key may enrol again (as a new device)."""
    devices = _devices(account_id, device_ids)
    ids = [d.id for d in devices]
    names = [d.display_name for d in devices]
    # Favourites explicitly: SQLite does not run the foreign key's ON DELETE CASCADE (the
    # group links go with the ORM's delete of each device).
    db.session.execute(delete(DeviceFavourite).where(DeviceFavourite.device_id.in_(ids)))
    for device in devices:
        record("device.removed", device.hostname, {"hardware_id": device.hardware_id},
               account_id=account_id, commit=False)
        db.session.delete(device)
    db.session.commit()
    return names
