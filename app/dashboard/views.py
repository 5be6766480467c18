"""Dashboard and My devices."""
from flask import Blueprint, redirect, url_for
from flask_login import current_user

from app.access import can, requires
from app.common.templating import render

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("dashboard.index") if can("dashboard.view") else url_for("dashboard.my_devices"))


@bp.get("/dashboard")
@requires("dashboard.view")
def index():
    return render("dashboard/index.html")


@bp.get("/my-devices")
@requires("devices.mine")
def my_devices():
    return render("dashboard/my_devices.html")
