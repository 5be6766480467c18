"""Forms of the Logs pages: the "Generate report" date range and the report delete button."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import InputRequired, ValidationError

# A year and a leap day: enough for any annual review, small enough to stay quick.
MAX_REPORT_DAYS = 366


class ReportForm(FlaskForm):
    """A date range in the account's timezone; both days are included."""

    date_from = DateField("From", validators=[InputRequired("Enter the first day of the report.")])
    date_to = DateField("To", validators=[InputRequired("Enter the last day of the report.")])

    def validate_date_to(self, field):
        start, end = self.date_from.data, field.data
        if start is None or end is None:
            return
        if end < start:
            raise ValidationError("The last day must be on or after the first day.")
        if (end - start).days + 1 > MAX_REPORT_DAYS:
            raise ValidationError(f"A report covers at most {MAX_REPORT_DAYS} days; choose a shorter range.")


class DeleteReportForm(FlaskForm):
    """Only the CSRF token: deleting is a POST."""
