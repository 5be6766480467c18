"""The role form: one form for every role type (add, edit and copy share it). Each type's
part only counts when that type is chosen; ``app.roles.services`` checks the rules (keys that
belong to the type, client types, confirmation targets, applications of this account)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from app.common.forms import choices
from app.models import RoleType
from app.models.roles import CLIENT_TYPES, DEVICE_PERMISSIONS, ONDEMAND_PERMISSIONS
from app.roles.services import CLIENT_TYPE_LABELS, RoleInput, permission_label


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes. Choices are not checked by the field: the services give a
    clearer answer for a value that does not belong."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validate_choice", False)
        super().__init__(*args, **kwargs)



class RoleForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Enter a name for the role."), Length(max=200)])
    type = SelectField("Type", choices=choices((t.value, t.label) for t in RoleType),
                       default=RoleType.device.value)
    description = TextAreaField("Description (optional)", validators=[Length(max=2000)])
    device_permissions = MultiCheckboxField(
        "Permissions", choices=choices((p, permission_label(p)) for p in DEVICE_PERMISSIONS))
    client_types = MultiCheckboxField(
        "Client types", choices=choices((c, CLIENT_TYPE_LABELS[c]) for c in CLIENT_TYPES))
    ondemand_permissions = MultiCheckboxField(
        "Permissions", choices=choices((p, permission_label(p)) for p in ONDEMAND_PERMISSIONS))
    confirm_on_host = BooleanField("Confirm on the device: the person at the device allows or denies the session")
    confirm_by_email = BooleanField("Confirm by email: members of the chosen user groups get a link to allow or deny")
    confirm_groups = SelectMultipleField("User groups that receive the confirmation emails",
                                         coerce=int, validate_choice=False)
    email_only_when_host_unanswered = BooleanField("Send the emails only when nobody at the device answers")
    applications = MultiCheckboxField("Whitelisted applications", coerce=int)
    except_when_locked = BooleanField("Except when the computer is locked")
    except_when_nobody_logged_in = BooleanField("Except when nobody is logged in")

    def fill(self, spec: RoleInput) -> None:
        """Show ``spec`` (edit and copy start from the role)."""
        self.name.data, self.type.data, self.description.data = spec.name, spec.type.value, spec.description
        if spec.type is RoleType.device:
            self.device_permissions.data = list(spec.permissions)
        if spec.type is RoleType.ondemand:
            self.ondemand_permissions.data = list(spec.permissions)
        self.client_types.data = list(spec.client_types)
        self.confirm_on_host.data, self.confirm_by_email.data = spec.confirm_on_host, spec.confirm_by_email
        self.confirm_groups.data = list(spec.confirm_group_ids)
        self.email_only_when_host_unanswered.data = spec.email_only_when_host_unanswered
        self.applications.data = list(spec.application_ids)
        self.except_when_locked.data = spec.except_when_locked
        self.except_when_nobody_logged_in.data = spec.except_when_nobody_logged_in

    def to_input(self) -> RoleInput:
        from app.roles.services import parse_type

        kind = parse_type(self.type.data)
        permissions = (self.device_permissions.data if kind is RoleType.device
                       else self.ondemand_permissions.data if kind is RoleType.ondemand else [])
        return RoleInput(
            name=self.name.data or "", type=kind, description=self.description.data or "",
            permissions=list(permissions or []), client_types=list(self.client_types.data or []),
            confirm_on_host=self.confirm_on_host.data, confirm_by_email=self.confirm_by_email.data,
            confirm_group_ids=list(self.confirm_groups.data or []),
            except_when_locked=self.except_when_locked.data,
            except_when_nobody_logged_in=self.except_when_nobody_logged_in.data,
            email_only_when_host_unanswered=self.email_only_when_host_unanswered.data,
            application_ids=list(self.applications.data or []),
        )
