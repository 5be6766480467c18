"""Account configuration and profile pages."""
from flask import Blueprint

from app.access import requires
from app.common.templating import render

bp = Blueprint("account", __name__)


@bp.get("/account/configuration")
@requires("account.view")
def configuration():
    return render("account/configuration.html")


@bp.get("/profile")
@requires("profile.edit")
def profile():
    return render("account/profile.html")


@bp.get("/account/<int:account_id>/logo/<kind>")
def logo(account_id: int, kind: str):
    """An account's logo. Public (error and download pages show it); SVGs were sanitised on
    upload and are served with a sandboxing CSP as a second wall."""
    from flask import abort, make_response

    from app.extensions import db
    from app.models import Account

    account = db.session.get(Account, account_id)
    if account is None or kind not in ("wide", "square"):
        abort(404)
    data = getattr(account, f"logo_{kind}")
    if not data:
        abort(404)
    response = make_response(data)
    response.headers["Content-Type"] = getattr(account, f"logo_{kind}_type") or "application/octet-stream"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
