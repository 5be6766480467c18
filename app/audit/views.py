"""Logs pages: the account's audit events and the CSV reports over a date range.

Thin views: the rules (date ranges, files, account isolation) live in ``app/audit/reports.py``.
Everything is scoped to the signed-in membership's account; another account's report is a 404.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, flash, g, redirect, request, send_file, url_for
from flask_login import current_user

from app.access import requires
from app.audit import reports as report_service
from app.audit import services as audit_service
from app.audit.forms import DeleteReportForm, ReportForm
from app.common.listing import Listing
from app.common.templating import render
from app.errors import ValidationError
from app.models import AuditEvent

bp = Blueprint("audit", __name__, url_prefix="/logs")


@bp.get("/")
@requires("logs.view")
def index():
    """The account's audit events, newest first, through the shared listing component."""
    membership = g.membership
    listing = Listing(
        "logs",
        audit_service.events_query(membership.account_id),
        audit_service.event_columns(),
        request.args,
        id_column=AuditEvent.id,
        default_sort="time",
        default_dir="desc",
        default_rows=25,
        tz=membership.account.timezone,
    )
    return render("audit/index.html", partial="listing", listing=listing,
                  action_label=audit_service.action_label, details_text=audit_service.details_text)


def _reports_page(form: ReportForm, status: int = 200):
    account = g.membership.account
    rows = [(report, *report_service.report_days(report, account))
            for report in report_service.list_reports(account.id)]
    return render("audit/reports.html", status=status, form=form, reports=rows,
                  delete_form=DeleteReportForm(), zone=report_service.account_zone(account).key)


@bp.get("/reports")
@requires("logs.report")
def reports():
    today = datetime.now(report_service.account_zone(g.membership.account)).date()
    form = ReportForm(date_from=today - timedelta(days=29), date_to=today)
    return _reports_page(form)


@bp.post("/reports")
@requires("logs.report")
def generate_report():
    form = ReportForm()
    if not form.validate_on_submit():
        return _reports_page(form, status=422)
    try:
        report = report_service.generate_report(
            g.membership.account_id, current_user, form.date_from.data, form.date_to.data)
    except ValidationError as err:
        getattr(form, err.field or "date_to").errors.append(err.message)
        return _reports_page(form, status=422)
    flash(f"The report for {form.date_from.data.isoformat()} to {form.date_to.data.isoformat()} "
          f"is ready: {report.rows} event{'s' if report.rows != 1 else ''}.", "success")
    return redirect(url_for("audit.reports"))


@bp.get("/reports/<int:report_id>/download")
@requires("logs.report")
def download_report(report_id: int):
    path, name = report_service.report_file_for_download(
        g.membership.account_id, report_id, current_user)
    # send_file streams the file from disk and adds "; charset=utf-8" to a text/* type.
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=name,
                     max_age=0)


@bp.post("/reports/<int:report_id>/delete")
@requires("logs.delete_report")
def delete_report(report_id: int):
    report_service.delete_report(g.membership.account_id, report_id, current_user)
    flash("The report was deleted.", "success")
    return redirect(url_for("audit.reports"))
