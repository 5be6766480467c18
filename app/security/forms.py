"""The account security form (E1)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField
from wtforms.validators import InputRequired

from app.common.forms import choices
from app.models.accounts import MfaPolicy
from app.security.services import POLICY_LABELS


class AccountSecurityForm(FlaskForm):
    mfa_policy = SelectField(
        "Multi-factor authentication (email code)",
        choices=choices((policy.value, label) for policy, label in POLICY_LABELS.items()),
        validators=[InputRequired("Choose how multi-factor authentication applies.")],
        validate_choice=True,
    )
    audit_enabled = BooleanField("Audit logging: record sign-ins and changes in the logs")
