"""Sign-in pages: step one (username), step two (password), then, where MFA applies, step three
(the emailed 6-digit code or a recovery code); forgot password and the reset link; recovery
codes; sign out; switch account.

The sign-in in progress lives in ``session["login"]`` (username, step, where to go next); only
the last step calls ``start_session()``, which drops it with the rest of the cookie session.
Every step is throttled (``app/auth/throttle.py``).
"""
from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from app.access import requires
from app.auth import recovery, services, throttle
from app.auth.forms import ActionForm, CodeForm, ForgotForm, NewPasswordForm, PasswordForm, UsernameForm
from app.auth.sessions import end_session, start_session, switch_account
from app.common.templating import base_url, render
from app.extensions import db
from app.models import User

bp = Blueprint("auth", __name__)

# A sign-in left half done is forgotten after this long.
FLOW_MAX_AGE = 30 * 60
# Freshly generated recovery codes wait in the session for the "Download" click this long, and
# only until the user opens another page.
SHOWN_CODES = "recovery_codes_shown"
SHOWN_CODES_MAX_AGE = 10 * 60


def _landing():
    from app.access import can

    return url_for("dashboard.index") if can("dashboard.view") else url_for("dashboard.my_devices")


def _safe_next(target: str | None) -> str | None:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _flow(step: str) -> dict | None:
    """The sign-in in progress, when it is at ``step`` and not stale."""
    state = session.get("login")
    if not state or state.get("step") != step:
        return None
    if time.time() - state.get("at", 0) > FLOW_MAX_AGE:
        session.pop("login", None)
        flash("That sign-in took too long. Please start again.", "error")
        return None
    return state


def _complete(user: User, state: dict, second_factor: str):
    """The last step succeeded: a new session (new id), audit, and remember this browser."""
    target = _safe_next(state.get("next"))
    start_session(user)
    services.record_sign_in(user, second_factor)
    return throttle.remember_browser(redirect(target or _landing()), user.username)


