"""Users pages: the listing, inviting, details, editing, removing one or many, resending an
invitation; and the public "set up your account" page an invitation links to.

Thin views: they read forms and query strings, call ``app.users.services`` and render. The
rules (who may edit whom, licence limits, primary-account removal) live in the services.
"""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from app.access import assignable_types, can, requires
from app.auth.sessions import start_session
from app.common.bulk import back_to_listing, selected_ids
from app.common.listing import BulkAction, Listing
from app.common.templating import render
from app.errors import Forbidden, TesseraError
from app.models import Membership, UserType, utcnow
from app.users import services
from app.users.forms import ConfirmForm, EditUserForm, InviteForm, SetupAccountForm, choices

bp = Blueprint("users", __name__, url_prefix="/users")
invite_bp = Blueprint("invites", __name__)


def _actor() -> Membership:
    return g.membership


def _type_choices() -> list[tuple[str, str]]:
    return choices((t.name, t.label) for t in assignable_types(_actor()))


def _group_field(form) -> list[int] | None:
    """Offer the account's active local user groups to those who may manage groups; the ids
    chosen (None when the field is not offered, so the member's groups stay as they are)."""
    if not can("groups.manage"):
        return None
    from app.groups.services import user_group_choices

    form.groups.choices = choices((grp.id, grp.name) for grp in user_group_choices(_actor().account_id))
    return list(form.groups.data or [])


@bp.get("/")
@requires("users.view")
def index():
    actor = _actor()
    now = utcnow()
    bulk = [BulkAction("Remove", url_for("users.remove_many"), danger=True)] if can("users.manage") else []
    if can("groups.manage"):
        bulk.insert(0, BulkAction("Add to group", url_for("groups.attach_users")))
    listing = Listing(
        "users",
        services.users_query(actor.account_id, now),
        services.user_columns(now),
        request.args,
        id_column=Membership.id,
        row_id=lambda row: row.User.id,
        default_sort="name",
        bulk_actions=bulk,
        tz=actor.account.timezone,
    )
    response = render("users/index.html", partial="listing", listing=listing,
                      status_labels=services.STATUS_LABELS, now=now)
    return listing.push_url(response)


@bp.route("/invite", methods=["GET", "POST"])
@requires("users.manage")
def invite():
    actor = _actor()
    form = InviteForm()
    form.user_type.choices = _type_choices()
    if request.method == "GET":
        form.user_type.data = UserType.user.name
    group_ids = _group_field(form)
    status = 200
    error = None
    if form.validate_on_submit():
        try:
            invitations = services.invite_users(
                actor, form.emails.data, UserType[form.user_type.data],
                default_action=form.default_action.data, enabled=form.enabled.data,
                ondemand_enabled=form.ondemand_enabled.data, mfa=form.mfa.data,
                group_ids=group_ids,
            )
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            _flash_invitations(invitations)
            return redirect(url_for("users.index"))
    elif form.errors:
        status = 422
    return render("users/invite.html", status=status, form=form, error=error,
                  counters=services.licence_counters(actor.account))


def _flash_invitations(invitations: list[services.Invitation]) -> None:
    invited = [i.membership.user.username for i in invitations if i.token]
    added = [i.membership.user.username for i in invitations if not i.token]
    failed = [i.membership.user.username for i in invitations if i.mail_failed]
    if invited:
        flash("Invitation sent to " + ", ".join(invited) + ". If it does not arrive, ask them "
              "to look in their spam folder.", "success")
    if added:
        flash("Already using Tessera in another account, so added at once and told to sign in: "
              + ", ".join(added) + ".", "success")
    if failed:
        flash("The mail could not be sent to " + ", ".join(failed) + "; use Resend invite on "
              "their details page.", "error")


