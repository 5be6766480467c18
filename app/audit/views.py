"""Logs page and reports."""
from flask import Blueprint

from app.access import requires
from app.common.templating import render

bp = Blueprint("audit", __name__, url_prefix="/logs")


@bp.get("/")
@requires("logs.view")
def index():
    return render("audit/index.html")
