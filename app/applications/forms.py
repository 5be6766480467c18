"""The application form (add and edit). Shape only; names and limits are the services' rules."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class ApplicationForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter a name for the application."), Length(max=200)])
    enabled = BooleanField("Enabled", default=True)
    path = StringField("Path (optional)", validators=[Length(max=1000)])
    executable = StringField("Executable", validators=[
        DataRequired("Enter the executable's file name, for instance notepad.exe."), Length(max=255)])
    description = TextAreaField("Description (optional)", validators=[Length(max=2000)])
