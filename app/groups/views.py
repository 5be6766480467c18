"""Groups pages: the listing, add, details with the members, edit, remove, adding and taking
out members, and the "Add to group" step of the Users and Devices listings' bulk actions.

Thin views: the rules live in ``app.groups.services``. Group managers may read groups
(``groups.view``); every change, membership included, needs ``groups.manage``.
"""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from app.access import can, requires
from app.common.bulk import local_under, selected_ids
from app.common.listing import BulkAction, Listing
from app.common.templating import render
from app.errors import TesseraError
from app.groups import services
from app.groups.forms import GroupForm, PickGroupForm
from app.models import Device, Group, GroupKind, Membership
from app.users.forms import ConfirmForm, choices

bp = Blueprint("groups", __name__, url_prefix="/groups")


def _account_id() -> int:
    return g.membership.account_id


def _safe_next(listing_url: str) -> str:
    """The listing to go back to (``next``, posted or in the query string): only a local path
    under ``listing_url``, else ``listing_url`` itself."""
    return local_under(request.form.get("next", "") or request.args.get("next", ""), listing_url)


@bp.get("/")
@requires("groups.view")
def index():
    listing = Listing(
        "groups",
        services.groups_query(_account_id()),
        services.group_columns(),
        request.args,
        id_column=Group.id,
        default_sort="name",
        tz=g.membership.account.timezone,
    )
    response = render("groups/index.html", partial="listing", listing=listing, kinds=list(GroupKind))
    return listing.push_url(response)


@bp.route("/add", methods=["GET", "POST"])
@requires("groups.manage")
def add():
    form = GroupForm()
    if request.method == "GET" and request.args.get("kind") in {k.value for k in GroupKind}:
        form.kind.data = request.args["kind"]
    status, error = 200, None
    if form.validate_on_submit():
        try:
            group = services.create_group(
                _account_id(), services.parse_kind(form.kind.data), form.name.data,
                description=form.description.data, active=form.active.data,
                directory_ref=form.directory_ref.data, created_by_id=g.membership.user_id)
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            flash(f"The group {group.name} was created.", "success")
            return redirect(url_for("groups.details", group_id=group.id))
    elif form.errors:
        status = 422
    return render("groups/form.html", status=status, form=form, error=error, group=None,
                  ref_labels=services.DIRECTORY_REF_LABELS)


@bp.get("/<int:group_id>")
@requires("groups.view")
def details(group_id: int):
    group = services.get_group(_account_id(), group_id)
    manual = group.kind in (GroupKind.user, GroupKind.device) and can("groups.manage")
    bulk = ([BulkAction("Remove from group", url_for("groups.remove_members", group_id=group.id),
                        danger=True)] if manual else [])
    if group.kind is GroupKind.device:
        query, columns, id_column = services.device_members_query(group), services.device_member_columns(), Device.id
        row_id, sort = None, "hostname"
    else:
        query, columns, id_column = services.user_members_query(group), services.user_member_columns(), Membership.id
        row_id, sort = (lambda row: row.User.id), "name"
    listing = Listing("members", query, columns, request.args, id_column=id_column, row_id=row_id,
                      default_sort=sort, bulk_actions=bulk, tz=g.membership.account.timezone)
    response = render("groups/details.html", partial="listing", group=group, listing=listing,
                      manual=manual, ref_labels=services.DIRECTORY_REF_LABELS)
    return listing.push_url(response)


@bp.route("/<int:group_id>/edit", methods=["GET", "POST"])
@requires("groups.manage")
def edit(group_id: int):
    group = services.get_group(_account_id(), group_id)
    form = GroupForm(obj=group if request.method == "GET" else None)
    form.kind.data = group.kind.value
    status, error = 200, None
    if form.validate_on_submit():
        try:
            services.update_group(_account_id(), group.id, name=form.name.data,
                                  description=form.description.data, active=form.active.data,
                                  directory_ref=form.directory_ref.data)
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            flash("The changes were saved.", "success")
            return redirect(url_for("groups.details", group_id=group.id))
    elif form.errors:
        status = 422
    return render("groups/form.html", status=status, form=form, error=error, group=group,
                  ref_labels=services.DIRECTORY_REF_LABELS)