@bp.get("/<int:user_id>")
@requires("users.view")
def details(user_id: int):
    actor = _actor()
    membership = services.get_member(actor.account_id, user_id)
    return render(
        "users/details.html",
        member=membership,
        user=membership.user,
        state=services.member_status(membership),
        invite=services.pending_invite(membership),
        max_sends=services.MAX_INVITE_SENDS,
        refusal=services.why_not_manage(actor, membership, "edit") if can("users.manage") else "",
        actions=services.REMOTE_ACTIONS,
        form=ConfirmForm(),
        now=utcnow(),
    )


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@requires("users.manage")
def edit(user_id: int):
    actor = _actor()
    membership = services.get_member(actor.account_id, user_id)
    refusal = services.why_not_manage(actor, membership, "edit")
    if refusal:
        raise Forbidden(refusal)
    user = membership.user
    form = EditUserForm()
    form.user_type.choices = _type_choices()
    if request.method == "GET":
        form.first_name.data, form.last_name.data, form.email.data = user.first_name, user.last_name, user.email
        form.user_type.data = membership.type.name
        form.enabled.data, form.ondemand_enabled.data = membership.enabled, membership.ondemand_enabled
        form.mfa.data, form.default_action.data = user.mfa_enabled, membership.default_action
        if can("groups.manage"):
            from app.groups.services import groups_of_membership

            form.groups.data = [grp.id for grp in groups_of_membership(membership)]
    group_ids = _group_field(form)
    status, error = 200, None
    if form.validate_on_submit():
        try:
            services.update_member(
                actor, user_id, first_name=form.first_name.data, last_name=form.last_name.data,
                email=form.email.data, user_type=UserType[form.user_type.data],
                enabled=form.enabled.data, ondemand_enabled=form.ondemand_enabled.data,
                mfa=form.mfa.data, default_action=form.default_action.data,
                group_ids=group_ids,
            )
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            flash("The changes were saved.", "success")
            return redirect(url_for("users.details", user_id=user_id))
    elif form.errors:
        status = 422
    return render("users/edit.html", status=status, form=form, member=membership, user=user, error=error)


@bp.route("/<int:user_id>/remove", methods=["GET", "POST"])
@requires("users.manage")
def remove(user_id: int):
    return _remove([user_id], confirmed=request.method == "POST")


@bp.post("/remove")
@requires("users.manage")
def remove_many():
    ids = selected_ids()
    if not ids:
        flash("Select at least one user first.", "error")
        return redirect(back_to_listing("users.index"))
    return _remove(ids, confirmed=request.form.get("confirm") == "yes")


def _remove(ids: list[int], confirmed: bool):
    """Step one shows who would go (and who may not); step two, confirmed, removes."""
    actor = _actor()
    form = ConfirmForm()
    targets, problems = services.removal_problems(actor, ids)
    if confirmed and not problems and form.validate_on_submit():
        result = services.remove_members(actor, ids)
        flash(result.message, "success")
        return redirect(back_to_listing("users.index") if len(ids) > 1 or "next" in request.form else url_for("users.index"))
    return render("users/remove.html", status=403 if problems else 200, targets=targets,
                  problems=problems, form=form, next=back_to_listing("users.index"))


@bp.post("/<int:user_id>/resend-invite")
@requires("users.manage")
def resend_invite(user_id: int):
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            invite = services.resend_invite(_actor(), user_id)
        except TesseraError as err:
            flash(err.message, "error")
        else:
            flash(f"The invitation was sent again ({invite.sent_count} of "
                  f"{services.MAX_INVITE_SENDS}); the new link is valid for 7 days.", "success")
    return redirect(url_for("users.details", user_id=user_id))


@invite_bp.route("/invite/<token>", methods=["GET", "POST"])
def accept(token: str):
    """Set up your account: the page an invitation mail links to. Public: the token is the key."""
    invite = services.find_invite(token)
    membership = invite.membership
    form = SetupAccountForm()
    status, error = 200, None
    if form.validate_on_submit():
        try:
            membership = services.accept_invite(token, form.first_name.data, form.last_name.data,
                                                form.password.data)
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            start_session(membership.user, membership.account_id)
            flash(f"Welcome to {membership.account.company}.", "success")
            landing = "dashboard.index" if can("dashboard.view") else "dashboard.my_devices"
            return redirect(url_for(landing))
    elif form.errors:
        status = 422
    inviter = membership.created_by
    return render("users/setup_account.html", status=status, form=form, error=error,
                  company=membership.account.company, username=membership.user.username,
                  inviter=inviter.display_name if inviter is not None else None)
