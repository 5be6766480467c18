"""Account security page (E1): MFA disabled / per user / enforced, and audit logging on/off.
Administrators and up (``security.manage``)."""
from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user

from app.access import current_membership, requires
from app.common.templating import render
from app.models.accounts import MfaPolicy
from app.security import services
from app.security.forms import AccountSecurityForm

bp = Blueprint("security", __name__, url_prefix="/security")


@bp.route("/account", methods=["GET", "POST"])
@requires("security.manage")
def account_security():
    account = current_membership().account
    form = AccountSecurityForm(data={"mfa_policy": account.mfa_policy.value,
                                     "audit_enabled": account.audit_enabled})
    if form.validate_on_submit():
        changed = services.update_account_security(
            account.id, current_user._get_current_object(), MfaPolicy(form.mfa_policy.data),
            form.audit_enabled.data)
        flash("Account security saved." if changed else "Nothing changed.", "success")
        return redirect(url_for("security.account_security"))
    return render("security/account_security.html", form=form, account=account,
                  policy_label=services.POLICY_LABELS[account.mfa_policy],
                  status=422 if form.errors else 200)
