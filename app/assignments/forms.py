"""Forms of the Role assignments, Schedules and Check permissions pages.

Choices (roles, groups, schedules, timezones) are filled by the views from the account. The
select fields do not check their choices themselves (``validate_choice=False``): the services
check every id against the account and say clearly what is wrong, for the forms and the CLI
alike.
"""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (BooleanField, DateField, IntegerField, SelectField, SelectMultipleField, StringField,
                     TextAreaField, TimeField)
from wtforms.validators import Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.assignments.schedule import DAILY_MODES, WEEKDAY_NAMES
from app.common.forms import choices

RECURRENCES = (("none", "No recurrence"), ("daily", "Daily"), ("weekly", "Weekly"),
               ("monthly", "Monthly"), ("yearly", "Yearly"))
MONTH_DAYS = [("0", "The last day")] + [(str(d), str(d)) for d in range(1, 32)]


class _Select(SelectField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validate_choice", False)
        super().__init__(*args, **kwargs)


class _MultiSelect(SelectMultipleField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validate_choice", False)
        kwargs.setdefault("coerce", int)
        super().__init__(*args, **kwargs)


class _Checkboxes(_MultiSelect):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AssignmentForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    active = BooleanField("Active (this role assignment is active)", default=True)
    role = _Select("Role", choices=[])
    everyone = BooleanField("Everyone")
    user_groups = _MultiSelect("User groups", choices=[])
    everything = BooleanField("Everything")
    device_groups = _MultiSelect("Device groups", choices=[])
    schedule = _Select("Schedule", choices=[])
    description = TextAreaField("Description (optional)", validators=[Length(max=2000)])


class ScheduleForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    start_date = DateField("Start date", validators=[Optional()])
    all_day = BooleanField("All day", default=True)
    start_time = TimeField("Start time", validators=[Optional()])
    end_time = TimeField("End time", validators=[Optional()])
    timezone = _Select("Timezone", choices=[])
    recurrence = _Select("Recurrence", choices=choices(RECURRENCES), default="none")
    daily_mode = _Select("Daily: which days", choices=choices(DAILY_MODES.items()), default="every_n")
    interval = IntegerField("Every N (days, weeks, months or years)", default=1,
                            validators=[Optional(), NumberRange(1, 999, "The interval must be from 1 to 999.")])
    weekdays = _Checkboxes("Weekly: on these days", choices=choices((i, n) for i, n in enumerate(WEEKDAY_NAMES)))
    month_day = _Select("Monthly: on day", choices=choices(MONTH_DAYS), default="1")
    end_date = DateField("End date (optional)", validators=[Optional()])


class BulkScheduleForm(FlaskForm):
    schedule = _Select("Schedule", choices=[])


class ConfirmForm(FlaskForm):
    """An empty form: the CSRF token is the whole point of it."""


class CheckForm(FlaskForm):
    """A read-only question asked with GET, so shareable as a link: no CSRF token."""

    class Meta:
        csrf = False

    user = StringField("User (username)", validators=[Length(max=320)])
    device = StringField("Device (hostname, alias or #id)", validators=[Length(max=255)])
    date = DateField("Date", validators=[Optional()])
    time = TimeField("Time", validators=[Optional()])
    timezone = _Select("Timezone", choices=[])
