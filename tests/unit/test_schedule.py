"""The schedule evaluator (app/assignments/schedule.py): example tests at DST changes and month
ends, validation messages, and hypothesis properties over random schedules and instants."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings, strategies as st

from app.assignments.schedule import Rule, covers, describe, occurrences, validate
from app.errors import ValidationError
from app.models.assignments import Recurrence

UTC = timezone.utc
CPH = "Europe/Copenhagen"


def at(text: str, zone: str = "UTC") -> datetime:
    """A local wall-clock time in ``zone`` as an aware instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def office_hours(**kw) -> Rule:
    values = dict(start_date=date(2024, 1, 1), timezone=CPH, all_day=False, start_time=time(9),
                  end_time=time(17), recurrence=Recurrence.daily, daily_mode="every_n")
    values.update(kw)
    return validate(Rule(**values))


# ------------------------------------------------------------------------------ DST
def test_office_hours_follow_the_wall_clock_on_the_spring_forward_day():
    rule = office_hours()
    # 31 March 2024: Copenhagen goes from UTC+1 to UTC+2 at 02:00 local.
    assert covers(rule, datetime(2024, 3, 31, 7, 0, tzinfo=UTC))  # 09:00 CEST
    assert not covers(rule, datetime(2024, 3, 31, 6, 59, tzinfo=UTC))  # 08:59 CEST
    assert covers(rule, datetime(2024, 3, 31, 14, 59, tzinfo=UTC))  # 16:59 CEST
    assert not covers(rule, datetime(2024, 3, 31, 15, 0, tzinfo=UTC))  # 17:00 CEST
    # The day before, in winter time, the same wall clock is an hour later in UTC.
    assert covers(rule, datetime(2024, 3, 30, 8, 0, tzinfo=UTC))
    assert not covers(rule, datetime(2024, 3, 30, 7, 30, tzinfo=UTC))


def test_office_hours_follow_the_wall_clock_on_the_fall_back_day():
    rule = office_hours()
    # 27 October 2024: back to UTC+1 at 03:00 local.
    assert covers(rule, datetime(2024, 10, 27, 8, 0, tzinfo=UTC))  # 09:00 CET
    assert not covers(rule, datetime(2024, 10, 27, 7, 59, tzinfo=UTC))
    assert covers(rule, datetime(2024, 10, 27, 15, 59, tzinfo=UTC))
    assert not covers(rule, datetime(2024, 10, 27, 16, 0, tzinfo=UTC))


def test_window_in_the_hour_skipped_by_spring_forward_never_happens_that_day():
    rule = office_hours(start_time=time(2), end_time=time(3))
    day = datetime(2024, 3, 31, 0, 0, tzinfo=UTC)
    hits = [day + timedelta(minutes=m) for m in range(0, 24 * 60, 5)
            if covers(rule, day + timedelta(minutes=m))]
    assert hits == []
    # Every other day it is one real hour.
    normal = datetime(2024, 3, 30, 0, 0, tzinfo=UTC)
    assert sum(covers(rule, normal + timedelta(minutes=m)) for m in range(0, 24 * 60, 5)) == 12


def test_window_in_the_repeated_hour_of_fall_back_is_covered_both_times():
    rule = office_hours(start_time=time(2), end_time=time(3))
    assert covers(rule, datetime(2024, 10, 27, 0, 30, tzinfo=UTC))  # 02:30 CEST
    assert covers(rule, datetime(2024, 10, 27, 1, 30, tzinfo=UTC))  # 02:30 CET
    assert not covers(rule, datetime(2024, 10, 27, 2, 0, tzinfo=UTC))  # 03:00 CET


def test_all_day_on_a_dst_day_covers_its_23_or_25_real_hours():
    spring = validate(Rule(start_date=date(2024, 3, 31), end_date=date(2024, 3, 31), timezone=CPH))
    start = datetime(2024, 3, 30, 23, 0, tzinfo=UTC)  # 00:00 local
    assert covers(spring, start) and not covers(spring, start - timedelta(seconds=1))
    assert covers(spring, start + timedelta(hours=23, seconds=-1))
    assert not covers(spring, start + timedelta(hours=23))
    autumn = validate(Rule(start_date=date(2024, 10, 27), end_date=date(2024, 10, 27), timezone=CPH))
    start = datetime(2024, 10, 26, 22, 0, tzinfo=UTC)
    assert covers(autumn, start + timedelta(hours=25, seconds=-1))
    assert not covers(autumn, start + timedelta(hours=25))


