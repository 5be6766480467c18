"""CSV reports of an account's audit events over a date range.

Called by the Logs views (generate, list, download, delete). A report is an ``AuditReport`` row
plus a file ``<instance>/reports/<account_id>/<report_id>.csv``. The file is written by
streaming the events from the database in batches (a server-side cursor on PostgreSQL) straight
into ``csv.writer`` on the file, so a large range never sits in memory.

Dates are days in the account's timezone; both ends are included. The row keeps the range as
UTC instants: ``date_from`` is the first day's local midnight and ``date_to`` the local midnight
*after* the last day (exclusive), so the query is a plain ``from <= at < to``.
"""
from __future__ import annotations

import csv
import os
import uuid
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import select

from app.audit.services import record
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.models import Account, AuditEvent, AuditReport, User, utcnow

MAX_DAYS = 366
BATCH = 1000
HEADER = ["Time", "User", "IP address", "Action", "Target", "Details"]
# A spreadsheet treats a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def account_zone(account: Account) -> ZoneInfo:
    try:
        return ZoneInfo(account.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(account: Account, first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) that cover ``first_day``..``last_day`` in the account's zone."""
    zone = account_zone(account)
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=zone)
    # In UTC: arithmetic between two times of one zone would ignore a daylight-saving change.
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def report_days(report: AuditReport, account: Account) -> tuple[date, date]:
    """The first and last day of ``report`` as the account's users entered them."""
    zone = account_zone(account)
    return (report.date_from.astimezone(zone).date(),
            (report.date_to.astimezone(zone) - timedelta(microseconds=1)).date())


def csv_safe(value) -> str:
    """Text for one CSV cell that a spreadsheet will never run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def report_folder(account_id: int) -> Path:
    return Path(current_app.instance_path) / "reports" / str(int(account_id))


def report_path(report: AuditReport) -> Path:
    return report_folder(report.account_id) / f"{int(report.id)}.csv"


def validate_range(first_day: date | None, last_day: date | None) -> None:
    if first_day is None or last_day is None:
        raise ValidationError("Enter both the first and the last day of the report.")
    if last_day < first_day:
        raise ValidationError("The last day must be on or after the first day.", field="date_to")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ValidationError(f"A report covers at most {MAX_DAYS} days; choose a shorter range.",
                              field="date_to")


def write_events_csv(out, account: Account, start: datetime, end: datetime) -> int:
    """Write the header and every event of ``account`` in [start, end), oldest first, onto the
    text file ``out``; return the number of event rows. Rows are fetched ``BATCH`` at a time."""
    zone = account_zone(account)
    writer = csv.writer(out)
    writer.writerow(HEADER)
    stmt = (
        select(AuditEvent.at, AuditEvent.actor, AuditEvent.ip, AuditEvent.action,
               AuditEvent.target, AuditEvent.details)
        .where(AuditEvent.account_id == account.id, AuditEvent.at >= start, AuditEvent.at < end)
        .order_by(AuditEvent.at, AuditEvent.id)
        .execution_options(yield_per=BATCH)
    )
    rows = 0
    for at, actor, ip, action, target, details in db.session.execute(stmt):
        writer.writerow([
            at.astimezone(zone).isoformat(timespec="seconds"),
            csv_safe(actor), csv_safe(ip), csv_safe(action), csv_safe(target), csv_safe(details),
        ])
        rows += 1
    return rows


def generate_report(account_id: int, actor: User | None, first_day: date | None,
                    last_day: date | None) -> AuditReport:
    """Write the CSV for ``first_day``..``last_day`` and add its ``AuditReport`` row.

    The file is written under a temporary name first and only renamed once the row is flushed;
    any failure removes it and rolls back, so there is never a row without a file or the reverse.
    """
    validate_range(first_day, last_day)
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("That account does not exist.")
    start, end = day_bounds(account, first_day, last_day)
    folder = report_folder(account.id)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{uuid.uuid4().hex}.tmp"
    final: Path | None = None
    try:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            rows = write_events_csv(out, account, start, end)
        report = AuditReport(
            account_id=account.id,
            created_by_id=actor.id if actor is not None else None,
            created_by=actor.username if actor is not None else "",
            created_at=utcnow(),
            date_from=start,
            date_to=end,
            rows=rows,
        )
        db.session.add(report)
        db.session.flush()
        final = report_path(report)
        os.replace(tmp, final)
        record("report.generated", f"{first_day.isoformat()} to {last_day.isoformat()}",
               {"report": report.id, "rows": rows}, account_id=account.id, actor=actor, commit=False)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        tmp.unlink(missing_ok=True)
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    return report


def list_reports(account_id: int) -> list[AuditReport]:
    return list(db.session.scalars(
        select(AuditReport).where(AuditReport.account_id == account_id)
        .order_by(AuditReport.created_at.desc(), AuditReport.id.desc())
    ))


def get_report(account_id: int, report_id: int) -> AuditReport:
    """The report ``report_id`` of ``account_id``; another account's report is "not found"."""
    report = db.session.get(AuditReport, report_id)
    if report is None or report.account_id != account_id:
        raise NotFound("That report does not exist.")
    return report


def report_file_for_download(account_id: int, report_id: int, actor: User | None) -> tuple[Path, str]:
    """The file to send and its download name; the download is audited."""
    report = get_report(account_id, report_id)
    path = report_path(report)
    if not path.is_file():
        raise NotFound("The report's file is missing. Delete the report and generate it again.")
    first_day, last_day = report_days(report, db.session.get(Account, report.account_id))
    name = f"audit-{first_day.isoformat()}-to-{last_day.isoformat()}.csv"
    record("report.downloaded", f"{first_day.isoformat()} to {last_day.isoformat()}",
           {"report": report.id}, account_id=account_id, actor=actor)
    return path, name


def delete_report(account_id: int, report_id: int, actor: User | None) -> None:
    """Remove the report's row and file; audited."""
    report = get_report(account_id, report_id)
    path = report_path(report)
    first_day, last_day = report_days(report, db.session.get(Account, report.account_id))
    record("report.deleted", f"{first_day.isoformat()} to {last_day.isoformat()}",
           {"report": report.id, "rows": report.rows}, account_id=account_id, actor=actor,
           commit=False)
    db.session.delete(report)
    db.session.commit()
    # After the commit: a failed commit must not leave a row whose file is gone.
    path.unlink(missing_ok=True)
