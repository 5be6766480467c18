"""Devices pages: the listing (columns, filters, favourites first), details, edit, Enroll (one
or many), favourites (the star and the bulk buttons), remove (one or many, with a confirmation).

Thin views: they read forms and query strings, call ``app.devices.services`` and render.
Group managers and up see and manage devices; removing needs an administrator.
"""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from app.access import can, requires
from app.common.forms import choices
from app.common.bulk import back_to_listing, local_under, selected_ids
from app.common.listing import BulkAction, Listing
from app.common.templating import is_htmx, render
from app.devices import services
from app.devices.forms import ConfirmForm, DeviceForm
from app.errors import TesseraError, ValidationError
from app.models import Device

bp = Blueprint("devices", __name__, url_prefix="/devices")


def _account_id() -> int:
    return g.membership.account_id


def _user_id() -> int:
    return g.membership.user_id


def _bulk_actions() -> list[BulkAction]:
    actions = []
    if can("devices.manage"):
        actions.append(BulkAction("Enroll", url_for("devices.enroll_many")))
    actions.append(BulkAction("Add to favourites", url_for("devices.favourites_add")))
    actions.append(BulkAction("Remove from favourites", url_for("devices.favourites_remove")))
    if can("devices.remove"):
        actions.append(BulkAction("Remove", url_for("devices.remove_many"), danger=True))
    return actions


@bp.get("/")
@requires("devices.view")
def index():
    membership = g.membership
    listing = Listing(
        "devices",
        services.devices_query(membership.account_id, membership.user_id),
        services.device_columns(membership.account_id),
        request.args,
        id_column=Device.id,
        row_id=lambda row: row.Device.id,
        default_sort="favourite",
        bulk_actions=_bulk_actions(),
        tz=membership.account.timezone,
    )
    groups = services.groups_by_device([row.Device.id for row in listing.items])
    response = render("devices/index.html", partial="listing", listing=listing, groups=groups,
                      status_labels=services.STATUS_LABELS, state_labels=services.STATE_LABELS)
    return listing.push_url(response)


MAX_PRESENCE_IDS = 200


@bp.get("/presence")
@requires("devices.mine")
def presence():
    """The presence of ``?ids=1,2,3`` as out-of-band HTMX swaps: the pollers on Devices, My
    devices and a device's details ask every few seconds, so a device coming online or going
    away shows without reloading. Only devices the user may see answer (others are left out):
    with ``devices.view`` every device of the account, otherwise those an assignment reaches."""
    from sqlalchemy import select

    from app.assignments.permissions import reachable_devices
    from app.extensions import db
    from app.models import utcnow

    raw = request.args.get("ids", "")
    try:
        ids = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise TesseraError("ids must be device ids separated by commas, e.g. ?ids=1,2,3") from None
    if not ids or len(ids) > MAX_PRESENCE_IDS:
        raise TesseraError(f"Ask for 1 to {MAX_PRESENCE_IDS} device ids.")
    if can("devices.view"):
        query = select(Device).where(Device.account_id == _account_id())
    else:
        query = reachable_devices(g.membership, utcnow())
    devices = db.session.scalars(query.where(Device.id.in_(ids)).order_by(Device.id)).all()
    response = render("devices/presence.html", devices=devices)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int:device_id>")
@requires("devices.view")
def details(device_id: int):
    from app.confirm.services import recent_requests
    from app.relay.services import ending, recent_sessions
    from app.roles.services import permission_label

    device = services.get_device(_account_id(), device_id)
    return render("devices/details.html", device=device,
                  favourite=services.is_favourite(_user_id(), device.id),
                  status_labels=services.STATUS_LABELS, state_labels=services.STATE_LABELS,
                  form=ConfirmForm(), sessions=recent_sessions(device.id), ending=ending,
                  permission_label=permission_label, access_requests=recent_requests(device.id))