@bp.route("/<int:group_id>/remove", methods=["GET", "POST"])
@requires("groups.manage")
def remove(group_id: int):
    group = services.get_group(_account_id(), group_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        name = services.remove_group(_account_id(), group.id)
        flash(f"The group {name} was removed; its members were not.", "success")
        return redirect(url_for("groups.index"))
    return render("groups/remove.html", group=group, usage=services.group_usage(group), form=form)


def _picker(group: Group, holds: str):
    """The page listing the account's users or devices not yet in ``group``, with an "Add to
    group" bulk action posting back to the same URL."""
    endpoint = "groups.add_users" if holds == "users" else "groups.add_devices"
    bulk = [BulkAction("Add to group", url_for(endpoint, group_id=group.id))]
    if holds == "users":
        listing = Listing("candidates", services.user_candidates_query(group),
                          services.user_member_columns(), request.args, id_column=Membership.id,
                          row_id=lambda row: row.User.id, default_sort="name", bulk_actions=bulk,
                          tz=g.membership.account.timezone)
    else:
        listing = Listing("candidates", services.device_candidates_query(group),
                          services.device_member_columns(), request.args, id_column=Device.id,
                          default_sort="hostname", bulk_actions=bulk, tz=g.membership.account.timezone)
    response = render("groups/picker.html", partial="listing", group=group, listing=listing, holds=holds)
    return listing.push_url(response)


def _add(group_id: int, holds: str):
    account_id = _account_id()
    group = services.get_group(account_id, group_id)
    services.ensure_manual_members(group, holds)
    if request.method == "GET":
        return _picker(group, holds)
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The form expired; select again.", "error")
        return redirect(url_for(request.endpoint, group_id=group.id))
    ids = selected_ids()
    if not ids:
        flash(f"Select at least one {'user' if holds == 'users' else 'device'} first.", "error")
        return redirect(url_for(request.endpoint, group_id=group.id))
    attach = services.attach_users if holds == "users" else services.attach_devices
    result = attach(group.id, ids, account_id)
    flash(_attached_message(result, holds), "success")
    return redirect(url_for("groups.details", group_id=group.id))


def _attached_message(result: services.Attached, holds: str) -> str:
    noun = "user" if holds == "users" else "device"
    text = f"{result.added} {noun}{'s' if result.added != 1 else ''} added to {result.group.name}."
    if result.already:
        text += f" {result.already} {'was' if result.already == 1 else 'were'} in it already."
    return text


@bp.route("/<int:group_id>/users", methods=["GET", "POST"])
@requires("groups.manage")
def add_users(group_id: int):
    return _add(group_id, "users")


@bp.route("/<int:group_id>/devices", methods=["GET", "POST"])
@requires("groups.manage")
def add_devices(group_id: int):
    return _add(group_id, "devices")


@bp.post("/<int:group_id>/members/remove")
@requires("groups.manage")
def remove_members(group_id: int):
    account_id = _account_id()
    group = services.get_group(account_id, group_id)
    form = ConfirmForm()
    back = url_for("groups.details", group_id=group.id)
    if not form.validate_on_submit():
        flash("The form expired; select again.", "error")
        return redirect(back)
    ids = selected_ids()
    if not ids:
        flash("Select at least one member first.", "error")
        return redirect(back)
    removed = services.detach_members(group.id, ids, account_id)
    flash(f"{removed} member{'s' if removed != 1 else ''} taken out of {group.name}; they are "
          "still in the account.", "success")
    return redirect(_safe_next(back))


def _attach_from_listing(holds: str):
    """Step one (from a listing's bulk action): choose the group; step two: attach."""
    account_id = _account_id()
    listing_url = url_for("users.index") if holds == "users" else _devices_url()
    back = _safe_next(listing_url)
    ids = selected_ids()
    if not ids:
        flash(f"Select at least one {'user' if holds == 'users' else 'device'} first.", "error")
        return redirect(back)
    kind = GroupKind.user if holds == "users" else GroupKind.device
    groups = services.groups_of_kind(account_id, [kind])
    form = PickGroupForm()
    form.group.choices = choices((grp.id, grp.name + ("" if grp.active else " (inactive)")) for grp in groups)
    status, error = 200, None
    if "group" in request.form and form.validate_on_submit():
        try:
            attach = services.attach_users if holds == "users" else services.attach_devices
            result = attach(form.group.data, ids, account_id)
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            flash(_attached_message(result, holds), "success")
            return redirect(back)
    elif "group" in request.form:
        status = 422
    if holds == "users":
        chosen = [m.user for m in services.memberships_of_users(account_id, sorted(set(ids)))]
        names = sorted(u.display_name for u in chosen)
    else:
        names = sorted(d.display_name for d in services.devices_by_ids(account_id, sorted(set(ids))))
    return render("groups/attach.html", status=status, form=form, error=error, holds=holds,
                  ids=sorted(set(ids)), names=names, groups=groups, back=back,
                  action=url_for(request.endpoint))


def _devices_url() -> str:
    from flask import current_app

    return url_for("devices.index") if "devices.index" in current_app.view_functions else url_for("groups.index")


@bp.post("/attach-users")
@requires("groups.manage")
def attach_users():
    return _attach_from_listing("users")


@bp.post("/attach-devices")
@requires("groups.manage")
def attach_devices():
    return _attach_from_listing("devices")
