"""Forms of the profile and account configuration pages (Flask-WTF: every one carries CSRF).

Fields check shape only (required, length); the rules that need the database or the account
(email syntax and uniqueness, timezone names, owner candidates) live in ``services.py`` so the
CLI and tests meet the same ones.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, Length

from app.account.services import REMOTE_ACTIONS, timezone_choices
from app.common.forms import choices
from app.auth.forms import NewPasswordForm


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ProfileForm(FlaskForm):
    first_name = StringField("First name", filters=[_strip], validators=[Length(max=100)])
    last_name = StringField("Last name", filters=[_strip], validators=[Length(max=100)])
    email = StringField("Email", filters=[_strip],
                        validators=[DataRequired("Enter your email address."), Length(max=320)])
    mfa_enabled = BooleanField("Ask for an email code when I sign in")
    default_action = SelectField("Default remote control action", choices=[], validate_choice=False)

    def set_choices(self, account_default_label: str) -> None:
        self.default_action.choices = choices([("", f"Account default ({account_default_label})"),
                                               *REMOTE_ACTIONS])


class ChangePasswordForm(NewPasswordForm):
    """The shared new-password fields (rules, strength meter) plus the current password."""

    current_password = PasswordField("Current password", validators=[
        DataRequired("Enter your current password."), Length(max=1000)])


class AliasEntry(Form):
    """One membership row: which account, and the alias the user gives it."""

    account_id = HiddenField()
    alias = StringField("Alias", filters=[_strip], validators=[Length(max=100, message="At most 100 characters.")])


class MembershipsForm(FlaskForm):
    aliases = FieldList(FormField(AliasEntry))
    primary = RadioField("Primary account", coerce=int, validate_choice=False,
                         validators=[DataRequired("Choose your primary account.")])


class AccountForm(FlaskForm):
    company = StringField("Company", filters=[_strip],
                          validators=[DataRequired("Enter the company name."), Length(max=200)])
    contact_name = StringField("Contact name", filters=[_strip], validators=[Length(max=200)])
    contact_email = StringField("Contact email", filters=[_strip], validators=[Length(max=320)])
    contact_phone = StringField("Contact phone", filters=[_strip], validators=[Length(max=50)])
    timezone = SelectField("Timezone", validate_choice=False,
                           validators=[DataRequired("Choose a timezone.")])
    default_action = SelectField("Default remote control action", choices=choices(REMOTE_ACTIONS),
                                 validate_choice=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = choices(timezone_choices())


class ChangeOwnerForm(FlaskForm):
    new_owner = SelectField("New account owner", coerce=int, validate_choice=False,
                            validators=[DataRequired("Choose the new owner.")])
    confirm = StringField("Type the company name to confirm", filters=[_strip],
                          validators=[DataRequired("Type the company name to confirm."), Length(max=200)])


class LogoForm(FlaskForm):
    file = FileField("Image file", validators=[FileRequired("Choose an image file to upload.")])


class RemoveLogoForm(FlaskForm):
    """Only the CSRF token: the logo to remove is in the URL."""
