"""Downloads pages: the deployment package listing, add/edit, details with the per-platform
installers, the Linux installer script, the installer link (renew), revoke and remove; the
public installer-link page with its "I understand" step; and the agent wheel the installer
downloads (``app.downloads.agent_wheel``).

Thin views: forms in, ``app.downloads.services`` does the rules, pages out. Administrators and
up (``packages.manage``); the link pages are public, their random token is the key; the agent
wheel is public (it holds no secret).
"""
from __future__ import annotations

from flask import (Blueprint, current_app, flash, g, make_response, redirect, request, send_file,
                   url_for)

from app.access import requires
from app.common.forms import choices
from app.common.listing import Listing
from app.common.templating import render
from app.downloads import agent_wheel, services
from app.downloads.forms import ConfirmForm, PackageForm, RevokeForm, UnderstandForm
from app.errors import Conflict, NotFound, TesseraError, ValidationError
from app.extensions import db
from app.models import Account, EnrolmentState, Package, utcnow

bp = Blueprint("downloads", __name__, url_prefix="/downloads")


def _account_id() -> int:
    return g.membership.account_id


def _attach(form, err: TesseraError) -> None:
    """Show a service's complaint on the field it names (or on the form as a whole)."""
    field = getattr(form, err.field, None) if err.field else None
    if field is not None:
        field.errors = [*field.errors, err.message]
    else:
        form.form_errors.append(err.message)


def _portal_url() -> str:
    return current_app.config["BASE_URL"]


@bp.get("/")
@requires("packages.manage")
def index():
    now = utcnow()
    membership = g.membership
    listing = Listing(
        "packages",
        services.packages_query(membership.account_id, now),
        services.package_columns(now),
        request.args,
        id_column=Package.id,
        default_sort="name",
        tz=membership.account.timezone,
    )
    response = render("downloads/index.html", partial="listing", listing=listing,
                      status_labels=services.STATUS_LABELS, state_labels=services.STATE_LABELS)
    return listing.push_url(response)


def _form_data(form: PackageForm) -> services.PackageData:
    return services.PackageData(
        name=form.name.data or "", description=form.description.data or "",
        valid_from=form.valid_from.data, valid_to=form.valid_to.data,
        max_devices=form.max_devices.data, active=bool(form.active.data),
        device_group_id=form.device_group_id.data,
        enrolment_state=EnrolmentState[form.enrolment_state.data]
        if form.enrolment_state.data in EnrolmentState.__members__ else None,
    )


def _group_choices(account_id: int):
    return choices([("", "(None)")] + [(str(group.id), group.name)
                                      for group in services.device_groups(account_id)])


def _edit_page(form: PackageForm, package: Package | None):
    """Add (``package`` None) or edit: validate, save, or show the errors with a 422."""
    account_id = _account_id()
    form.device_group_id.choices = _group_choices(account_id)
    status = 200
    if form.validate_on_submit():
        try:
            if package is None:
                package = services.create_package(account_id, _form_data(form),
                                                  created_by=g.membership.user)
                flash(f"The deployment package {package.name} was created; its enrolment key "
                      "and installers are below.", "success")
            else:
                services.update_package(account_id, package.id, _form_data(form))
                flash("The changes were saved.", "success")
        except (ValidationError, Conflict) as err:
            _attach(form, err)
            status = err.status
        else:
            return redirect(url_for("downloads.details", package_id=package.id))
    elif form.errors:
        status = 422
    return render("downloads/edit.html", status=status, form=form, package=package)


@bp.route("/add", methods=["GET", "POST"])
@requires("packages.manage")
def add():
    return _edit_page(PackageForm(), None)


@bp.route("/<int:package_id>/edit", methods=["GET", "POST"])
@requires("packages.manage")
def edit(package_id: int):
    package = services.get_package(_account_id(), package_id)
    if package.revoked_at is not None:
        raise Conflict("A revoked deployment package cannot be changed.")
    form = PackageForm()
    if request.method == "GET":
        form.name.data, form.description.data = package.name, package.description
        form.valid_from.data = package.valid_from.date() if package.valid_from else None
        form.valid_to.data = package.valid_to.date() if package.valid_to else None
        form.max_devices.data, form.active.data = package.max_devices, package.active
        form.device_group_id.data = package.device_group_id
        form.enrolment_state.data = package.enrolment_state.name
    return _edit_page(form, package)


@bp.get("/<int:package_id>")
@requires("packages.manage")
def details(package_id: int):
    package = services.get_package(_account_id(), package_id)
    return render(
        "downloads/details.html",
        package=package,
        state=services.package_status(package),
        status_labels=services.STATUS_LABELS,
        problem=services.why_not_usable(package),
        devices=services.device_count(package.id),
        platforms=services.PLATFORMS,
        link_url=url_for("downloads.link", link_token=package.link_token, _external=True),
        form=ConfirmForm(),
    )


@bp.get("/<int:package_id>/install-linux.sh")
@requires("packages.manage")
def install_linux(package_id: int):
    package = services.get_package(_account_id(), package_id)
    if package.revoked_at is not None:
        raise Conflict("This deployment package is revoked: its installer would not work.")
    return _script_response(package)


def _script_response(package: Package):
    script = services.linux_installer(package, _portal_url(), **agent_source())
    return script_response(script, services.installer_filename(package))


