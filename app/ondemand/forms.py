"""Forms of the OnDemand pages: "Create session" and Reject (the CSRF token is the point), the
link's email address, the public key entry and the link page's "I understand" step."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, StringField
from wtforms.validators import DataRequired, InputRequired, Length


class ConfirmForm(FlaskForm):
    """An empty form: the CSRF token is the whole point of it."""


class EmailLinkForm(FlaskForm):
    # Checked by the service (app.users.services.normalise_email), which gives the clearer message.
    email = EmailField("Send the link to", validators=[InputRequired("Enter the email address to send the link to."),
                                                       Length(max=320)],
                       render_kw={"autocomplete": "email", "placeholder": "name@example.com"})


class KeyForm(FlaskForm):
    key = StringField("Session key", validators=[InputRequired("Type the 9-digit key the technician gave you."),
                                                 Length(max=40)],
                      render_kw={"autocomplete": "off", "inputmode": "numeric", "placeholder": "123 456 789",
                                 "spellcheck": "false"})


class UnderstandForm(FlaskForm):
    understand = BooleanField(
        "I understand that the technician will be able to see this computer's screen and, if I "
        "allow it, use its keyboard and mouse, until I end the session.",
        validators=[DataRequired("Tick the box to confirm that you understand.")])
