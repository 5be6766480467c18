"""Forms of the Downloads pages: add/edit a deployment package, revoke (typed "revoke"), the
public installer link's "I understand" step, and plain confirmations.

The device group choices are filled by the view from the account's device groups; the choice
is not checked against them here (``validate_choice=False``) because the service checks it
and gives the clearer message for an id of another account."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.common.forms import choices
from app.downloads.services import MAX_DESCRIPTION, MAX_DEVICES_LIMIT, MAX_NAME, STATE_LABELS


def _group_id(value):
    if value in (None, "", "None"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # not an id of any group: the service says so


class PackageForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter a name for the deployment package."),
                                           Length(max=MAX_NAME)])
    description = TextAreaField("Description", validators=[Length(max=MAX_DESCRIPTION)])
    valid_from = DateField("Valid from (UTC)", validators=[Optional()])
    valid_to = DateField("Valid to (UTC)", validators=[Optional()])
    max_devices = IntegerField(
        "Number of devices",
        validators=[Optional(), NumberRange(1, MAX_DEVICES_LIMIT,
                                            f"Enter a number from 1 to {MAX_DEVICES_LIMIT:,}, or leave it empty.")])
    active = BooleanField("Active", default=True)
    device_group_id = SelectField("Device group to join", choices=[], coerce=_group_id,
                                  validate_choice=False)
    enrolment_state = SelectField("Enrollment state", choices=choices(STATE_LABELS.items()),
                                  default="pending")


class RevokeForm(FlaskForm):
    confirmation = StringField("Type \u201crevoke\u201d to confirm",
                               validators=[InputRequired("Type the word revoke to confirm."), Length(max=20)],
                               render_kw={"autocomplete": "off"})


class UnderstandForm(FlaskForm):
    understand = BooleanField(
        "I understand that this installs the Tessera agent on this computer, which then lets "
        "the organisation's support staff reach it remotely.",
        validators=[DataRequired("Tick the box to confirm that you understand.")])


class ConfirmForm(FlaskForm):
    """An empty form: the CSRF token is the whole point of it."""
