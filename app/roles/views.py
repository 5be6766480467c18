"""Roles pages: listing, details, add, edit, copy, and remove (with the warning that lists the
role assignments it will disable). Group managers read (``roles.view``); administrators
change (``roles.manage``). The rules live in ``app.roles.services``.
"""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, request, url_for
from werkzeug.routing import BuildError

from app.access import can, requires
from app.common.listing import Listing
from app.common.templating import render
from app.errors import Forbidden, TesseraError
from app.models import Role, RoleType
from app.roles import services
from app.roles.forms import RoleForm
from app.users.forms import ConfirmForm, choices

bp = Blueprint("roles", __name__, url_prefix="/roles")


def _account_id() -> int:
    return g.membership.account_id


def assignment_link(assignment) -> str | None:
    """Where an assignment can be opened: its own page when the role assignments area has one,
    else their listing (none while that area is not installed)."""
    for endpoint in ("role_assignments.details", "role_assignments.edit"):
        if endpoint in current_app.view_functions:
            try:
                return url_for(endpoint, assignment_id=assignment.id)
            except BuildError:
                continue
    if "role_assignments.index" in current_app.view_functions:
        return url_for("role_assignments.index")
    return None


@bp.get("/")
@requires("roles.view")
def index():
    listing = Listing(
        "roles",
        services.roles_query(_account_id()),
        services.role_columns(),
        request.args,
        id_column=Role.id,
        default_sort="name",
        tz=g.membership.account.timezone,
    )
    response = render("roles/index.html", partial="listing", listing=listing)
    return listing.push_url(response)


@bp.get("/<int:role_id>")
@requires("roles.view")
def details(role_id: int):
    role = services.get_role(_account_id(), role_id)
    return render("roles/details.html", role=role, assignments=services.role_assignments(role),
                  label=services.permission_label, client_labels=services.CLIENT_TYPE_LABELS,
                  assignment_link=assignment_link)


def _form_page(form: RoleForm, *, role: Role | None, source: Role | None, action: str,
               save, status: int = 200):
    """Shared by add, edit and copy: choices, submit, errors."""
    account_id = _account_id()
    form.confirm_groups.choices = choices(
        (grp.id, f"{grp.name} ({grp.kind.label})" + ("" if grp.active else " - inactive"))
        for grp in services.confirm_group_choices(account_id))
    form.applications.choices = choices(
        (app_.id, app_.name + ("" if app_.enabled else " (disabled)"))
        for app_ in services.application_choices(account_id))
    error = None
    if form.validate_on_submit():
        try:
            saved = save(form.to_input())
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            return redirect(url_for("roles.details", role_id=saved.id))
    elif form.errors:
        status = 422
    return render("roles/form.html", status=status, form=form, error=error, role=role,
                  source=source, action=action, types=list(RoleType))


@bp.route("/add", methods=["GET", "POST"])
@requires("roles.manage")
def add():
    form = RoleForm()
    if request.method == "GET" and request.args.get("type") in {t.value for t in RoleType}:
        form.type.data = request.args["type"]

    def save(spec):
        role = services.create_role(_account_id(), spec)
        flash(f"The role {role.name} was created.", "success")
        return role

    return _form_page(form, role=None, source=None, action=url_for("roles.add"), save=save)


@bp.route("/<int:role_id>/edit", methods=["GET", "POST"])
@requires("roles.manage")
def edit(role_id: int):
    role = services.get_role(_account_id(), role_id)
    if role.predefined:
        raise Forbidden(f"{role.name} is a predefined role: it can be viewed and copied, not "
                        "changed. Copy it to make your own version.")
    form = RoleForm()
    if request.method == "GET":
        form.fill(services.input_from(role))

    def save(spec):
        saved = services.update_role(_account_id(), role.id, spec)
        flash("The changes were saved.", "success")
        return saved

    return _form_page(form, role=role, source=None, action=url_for("roles.edit", role_id=role.id), save=save)


@bp.route("/<int:role_id>/copy", methods=["GET", "POST"])
@requires("roles.manage")
def copy(role_id: int):
    source = services.get_role(_account_id(), role_id)
    form = RoleForm()
    if request.method == "GET":
        form.fill(services.copy_input(source))

    def save(spec):
        role = services.create_role(_account_id(), spec, copied_from=source)
        flash(f"The role {role.name} was created as a copy of {source.name}.", "success")
        return role

    return _form_page(form, role=None, source=source, action=url_for("roles.copy", role_id=source.id), save=save)


@bp.route("/<int:role_id>/remove", methods=["GET", "POST"])
@requires("roles.manage")
def remove(role_id: int):
    role = services.get_role(_account_id(), role_id)
    if role.predefined:
        raise Forbidden(f"{role.name} is a predefined role and cannot be removed.")
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        name, disabled = services.remove_role(_account_id(), role.id)
        message = f"The role {name} was removed."
        if disabled:
            message += (f" {len(disabled)} role assignment{'s were' if len(disabled) != 1 else ' was'} "
                        "disabled: " + ", ".join(disabled) + ".")
        flash(message, "success")
        return redirect(url_for("roles.index"))
    return render("roles/remove.html", role=role, assignments=services.role_assignments(role),
                  form=form, assignment_link=assignment_link)