# ------------------------------------------------------------------------------ month ends
def monthly(day: int, **kw) -> Rule:
    return validate(Rule(start_date=date(2024, 1, 1), recurrence=Recurrence.monthly, month_day=day, **kw))


def test_monthly_on_the_31st_skips_months_without_it():
    rule = monthly(31)
    assert covers(rule, at("2024-01-31T12:00"))
    assert not covers(rule, at("2024-02-29T12:00"))
    assert covers(rule, at("2024-03-31T12:00"))
    assert not covers(rule, at("2024-04-30T12:00"))
    assert not covers(rule, at("2024-05-01T12:00"))
    assert occurrences(rule, date(2024, 1, 1), 4) == [date(2024, 1, 31), date(2024, 3, 31),
                                                      date(2024, 5, 31), date(2024, 7, 31)]


def test_monthly_on_the_last_day_is_the_29th_of_february_in_a_leap_year_and_the_28th_otherwise():
    rule = monthly(0)
    assert covers(rule, at("2024-02-29T00:00"))
    assert not covers(rule, at("2024-02-28T23:59"))
    assert covers(rule, at("2025-02-28T10:00"))
    assert covers(rule, at("2024-04-30T10:00"))
    assert not covers(rule, at("2024-04-29T10:00"))


def test_every_second_month_counts_from_the_start_month():
    rule = monthly(15, interval=2)
    assert covers(rule, at("2024-01-15T08:00"))
    assert not covers(rule, at("2024-02-15T08:00"))
    assert covers(rule, at("2024-03-15T08:00"))


def test_yearly_on_29_february_happens_in_leap_years_only():
    rule = validate(Rule(start_date=date(2024, 2, 29), recurrence=Recurrence.yearly))
    assert covers(rule, at("2024-02-29T09:00"))
    assert not covers(rule, at("2025-02-28T09:00"))
    assert not covers(rule, at("2025-03-01T09:00"))
    assert covers(rule, at("2028-02-29T09:00"))


# ------------------------------------------------------------------------------ daily, weekly, none
def test_daily_weekdays_and_weekends():
    weekdays = validate(Rule(start_date=date(2024, 1, 1), recurrence=Recurrence.daily, daily_mode="weekdays"))
    weekends = validate(Rule(start_date=date(2024, 1, 1), recurrence=Recurrence.daily, daily_mode="weekends"))
    friday, saturday = at("2024-01-05T12:00"), at("2024-01-06T12:00")
    assert covers(weekdays, friday) and not covers(weekdays, saturday)
    assert covers(weekends, saturday) and not covers(weekends, friday)


def test_every_third_day_counts_from_the_start_date():
    rule = validate(Rule(start_date=date(2024, 1, 1), recurrence=Recurrence.daily, interval=3))
    assert [d.day for d in occurrences(rule, date(2024, 1, 1), 4)] == [1, 4, 7, 10]
    assert not covers(rule, at("2024-01-02T10:00"))


def test_every_two_weeks_on_monday_and_friday():
    rule = validate(Rule(start_date=date(2024, 1, 1), recurrence=Recurrence.weekly, interval=2, weekdays=(4, 0)))
    assert occurrences(rule, date(2024, 1, 1), 4) == [date(2024, 1, 1), date(2024, 1, 5),
                                                      date(2024, 1, 15), date(2024, 1, 19)]
    assert not covers(rule, at("2024-01-08T10:00"))


def test_no_recurrence_timed_without_end_date_is_one_window_on_the_start_date():
    rule = validate(Rule(start_date=date(2024, 5, 1), all_day=False, start_time=time(9), end_time=time(17)))
    assert covers(rule, at("2024-05-01T09:00")) and not covers(rule, at("2024-05-01T17:00"))
    assert not covers(rule, at("2024-05-02T10:00"))