@bp.route("/<int:device_id>/edit", methods=["GET", "POST"])
@requires("devices.manage")
def edit(device_id: int):
    account_id = _account_id()
    device = services.get_device(account_id, device_id)
    form = DeviceForm()
    form.groups.choices = choices((group.id, group.name) for group in services.device_groups(account_id))
    if request.method == "GET":
        form.alias.data, form.description.data = device.alias, device.description
        form.groups.data = [group.id for group in device.groups]
    status = 200
    if form.validate_on_submit():
        try:
            services.update_device(account_id, device.id, alias=form.alias.data or "",
                                   description=form.description.data or "",
                                   group_ids=form.groups.data or [])
        except ValidationError as err:
            field = getattr(form, err.field, None) if err.field else None
            (field.errors if field is not None else form.form_errors).append(err.message)
            status = err.status
        else:
            flash("The changes were saved.", "success")
            return redirect(url_for("devices.details", device_id=device.id))
    elif form.errors:
        status = 422
    return render("devices/edit.html", status=status, form=form, device=device)


def _back() -> str:
    """Back where a one-device button was pressed: the details page or the listing."""
    return local_under(request.form.get("next", ""), url_for("devices.index"))


@bp.post("/<int:device_id>/enroll")
@requires("devices.manage")
def enroll(device_id: int):
    services.get_device(_account_id(), device_id)  # another account's id: 404
    return _enroll([device_id], _back())


@bp.post("/enroll")
@requires("devices.manage")
def enroll_many():
    ids = selected_ids()
    if not ids:
        flash("Select at least one device first.", "error")
        return redirect(back_to_listing("devices.index"))
    return _enroll(ids, back_to_listing("devices.index"))


def _enroll(ids: list[int], back: str):
    try:
        result = services.enroll_devices(_account_id(), ids)
    except TesseraError as err:
        if err.status == 404:
            raise
        flash(err.message, "error")
    else:
        flash(result.message, "success")
    return redirect(back)


@bp.post("/<int:device_id>/favourite")
@requires("devices.view")
def favourite(device_id: int):
    """The star: toggles this user's favourite. HTMX swaps the star button; without
    JavaScript, a plain form post comes back to the page it was on."""
    now_favourite = services.toggle_favourite(_user_id(), _account_id(), device_id)
    if is_htmx():
        return render("devices/_star.html", device_id=device_id, favourite=now_favourite)
    return redirect(_back())


def _favourites(on: bool):
    ids = selected_ids()
    if not ids:
        flash("Select at least one device first.", "error")
        return redirect(back_to_listing("devices.index"))
    services.set_favourites(_user_id(), _account_id(), ids, on)
    flash("The selected devices were added to your favourites." if on
          else "The selected devices were removed from your favourites.", "success")
    return redirect(back_to_listing("devices.index"))


@bp.post("/favourites/add")
@requires("devices.view")
def favourites_add():
    return _favourites(True)


@bp.post("/favourites/remove")
@requires("devices.view")
def favourites_remove():
    return _favourites(False)


@bp.route("/<int:device_id>/remove", methods=["GET", "POST"])
@requires("devices.remove")
def remove(device_id: int):
    return _remove([device_id], confirmed=request.method == "POST")


@bp.post("/remove")
@requires("devices.remove")
def remove_many():
    ids = selected_ids()
    if not ids:
        flash("Select at least one device first.", "error")
        return redirect(back_to_listing("devices.index"))
    return _remove(ids, confirmed=request.form.get("confirm") == "yes")


def _remove(ids: list[int], confirmed: bool):
    """Step one shows what would go; step two, confirmed, removes."""
    account_id = _account_id()
    targets = services.removal_targets(account_id, ids)
    form = ConfirmForm()
    if confirmed and form.validate_on_submit():
        names = services.remove_devices(account_id, ids)
        flash(f"{len(names)} device{'s' if len(names) != 1 else ''} removed: {', '.join(names)}.",
              "success")
        return redirect(back_to_listing("devices.index"))
    return render("devices/remove.html", targets=targets, form=form, next=back_to_listing("devices.index"))
