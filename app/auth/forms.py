"""Sign-in and password forms (Flask-WTF, so every one carries a CSRF token).

``NewPasswordForm`` and the ``StrongPassword`` validator are shared: the forgot-password reset
page uses them here, and "set up your account" and "change password" import them
(``from app.auth.forms import NewPasswordForm``) and render the fields with
``templates/auth/_password_fields.html``.
"""
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from app.auth.passwords import RULES, password_problems


class StrongPassword:
    """WTForms validator for the password rules of :mod:`app.auth.passwords`."""

    def __call__(self, form, field):
        problems = password_problems(field.data or "")
        if problems:
            raise ValidationError("The password needs " + ", ".join(problems) + ".")


class UsernameForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired("Enter your username."), Length(max=320)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none",
                                      "spellcheck": "false"})


class PasswordForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1000)],
                             render_kw={"autocomplete": "current-password"})


class CodeForm(FlaskForm):
    """Step three. ``code`` takes the emailed 6-digit code or, just as well, a recovery code."""

    code = StringField("Email code", validators=[DataRequired("Enter the code."), Length(max=40)],
                       render_kw={"autocomplete": "one-time-code", "autocapitalize": "none",
                                  "spellcheck": "false"})


class ActionForm(FlaskForm):
    """A form with nothing but its CSRF token, for buttons that POST (send a new code,
    generate recovery codes)."""


class ForgotForm(FlaskForm):
    username = StringField("Username or email", validators=[DataRequired("Enter your username or email."),
                                                            Length(max=320)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none",
                                      "spellcheck": "false"})


class NewPasswordForm(FlaskForm):
    """A new password typed twice, checked against the rules. The ``data-strength`` attribute
    turns on the strength meter of ``static/js/password-strength.js``."""

    rules = RULES

    password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password."), Length(max=1000), StrongPassword()],
        render_kw={"autocomplete": "new-password", "data-strength": True},
    )
    confirm = PasswordField(
        "Repeat the new password",
        validators=[DataRequired("Repeat the new password."),
                    EqualTo("password", "The two passwords are not the same.")],
        render_kw={"autocomplete": "new-password"},
    )
