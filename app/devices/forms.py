"""Forms of the Devices pages. The group choices are filled by the view from the account's
device groups; they are not checked here (``validate_choice=False``) because the service checks
them and says clearly when an id is not a device group of this account."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField, TextAreaField
from wtforms.validators import Length

from app.devices.services import MAX_ALIAS, MAX_DESCRIPTION


def _ids(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1  # no group has this id: the service refuses it


class DeviceForm(FlaskForm):
    alias = StringField("Alias", validators=[Length(max=MAX_ALIAS)])
    description = TextAreaField("Description", validators=[Length(max=MAX_DESCRIPTION)])
    groups = SelectMultipleField("Device groups", choices=[], coerce=_ids, validate_choice=False)


class ConfirmForm(FlaskForm):
    """An empty form: the CSRF token is the whole point of it."""