def agent_source() -> dict:
    """How a Linux script gets the agent: ``agent_pip_spec`` (config ``AGENT_PIP_SPEC``) or the
    wheel this Portal serves (``wheel_url``, ``wheel_file``, ``wheel_sha256``; built on first
    use). Shared by the Host agent's installer and the OnDemand launcher (app/ondemand/views.py)."""
    pip_spec = current_app.config.get("AGENT_PIP_SPEC") or ""
    if pip_spec:
        return {"agent_pip_spec": pip_spec}
    built = agent_wheel.wheel_for_app(current_app)
    return {"wheel_url": _agent_wheel_url(built.filename), "wheel_file": built.filename,
            "wheel_sha256": built.sha256}


def script_response(script: str, filename: str):
    """A shell script as a download named ``filename``."""
    response = make_response(script + "\n")
    response.headers["Content-Type"] = "text/x-shellscript; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The scripts carry a key (an enrolment key, a session key): never kept by a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _agent_wheel_url(filename: str) -> str:
    """The wheel's address under the Portal's configured address, as the agent builds its own
    addresses (BASE_URL names the application root, any path prefix included)."""
    path = url_for("downloads.agent_download", filename=filename)
    return _portal_url() + path[len(request.script_root):]


@bp.get("/agent/<filename>")
def agent_download(filename: str):
    """The Host agent wheel the Linux installer downloads. Public: the installer runs on a
    machine without a session, and the wheel holds no secret (the enrolment key is in the
    script). Any name but the current build's is a 404."""
    if filename != agent_wheel.current_filename():
        raise NotFound("There is no such agent download; download the installer again.")
    wheel = agent_wheel.wheel_for_app(current_app)
    if wheel.filename != filename:  # the sources changed a moment ago
        raise NotFound("There is no such agent download; download the installer again.")
    # The file name changes with every change of the sources: a day's caching is safe.
    return send_file(wheel.path, mimetype=agent_wheel.MIMETYPE, as_attachment=True,
                     download_name=wheel.filename, etag=wheel.sha256, conditional=True,
                     max_age=24 * 3600)


@bp.post("/<int:package_id>/link/renew")
@requires("packages.manage")
def renew_link(package_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        raise ValidationError("The form expired; reload the page and try again.")
    services.renew_link(_account_id(), package_id)
    flash("The installer link was renewed; the previous link no longer works.", "success")
    return redirect(url_for("downloads.details", package_id=package_id))


@bp.route("/<int:package_id>/revoke", methods=["GET", "POST"])
@requires("packages.manage")
def revoke(package_id: int):
    account_id = _account_id()
    package = services.get_package(account_id, package_id)
    if package.revoked_at is not None:
        flash("This deployment package is revoked already.", "error")
        return redirect(url_for("downloads.details", package_id=package.id))
    form = RevokeForm()
    status = 200
    if form.validate_on_submit():
        try:
            count = services.revoke_package(account_id, package.id, form.confirmation.data)
        except ValidationError as err:
            _attach(form, err)
            status = err.status
        else:
            flash(f"{package.name} was revoked. {count} device{'s' if count != 1 else ''} can no "
                  "longer connect; they stay listed as Revoked.", "success")
            return redirect(url_for("downloads.details", package_id=package.id))
    elif form.errors:
        status = 422
    return render("downloads/revoke.html", status=status, form=form, package=package,
                  devices=services.device_count(package.id))


@bp.route("/<int:package_id>/remove", methods=["GET", "POST"])
@requires("packages.manage")
def remove(package_id: int):
    account_id = _account_id()
    package = services.get_package(account_id, package_id)
    problem = services.removal_problem(package)
    form = ConfirmForm()
    if request.method == "POST" and not problem and form.validate_on_submit():
        name = services.remove_package(account_id, package.id)
        flash(f"The deployment package {name} was removed.", "success")
        return redirect(url_for("downloads.index"))
    return render("downloads/remove.html", status=409 if problem else 200, form=form,
                  package=package, problem=problem, devices=services.device_count(package.id))


# --------------------------------------------------------------------------- public link pages
def _link_context(package: Package) -> dict:
    return {"package": package, "company_account": db.session.get(Account, package.account_id),
            "problem": services.why_not_usable(package)}


@bp.route("/link/<link_token>", methods=["GET", "POST"])
def link(link_token: str):
    """The shareable installer page: the account's logo, an "I understand" step, then the
    download. Public: the random link token is the key (renewable on the details page)."""
    package = services.find_by_link(link_token)
    form = UnderstandForm()
    context = _link_context(package)
    download_url = None
    status = 200
    if context["problem"] is None and form.validate_on_submit():
        ack = services.link_download_ack(current_app.config["SECRET_KEY"], package)
        download_url = url_for("downloads.link_install_linux", link_token=link_token, ack=ack,
                               _external=True)
    elif form.errors:
        status = 422
    # membership=None: the bare layout even for a signed-in reader (the page is for others).
    response = render("downloads/link.html", status=status, form=form, download_url=download_url,
                      membership=None, account=None, **context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/link/<link_token>/install-linux.sh")
def link_install_linux(link_token: str):
    """The Linux installer, for the address the link page's "I understand" step gave."""
    package = services.find_by_link(link_token)
    problem = services.why_not_usable(package)
    if problem:
        raise Conflict(problem)
    if not services.check_link_download_ack(current_app.config["SECRET_KEY"], package,
                                            request.args.get("ack", "")):
        raise NotFound("This download address has expired or is incomplete. Open the installer "
                       "link again and confirm the \u201cI understand\u201d step.")
    return _script_response(package)
