"""Forms of the Groups pages. Fields check shape only; names, kinds, uniqueness and which
ids belong to the account are the services' rules (the command line meets the same ones)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.common.forms import choices
from app.models import GroupKind


class GroupForm(FlaskForm):
    kind = SelectField("Kind", choices=choices((k.value, k.label) for k in GroupKind),
                       default=GroupKind.user.value)
    name = StringField("Name", validators=[DataRequired("Enter a name for the group."), Length(max=200)])
    directory_ref = StringField("Directory reference", validators=[Length(max=500)])
    description = TextAreaField("Description (optional)", validators=[Length(max=2000)])
    active = BooleanField("Active", default=True)


class PickGroupForm(FlaskForm):
    """The second step of "Add to group" from the Users or Devices listing."""

    group = SelectField("Group", choices=[], coerce=int, validate_choice=False)