def test_no_recurrence_all_day_without_end_date_applies_from_the_start_date_for_good():
    rule = validate(Rule(start_date=date(2024, 5, 1), timezone=CPH))
    assert not covers(rule, at("2024-04-30T23:59", CPH))
    assert covers(rule, at("2024-05-01T00:00", CPH))
    assert covers(rule, at("2090-01-01T00:00", CPH))


def test_no_recurrence_with_end_date_is_one_span_across_days():
    rule = validate(Rule(start_date=date(2024, 5, 6), end_date=date(2024, 5, 8), all_day=False,
                         start_time=time(9), end_time=time(8)))
    assert not covers(rule, at("2024-05-06T08:59"))
    assert covers(rule, at("2024-05-07T03:00"))
    assert covers(rule, at("2024-05-08T07:59"))
    assert not covers(rule, at("2024-05-08T08:00"))


def test_end_time_midnight_means_the_end_of_the_day():
    rule = office_hours(start_time=time(18), end_time=time(0))
    assert covers(rule, at("2024-06-03T23:59:59", CPH))
    assert not covers(rule, at("2024-06-04T00:30", CPH))  # the window never runs past midnight
    assert not covers(rule, at("2024-06-04T17:59", CPH))
    assert covers(rule, at("2024-06-04T18:00", CPH))
    assert "18:00\u201324:00" in describe(rule)


