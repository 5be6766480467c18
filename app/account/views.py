"""Profile (everyone), account memberships (aliases, primary account), account configuration
(administrators read it, the owner edits it) and the public logo route.

Thin views: parse the form, call ``app.account.services``, render or redirect. A service's
ValidationError is shown on the field it names and answered with 422; nothing was written.
"""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user

from app.access import can, requires
from app.account import services
from app.account.forms import (
    AccountForm,
    ChangeOwnerForm,
    ChangePasswordForm,
    LogoForm,
    MembershipsForm,
    ProfileForm,
    RemoveLogoForm,
    choices,
)
from app.account.logos import KINDS, MAX_BYTES
from app.common.templating import render
from app.dashboard.nav import link_if_allowed
from app.errors import Conflict, ValidationError
from app.extensions import db
from app.models import Account

bp = Blueprint("account", __name__)


def _attach(form, err: ValidationError | Conflict) -> None:
    """Show a service's complaint on the field it names (or on the form as a whole)."""
    field = getattr(form, err.field, None) if err.field else None
    if field is not None:
        field.errors = [*field.errors, err.message]
    else:
        form.form_errors.append(err.message)


# --- profile -------------------------------------------------------------------------------

def _my_memberships():
    return sorted(current_user.memberships, key=lambda m: m.account.company.lower())


def _profile_form(formdata=True) -> ProfileForm:
    membership = g.membership
    user = current_user
    if formdata:
        form = ProfileForm()
    else:
        form = ProfileForm(formdata=None, data={
            "first_name": user.first_name, "last_name": user.last_name, "email": user.email,
            "mfa_enabled": user.mfa_enabled, "default_action": membership.default_action,
        })
    form.set_choices(services.action_label(membership.account.default_action))
    if user.is_directory_user:
        del form.email  # it comes from the directory
    return form


def _memberships_form(formdata=True) -> MembershipsForm:
    if formdata:
        form = MembershipsForm()
    else:
        form = MembershipsForm(formdata=None, data={
            "aliases": [{"account_id": m.account_id, "alias": m.alias} for m in _my_memberships()],
            "primary": current_user.primary_account_id,
        })
    form.primary.choices = choices((m.account_id, m.account.company) for m in _my_memberships() if m.enabled)
    return form


def _profile_page(status: int = 200, **forms):
    membership = g.membership
    profile_form = forms.get("profile_form") or _profile_form(formdata=False)
    password_form = forms.get("password_form") or ChangePasswordForm(formdata=None)
    memberships_form = forms.get("memberships_form") or _memberships_form(formdata=False)
    by_account = {m.account_id: m for m in current_user.memberships}
    rows = []
    for entry in memberships_form.aliases:
        try:
            rows.append((entry, by_account[int(entry.account_id.data)]))
        except (KeyError, TypeError, ValueError):
            continue
    return render(
        "account/profile.html",
        status=status,
        user=current_user,
        profile_form=profile_form,
        password_form=password_form,
        memberships_form=memberships_form,
        membership_rows=rows,
        mfa_mode=services.mfa_mode(membership),
        action_label=services.action_label,
        effective_action=services.action_label(services.effective_remote_action(membership)),
        recovery_codes_url=link_if_allowed("auth.recovery_codes"),
        open_section=forms.get("open_section"),
    )


@bp.get("/profile")
@requires("profile.edit")
def profile():
    return _profile_page()


@bp.post("/profile")
@requires("profile.edit")
def profile_save():
    form = _profile_form()
    if form.validate_on_submit():
        try:
            changed = services.update_profile(
                current_user, g.membership,
                first_name=form.first_name.data or "", last_name=form.last_name.data or "",
                email=form.email.data if "email" in form else current_user.email,
                mfa_enabled=bool(form.mfa_enabled.data), default_action=form.default_action.data or "",
            )
        except ValidationError as err:
            _attach(form, err)
        else:
            flash("Your profile was saved." if changed else "Nothing to change: your profile is as it was.",
                  "success")
            return redirect(url_for("account.profile"))
    return _profile_page(422, profile_form=form, open_section="edit")


@bp.post("/profile/password")
@requires("profile.edit")
def profile_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_user, form.current_password.data, form.password.data,
                                     form.confirm.data)
        except ValidationError as err:
            _attach(form, err)
        else:
            flash("Your password was changed. Every other browser signed in as you was signed out.",
                  "success")
            return redirect(url_for("account.profile"))
    return _profile_page(422, password_form=form, open_section="password")


@bp.post("/profile/accounts")
@requires("profile.edit")
def profile_accounts():
    form = _memberships_form()
    if form.validate_on_submit():
        try:
            aliases = {int(entry.account_id.data): entry.alias.data or "" for entry in form.aliases}
        except (TypeError, ValueError):
            abort(400, "The account list was damaged; reload the page and try again.")
        try:
            services.update_memberships(current_user, aliases, form.primary.data)
        except ValidationError as err:
            _attach(form, err)
        else:
            flash("Your accounts were saved.", "success")
            return redirect(url_for("account.profile"))
    return _profile_page(422, memberships_form=form, open_section="accounts")


