"""Users pages."""
from flask import Blueprint, g
from sqlalchemy import select

from app.access import requires
from app.common.templating import render
from app.extensions import db
from app.models import Membership

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.get("/")
@requires("users.view")
def index():
    memberships = db.session.scalars(
        select(Membership).where(Membership.account_id == g.membership.account_id)
    ).all()
    return render("users/index.html", memberships=memberships)
