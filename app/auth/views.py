"""Sign-in pages: step one (username), step two (password), then the email code or a recovery
code where MFA applies; sign out; switch account."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, session, url_for
from flask_login import current_user, login_required

from app.auth import services
from app.auth.forms import PasswordForm, UsernameForm
from app.auth.sessions import end_session, start_session, switch_account
from app.common.templating import render

bp = Blueprint("auth", __name__)


def _landing():
    from app.access import can

    return url_for("dashboard.index") if can("dashboard.view") else url_for("dashboard.my_devices")


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_landing())
    form = UsernameForm()
    if form.validate_on_submit():
        session["login"] = {"username": form.username.data.strip(), "step": "password",
                            "next": _safe_next(request.args.get("next"))}
        return redirect(url_for("auth.password"))
    return render("auth/login.html", form=form)


@bp.route("/login/password", methods=["GET", "POST"])
def password():
    state = session.get("login")
    if not state or state.get("step") != "password":
        return redirect(url_for("auth.login"))
    form = PasswordForm()
    if form.validate_on_submit():
        user = services.check_password(state["username"], form.password.data)
        if user is None:
            form.password.errors.append("The username or password is not correct.")
        else:
            start_session(user)
            services.record_sign_in(user)
            return redirect(_safe_next(state.get("next")) or _landing())
    return render("auth/password.html", form=form, username=state["username"])


@bp.get("/login/change-user")
def change_user():
    session.pop("login", None)
    return redirect(url_for("auth.login"))


@bp.post("/logout")
@login_required
def logout():
    services.record_sign_out(current_user)
    end_session()
    flash("You have signed out.")
    return redirect(url_for("auth.login"))


@bp.post("/switch-account/<int:account_id>")
@login_required
def switch(account_id: int):
    if not switch_account(current_user, account_id):
        flash("You are not a member of that account.", "error")
    return redirect(_landing())