@bp.errorhandler(429)
def throttled(err):
    seconds = throttle.retry_after()
    response = render("auth/throttled.html", status=429, message=err.description,
                      minutes=max(1, -(-seconds // 60)))
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.route("/login", methods=["GET", "POST"])
@throttle.signin_limits
def login():
    if current_user.is_authenticated:
        return redirect(_landing())
    form = UsernameForm()
    if form.validate_on_submit():
        session["login"] = {"username": form.username.data.strip(), "step": "password",
                            "next": _safe_next(request.args.get("next")), "at": time.time()}
        return redirect(url_for("auth.password"))
    return render("auth/login.html", form=form)


@bp.route("/login/password", methods=["GET", "POST"])
@throttle.signin_limits
def password():
    state = _flow("password")
    if state is None:
        return redirect(url_for("auth.login"))
    form = PasswordForm()
    if form.validate_on_submit():
        user = services.check_password(state["username"], form.password.data)
        if user is None:
            form.password.errors.append("The username or password is not correct.")
            throttle.failed(state["username"])
        elif services.mfa_applies(user):
            sent = services.send_sign_in_code(user)
            session["login"] = {**state, "step": "code", "user_id": user.id, "at": time.time(),
                                "version": user.session_version,
                                "sent_to": services.masked(services.mail_address(user)) if sent else ""}
            return redirect(url_for("auth.code"))
        else:
            return _complete(user, state, "none")
    return render("auth/password.html", form=form, username=state["username"])


def _code_step_user(state: dict) -> User | None:
    """The user who passed step two, as long as their password has not changed since."""
    user = db.session.get(User, state.get("user_id"))
    if user is None or user.session_version != state.get("version"):
        return None
    return user


@bp.route("/login/code", methods=["GET", "POST"])
@throttle.signin_limits
def code():
    state = _flow("code")
    user = _code_step_user(state) if state else None
    if user is None:
        session.pop("login", None)
        return redirect(url_for("auth.login"))
    use_recovery = request.args.get("recovery") == "1"
    form = CodeForm()
    if use_recovery:
        form.code.label.text = "Recovery code"
    if form.validate_on_submit():
        result = services.check_second_factor(user, form.code.data)
        if result.ok:
            return _complete(user, state, result.method)
        form.code.errors.append(result.message)
        throttle.failed(user.username, user.primary_account_id)
    return render("auth/code.html", form=form, resend_form=ActionForm(), username=state["username"],
                  sent_to=state.get("sent_to"), use_recovery=use_recovery)


@bp.post("/login/code/resend")
@throttle.code_send_limit
def resend_code():
    state = _flow("code")
    user = _code_step_user(state) if state else None
    if user is None:
        session.pop("login", None)
        return redirect(url_for("auth.login"))
    if services.send_sign_in_code(user):
        flash("A new code is on its way. Codes sent before it no longer work.", "success")
    else:
        flash("There is no email address to send a code to: use a recovery code.", "error")
    return redirect(url_for("auth.code"))


@bp.get("/login/change-user")
def change_user():
    session.pop("login", None)
    return redirect(url_for("auth.login"))


# --- forgot password -----------------------------------------------------------------------

@bp.route("/login/forgot", methods=["GET", "POST"])
@throttle.forgot_limits
def forgot():
    if request.method == "GET":
        form = ForgotForm(data={"username": (session.get("login") or {}).get("username", "")})
    else:
        form = ForgotForm()
    asked_for = None
    if form.validate_on_submit():
        asked_for = form.username.data.strip()
        services.request_password_reset(
            asked_for, lambda token: base_url() + url_for("auth.reset", token=token))
    return render("auth/forgot.html", form=form, asked_for=asked_for)


@bp.route("/login/reset/<token>", methods=["GET", "POST"])
def reset(token: str):
    link = services.valid_reset(token)
    if link is None:
        return render("auth/reset_invalid.html", status=410)
    form = NewPasswordForm()
    if form.validate_on_submit():
        if services.reset_password(token, form.password.data) is None:
            return render("auth/reset_invalid.html", status=410)
        session.pop("login", None)
        flash("Your password was changed and every session was signed out. "
              "Sign in with the new password.", "success")
        return redirect(url_for("auth.login"))
    user = db.session.get(User, link.user_id)
    response = render("auth/reset.html", form=form, username=user.username,
                      status=422 if form.errors else 200)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- recovery codes ------------------------------------------------------------------------

@bp.before_app_request
def _forget_shown_codes():
    """Shown codes may be downloaded right after they were made, never once the user moved on."""
    if SHOWN_CODES in session and request.endpoint not in (None, "static", "auth.recovery_codes_download"):
        session.pop(SHOWN_CODES)


@bp.route("/profile/recovery-codes", methods=["GET", "POST"])
@requires("profile.edit")
def recovery_codes():
    form = ActionForm()
    codes = None
    user = current_user._get_current_object()
    if form.validate_on_submit():
        codes = recovery.generate_set(user)
        session[SHOWN_CODES] = {"user_id": user.id, "codes": codes, "at": time.time()}
    response = render("auth/recovery_codes.html", form=form, codes=codes, status_of_set=recovery.status(user))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/profile/recovery-codes.txt")
@requires("profile.edit")
def recovery_codes_download():
    shown = session.pop(SHOWN_CODES, None)
    if (not shown or shown.get("user_id") != current_user.id
            or time.time() - shown.get("at", 0) > SHOWN_CODES_MAX_AGE):
        abort(410, description="Recovery codes can be downloaded only right after they are "
                               "generated. Generate a new set to download it.")
    text = render_template("auth/recovery_codes.txt", codes=shown["codes"], user=current_user)
    response = make_response(text)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="tessera-recovery-codes.txt"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- sign out, switch account --------------------------------------------------------------

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
