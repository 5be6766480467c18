"""Account security page."""
from flask import Blueprint

from app.access import requires
from app.common.templating import render

bp = Blueprint("security", __name__, url_prefix="/security")


@bp.get("/account")
@requires("security.manage")
def account_security():
    return render("security/account_security.html")
