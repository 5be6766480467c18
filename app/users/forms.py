"""Forms of the Users pages and of "set up your account" (the invitation landing page).

The user type choices are filled by the view from ``app.access.assignable_types`` so a form
never offers a type its user may not give."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from app.auth.forms import NewPasswordForm

from app.users.services import REMOTE_ACTIONS


from app.common.forms import choices  # noqa: F401  (views import it from here too)


def _action_choices():
    return choices(REMOTE_ACTIONS.items())


class InviteForm(FlaskForm):
    emails = TextAreaField(
        "Email addresses",
        validators=[DataRequired("Enter at least one email address."), Length(max=20000)],
    )
    user_type = SelectField("User type", choices=[])
    default_action = SelectField("Default remote control action", choices=_action_choices(), default="")
    enabled = BooleanField("Enabled", default=True)
    ondemand_enabled = BooleanField("OnDemand sessions")
    mfa = BooleanField("Multi-factor authentication")
    # Active local user groups of the account (filled by the view for those who may manage
    # groups); the services say clearly when an id is not one of them.
    groups = SelectMultipleField("Groups (optional)", coerce=int, validate_choice=False)


class EditUserForm(FlaskForm):
    first_name = StringField("First name", validators=[Length(max=100)])
    last_name = StringField("Last name", validators=[Length(max=100)])
    email = EmailField("Email", validators=[Length(max=320)])
    user_type = SelectField("User type", choices=[])
    enabled = BooleanField("Enabled")
    ondemand_enabled = BooleanField("OnDemand sessions")
    mfa = BooleanField("Multi-factor authentication")
    default_action = SelectField("Default remote control action", choices=_action_choices())
    groups = SelectMultipleField("Groups", coerce=int, validate_choice=False)


class ConfirmForm(FlaskForm):
    """An empty form: the CSRF token is the whole point of it."""


class SetupAccountForm(NewPasswordForm):
    """"Set up your account": names, then the shared new-password fields (rules, strength
    meter) of the sign-in forms."""

    first_name = StringField("First name", validators=[DataRequired("Enter your first name."), Length(max=100)],
                             render_kw={"autocomplete": "given-name"})
    last_name = StringField("Last name", validators=[DataRequired("Enter your last name."), Length(max=100)],
                            render_kw={"autocomplete": "family-name"})
