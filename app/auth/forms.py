"""Sign-in forms."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class UsernameForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired("Enter your username."), Length(max=320)])


class PasswordForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=1000)])