def test_no_schedule_always_applies_and_naive_instants_are_refused():
    assert covers(None, datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        covers(office_hours(), datetime(2024, 1, 1, 10, 0))


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("changes, field, words", [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone", "not a known timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone", "not a known timezone"),
    ({"end_date": date(2023, 12, 31)}, "end_date", "cannot be before the start date"),
    ({"start_time": time(17), "end_time": time(9)}, "end_time", "must be after the start time"),
    ({"start_time": time(9), "end_time": time(9)}, "end_time", "must be after the start time"),
    ({"start_time": None}, "start_time", "Give a start time"),
    ({"interval": 0}, "interval", "from 1 to"),
    ({"recurrence": Recurrence.weekly, "weekdays": ()}, "weekdays", "at least one day"),
    ({"recurrence": Recurrence.weekly, "weekdays": (7,)}, "weekdays", "0 (Monday) to 6"),
    ({"recurrence": Recurrence.monthly, "month_day": 32}, "month_day", "1 to 31"),
    ({"daily_mode": "sometimes"}, "daily_mode", "every weekday"),
])
def test_bad_schedules_are_refused_with_a_message_for_the_field(changes, field, words):
    values = dict(start_date=date(2024, 1, 1), timezone=CPH, all_day=False, start_time=time(9),
                  end_time=time(17), recurrence=Recurrence.daily)
    values.update(changes)
    with pytest.raises(ValidationError) as caught:
        validate(Rule(**values))
    assert caught.value.field == field
    assert words in caught.value.message


def test_describe_reads_like_a_sentence():
    assert describe(office_hours(recurrence=Recurrence.weekly, weekdays=(0, 2), interval=2)) == (
        "Every 2 weeks on Monday and Wednesday, 09:00\u201317:00 (Europe/Copenhagen time), from 2024-01-01")
    assert describe(monthly(0, end_date=date(2024, 12, 31))) == (
        "Every month on the last day, all day (UTC time), from 2024-01-01 until 2024-12-31")


# ------------------------------------------------------------------------------ properties
ZONES = st.sampled_from(["UTC", CPH, "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
                         "America/Santiago", "Pacific/Chatham"])
DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
INSTANTS = st.datetimes(min_value=datetime(1999, 12, 1), max_value=datetime(2061, 2, 1),
                        timezones=st.just(UTC))


@st.composite
def schedules(draw):
    start = draw(DATES)
    end = draw(st.one_of(st.none(), st.dates(min_value=start, max_value=start + timedelta(days=900))))
    all_day = draw(st.booleans())
    start_time = end_time = None
    recurrence = draw(st.sampled_from(list(Recurrence)))
    if not all_day:
        a = draw(st.integers(0, 23 * 60 + 58))
        b = draw(st.integers(a + 1, 24 * 60))
        start_time = time(a // 60, a % 60)
        end_time = time(0) if b == 24 * 60 else time(b // 60, b % 60)
    return validate(Rule(
        start_date=start, end_date=end, timezone=draw(ZONES), all_day=all_day, start_time=start_time,
        end_time=end_time, recurrence=recurrence,
        daily_mode=draw(st.sampled_from(["weekdays", "weekends", "every_n"])),
        interval=draw(st.integers(1, 5)),
        weekdays=tuple(draw(st.sets(st.integers(0, 6), min_size=1))),
        month_day=draw(st.integers(0, 31)),
    ))


@settings(max_examples=300, deadline=None)
@given(schedules(), INSTANTS)
def test_a_schedule_never_covers_before_its_start_date_or_after_its_end_date(rule, moment):
    local_day = moment.astimezone(ZoneInfo(rule.timezone)).date()
    if covers(rule, moment):
        assert local_day >= rule.start_date
        if rule.end_date is not None:
            assert local_day <= rule.end_date


@settings(max_examples=200, deadline=None)
@given(DATES, st.integers(0, 400), ZONES, st.data())
def test_all_day_daily_every_day_covers_every_instant_between_start_and_end(start, length, zone_name, data):
    end = start + timedelta(days=length)
    rule = validate(Rule(start_date=start, end_date=end, timezone=zone_name, recurrence=Recurrence.daily))
    zone = ZoneInfo(zone_name)
    first = datetime.combine(start, time(), zone).astimezone(UTC)
    last = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    inside = data.draw(st.datetimes(min_value=first.replace(tzinfo=None),
                                    max_value=(last - timedelta(microseconds=1)).replace(tzinfo=None),
                                    timezones=st.just(UTC)))
    assert covers(rule, inside)
    assert not covers(rule, first - timedelta(microseconds=1))
    assert not covers(rule, last)


@settings(max_examples=200, deadline=None)
@given(DATES, st.sets(st.integers(0, 6), min_size=1), ZONES, INSTANTS)
def test_weekly_every_week_covers_exactly_the_chosen_weekdays(start, days, zone_name, moment):
    rule = validate(Rule(start_date=start, timezone=zone_name, recurrence=Recurrence.weekly, weekdays=tuple(days)))
    local_day = moment.astimezone(ZoneInfo(zone_name)).date()
    assume(local_day >= start)
    assert covers(rule, moment) == (local_day.weekday() in days)


@settings(max_examples=200, deadline=None)
@given(schedules(), DATES, st.integers(0, 24 * 60 - 1))
def test_wall_clock_windows_agree_across_dst_the_answer_depends_only_on_local_date_and_time(rule, day, minute):
    """Two instants with the same local wall clock (e.g. either side of a DST change, or the
    repeated hour) get the same answer for a recurring schedule."""
    assume(rule.recurrence is not Recurrence.none)
    zone = ZoneInfo(rule.timezone)
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    # Only wall times that really exist (not in a spring-forward gap).
    assume(first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall)
    expected = (rule.start_date <= day and (rule.end_date is None or day <= rule.end_date)
                and (rule.all_day or (rule.start_time <= wall.time()
                                      and (rule.end_time == time(0) or wall.time() < rule.end_time))))
    if not expected:
        assert not covers(rule, first) and not covers(rule, second)
    else:
        assert covers(rule, first) == covers(rule, second)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 31), st.integers(2000, 2059), st.integers(1, 12))
def test_monthly_day_is_covered_exactly_when_the_month_has_that_day(day, year, month):
    import calendar

    rule = validate(Rule(start_date=date(2000, 1, 1), recurrence=Recurrence.monthly, month_day=day))
    last = calendar.monthrange(year, month)[1]
    noon = datetime(year, month, min(day, last), 12, tzinfo=UTC)
    assert covers(rule, noon) == (day <= last)
    last_rule = validate(Rule(start_date=date(2000, 1, 1), recurrence=Recurrence.monthly, month_day=0))
    assert covers(last_rule, datetime(year, month, last, 12, tzinfo=UTC))
    if last > 1:
        assert not covers(last_rule, datetime(year, month, last - 1, 12, tzinfo=UTC))
