"""Pure rules of the audit reports and the Logs page: CSV-injection guard, date ranges in the
account's timezone (daylight saving included), labels and details for reading."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from app.audit.reports import csv_safe, day_bounds, report_days, validate_range
from app.audit.services import action_label, details_text
from app.errors import ValidationError
from app.models import Account, AuditReport


@pytest.mark.parametrize("value, expected", [
    ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
    ("+31 6 1234", "'+31 6 1234"),
    ("-1", "'-1"),
    ("@cmd", "'@cmd"),
    ("\tindent", "'\tindent"),
    ("\rreturn", "'\rreturn"),
    ("alice@example.com", "alice@example.com"),
    ("a=b", "a=b"),
    ("", ""),
    (None, ""),
    (42, "42"),
])
def test_csv_cells_never_start_like_a_formula(value, expected):
    assert csv_safe(value) == expected


def test_day_bounds_cover_whole_local_days_across_daylight_saving():
    berlin = Account(timezone="Europe/Berlin")
    # 31 March 2024: clocks go forward in Berlin, the day is 23 hours long.
    start, end = day_bounds(berlin, date(2024, 3, 31), date(2024, 3, 31))
    assert start == datetime(2024, 3, 30, 23, 0, tzinfo=timezone.utc)
    assert end == datetime(2024, 3, 31, 22, 0, tzinfo=timezone.utc)
    assert (end - start).total_seconds() == 23 * 3600


def test_unknown_timezone_falls_back_to_utc():
    start, end = day_bounds(Account(timezone="Mars/Olympus_Mons"), date(2024, 1, 1), date(2024, 1, 2))
    assert (start, end) == (datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 3, tzinfo=timezone.utc))


def test_report_days_read_back_the_days_that_were_asked_for():
    account = Account(timezone="America/New_York")
    start, end = day_bounds(account, date(2024, 11, 1), date(2024, 11, 3))  # DST ends on the 3rd
    report = AuditReport(date_from=start, date_to=end)
    assert report_days(report, account) == (date(2024, 11, 1), date(2024, 11, 3))


@pytest.mark.parametrize("first, last, message", [
    (None, date(2024, 1, 1), "Enter both"),
    (date(2024, 1, 2), date(2024, 1, 1), "on or after"),
    (date(2023, 1, 1), date(2024, 1, 2), "at most 366 days"),
])
def test_bad_ranges_are_refused(first, last, message):
    with pytest.raises(ValidationError, match=message):
        validate_range(first, last)


def test_a_single_day_and_a_leap_year_are_accepted():
    validate_range(date(2024, 2, 29), date(2024, 2, 29))
    validate_range(date(2024, 1, 1), date(2024, 12, 31))


def test_known_actions_have_labels_and_others_read_plainly():
    assert action_label("sign_in.failed") == "Sign-in failed"
    assert action_label("user.invite_resent") == "User: invite resent"


@pytest.mark.parametrize("details, expected", [
    ('{"step": "password"}', "step: password"),
    ('{"sent_count": 2, "rows": 10}', "sent count: 2, rows: 10"),
    ("plain words", "plain words"),
    ("{not json", "{not json"),
    ("", ""),
])
def test_details_are_shown_readably(details, expected):
    assert details_text(details) == expected
