"""Applications pages: listing, add, edit, remove. Disabling or removing an application can
switch off role assignments (every application of their whitelist role disabled); the flash
says which. Administrators only (``applications.manage``). Rules: ``app.applications.services``.
"""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from app.access import requires
from app.applications import services
from app.applications.forms import ApplicationForm
from app.common.listing import Listing
from app.common.templating import render
from app.errors import TesseraError
from app.models import Application
from app.users.forms import ConfirmForm

bp = Blueprint("applications", __name__, url_prefix="/applications")


def _account_id() -> int:
    return g.membership.account_id


def _names(names: list[str]) -> str:
    return ", ".join(names)


@bp.get("/")
@requires("applications.manage")
def index():
    listing = Listing(
        "applications",
        services.applications_query(_account_id()),
        services.application_columns(),
        request.args,
        id_column=Application.id,
        default_sort="name",
        tz=g.membership.account.timezone,
    )
    response = render("applications/index.html", partial="listing", listing=listing)
    return listing.push_url(response)


@bp.route("/add", methods=["GET", "POST"])
@requires("applications.manage")
def add():
    form = ApplicationForm()
    status, error = 200, None
    if form.validate_on_submit():
        try:
            application = services.create_application(
                _account_id(), name=form.name.data, executable=form.executable.data,
                path=form.path.data, description=form.description.data, enabled=form.enabled.data)
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            flash(f"The application {application.name} was added.", "success")
            return redirect(url_for("applications.index"))
    elif form.errors:
        status = 422
    return render("applications/form.html", status=status, form=form, error=error, application=None)


@bp.route("/<int:application_id>/edit", methods=["GET", "POST"])
@requires("applications.manage")
def edit(application_id: int):
    application = services.get_application(_account_id(), application_id)
    form = ApplicationForm(obj=application if request.method == "GET" else None)
    status, error = 200, None
    if form.validate_on_submit():
        try:
            _, disabled, enabled = services.update_application(
                _account_id(), application.id, name=form.name.data, executable=form.executable.data,
                path=form.path.data, description=form.description.data, enabled=form.enabled.data)
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            flash("The changes were saved.", "success")
            if disabled:
                flash("Every whitelisted application of these role assignments is now disabled, "
                      "so they were disabled: " + _names(disabled) + ".", "error")
            if enabled:
                flash("These role assignments have an enabled application again and were "
                      "enabled: " + _names(enabled) + ".", "success")
            return redirect(url_for("applications.index"))
    elif form.errors:
        status = 422
    return render("applications/form.html", status=status, form=form, error=error,
                  application=application, roles=services.roles_using(application))


@bp.route("/<int:application_id>/remove", methods=["GET", "POST"])
@requires("applications.manage")
def remove(application_id: int):
    application = services.get_application(_account_id(), application_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        name, disabled = services.remove_application(_account_id(), application.id)
        flash(f"The application {name} was removed.", "success")
        if disabled:
            flash("These role assignments have no enabled whitelisted application left and were "
                  "disabled: " + _names(disabled) + ".", "error")
        return redirect(url_for("applications.index"))
    return render("applications/remove.html", application=application, form=form,
                  roles=services.roles_using(application))
