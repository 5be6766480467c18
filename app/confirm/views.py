"""The answer page of an emailed confirmation (spec B8): ``/confirm-access/<id>?t=<token>``.

A member of a Confirm-access role's groups gets a link by email (``app.confirm.services.
send_emails``). The page asks them to sign in (and comes back), checks that the link was made for
them and for this request, and shows who asks for which device since when, with Allow and Deny.
The first answer wins (``services.answer``, an atomic update): later visitors see who answered
and how, or that the request expired. The relay's waiter (``app.relay.confirm``) notices within
half a second.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from app.common.templating import render
from app.confirm import services
from app.errors import TesseraError

bp = Blueprint("confirm", __name__, url_prefix="/confirm-access")


class AnswerForm(FlaskForm):
    """Only the CSRF token: the button pressed says the answer."""


def _page(row, token: str, form: AnswerForm, status: int = 200):
    response = render("confirm/answer.html", status=status, row=row, token=token, form=form,
                      expired=services.is_expired(row), pending=row.state is services.PENDING)
    response.headers["Cache-Control"] = "no-store"
    return response


def _linked_request(request_id: int, token: str):
    """The request and the signed-in user, when the link's ``token`` was made for this user and
    this request: 404 for a request outside their account, 403 for someone else's link or their
    own request, 400 for a changed or missing token."""
    user = current_user._get_current_object()
    row = services.request_for(request_id, user)
    services.check_recipient(row, token, user)
    return row, user


@bp.get("/<int:request_id>")
@login_required
def answer(request_id: int):
    token = request.args.get("t", "")
    row, _ = _linked_request(request_id, token)
    return _page(row, token, AnswerForm())


@bp.post("/<int:request_id>")
@login_required
def answer_post(request_id: int):
    token = request.form.get("t", "")
    row, user = _linked_request(request_id, token)
    form = AnswerForm()
    if not form.validate_on_submit():
        raise TesseraError("The form expired; open the link from the email again.")
    choice = request.form.get("answer")
    if choice not in ("allow", "deny"):
        raise TesseraError("Choose Allow or Deny.")
    if services.answer_by_email(row, user, choice == "allow"):
        flash("Access allowed: the session starts now." if choice == "allow" else
              "Access denied: the technician is told so.", "success")
    else:
        flash("Your answer came too late: this request had already been decided.", "error")
    return redirect(url_for("confirm.answer", request_id=request_id, t=token))