# --- account configuration -----------------------------------------------------------------

def _member_url(membership) -> str | None:
    """A link to a member's details page (the users feature's), when the reader may open it."""
    if membership is None:
        return None
    return link_if_allowed("users.details", user_id=membership.user_id)


def _account_form(account: Account, formdata=True) -> AccountForm:
    if formdata:
        return AccountForm()
    return AccountForm(formdata=None, obj=account)


def _configuration_page(status: int = 200, **forms):
    account = g.membership.account
    editable = can("account.configure")
    logo_forms = {kind: (forms.get(f"logo_{kind}") or LogoForm(formdata=None, prefix=kind)) for kind in KINDS}
    candidates = services.owner_candidates(account) if editable else []
    owner_form = forms.get("owner_form") or ChangeOwnerForm(formdata=None)
    owner_form.new_owner.choices = choices([(0, "Choose a user…")] + [
        (m.user_id, f"{m.user.display_name} ({m.user.username}) · {m.type.label}") for m in candidates])
    admins = [(m, _member_url(m)) for m in services.administrators(account)]
    return render(
        "account/configuration.html",
        status=status,
        editable=editable,
        account_form=forms.get("account_form") or (_account_form(account, formdata=False) if editable else None),
        owner_form=owner_form,
        logo_forms=logo_forms,
        remove_form=RemoveLogoForm(formdata=None),
        kinds=KINDS,
        max_mb=f"{MAX_BYTES / (1024 * 1024):.1f}",
        administrators=admins,
        candidates=candidates,
        owner_url=_member_url(next((m for m in account.memberships if m.user_id == account.owner_id), None)),
        action_label=services.action_label,
        open_section=forms.get("open_section"),
    )


@bp.get("/account/configuration")
@requires("account.view")
def configuration():
    return _configuration_page()


@bp.post("/account/configuration")
@requires("account.configure")
def configuration_save():
    account = g.membership.account
    form = _account_form(account)
    if form.validate_on_submit():
        try:
            changed = services.update_account(
                account, company=form.company.data or "", contact_name=form.contact_name.data or "",
                contact_email=form.contact_email.data or "", contact_phone=form.contact_phone.data or "",
                timezone=form.timezone.data or "", default_action=form.default_action.data or "")
        except (ValidationError, Conflict) as err:
            db.session.rollback()
            _attach(form, err)
        else:
            flash("The account details were saved." if changed else "Nothing to change.", "success")
            return redirect(url_for("account.configuration"))
    return _configuration_page(422, account_form=form, open_section="details")


@bp.post("/account/configuration/owner")
@requires("account.configure")
def configuration_owner():
    account = g.membership.account
    form = ChangeOwnerForm()
    if form.validate_on_submit():
        try:
            new_owner = services.change_owner(account, current_user._get_current_object(),
                                              form.new_owner.data, form.confirm.data or "")
        except ValidationError as err:
            _attach(form, err)
        else:
            # Every session of the old owner is gone, this one included: sign in again.
            g.pop("user_session", None)
            logout_user()
            session.clear()
            flash(f"{new_owner.display_name} now owns {account.company}. You are an account "
                  "administrator now; sign in again to continue.", "success")
            return redirect(url_for("auth.login"))
    return _configuration_page(422, owner_form=form, open_section="owner")


@bp.post("/account/configuration/logo/<kind>")
@requires("account.configure")
def configuration_logo(kind: str):
    if kind not in KINDS:
        abort(404)
    account = g.membership.account
    form = LogoForm(prefix=kind)
    if form.validate_on_submit():
        try:
            services.set_logo(account, kind, form.file.data.read(MAX_BYTES + 1))
        except ValidationError as err:
            _attach(form, err)
        else:
            flash(f"The {KINDS[kind].label.lower()} was uploaded.", "success")
            return redirect(url_for("account.configuration"))
    return _configuration_page(422, **{f"logo_{kind}": form}, open_section=f"logo-{kind}")


@bp.post("/account/configuration/logo/<kind>/remove")
@requires("account.configure")
def configuration_logo_remove(kind: str):
    if kind not in KINDS:
        abort(404)
    form = RemoveLogoForm()
    if not form.validate_on_submit():
        abort(400)
    services.remove_logo(g.membership.account, kind)
    flash(f"The {KINDS[kind].label.lower()} was removed.", "success")
    return redirect(url_for("account.configuration"))


@bp.get("/account/<int:account_id>/logo/<kind>")
def logo(account_id: int, kind: str):
    """An account's logo. Public (error and download pages show it); SVGs were sanitised on
    upload and are served with a sandboxing CSP as a second wall."""
    account = db.session.get(Account, account_id)
    if account is None or kind not in KINDS:
        abort(404)
    data = getattr(account, f"logo_{kind}")
    if not data:
        abort(404)
    response = make_response(data)
    response.headers["Content-Type"] = getattr(account, f"logo_{kind}_type") or "application/octet-stream"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    # Revalidated on each use (a 304 while it is unchanged), so a new logo shows at once.
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)
