"""The schedule evaluator: does a role assignment's schedule cover an instant?

Called by ``app.assignments.permissions`` (effective permissions, My devices, the Check
permissions page; the relay in issue 5 for every message), by the Role assignments listing
(its "Active" / "Not active, due to schedule" status) and by ``app.assignments.services``,
which validates every schedule with :func:`validate` before writing it.

How a schedule reads (the portal guide's "Create a schedule for a role assignment")
-----------------------------------------------------------------------------------
All dates and times are **wall-clock values in the schedule's timezone** (an IANA zone name,
read with ``zoneinfo``). An instant ``at`` (aware, any offset) is first turned into the local
date and time of that zone; the rules below compare those local values. So a 09:00-17:00
window means 09:00-17:00 on the office clock every day, in winter and in summer, and on the
days the clocks change: on the spring-forward day the hour that does not exist is simply never
seen, on the fall-back day the repeated hour is covered both times it happens.

* **Times.** ``all_day`` covers the whole local day. Otherwise the window is
  ``start_time <= local time < end_time`` (the end is exclusive, to the minute). An end time of
  ``00:00`` means *midnight at the end of the day*, so ``18:00-00:00`` covers the evening.
  The end time must be after the start time: a window never runs past midnight (a night shift
  22:00-06:00 is two assignments, 22:00-00:00 and 00:00-06:00) — :func:`validate` refuses
  "inverted" windows with a message saying so.
* **No recurrence** is one continuous span. It starts on the start date at the start time
  (00:00 when all day) and ends on the end date at the end time (the end of the end date when
  all day). Without an end date an all-day schedule applies from the start date on, for good
  (the guide: "applies indefinitely, until removed"); a timed one covers that one window on
  the start date. With an end date after the start date, the end time may be earlier than
  the start time (09:00 on Monday until 08:00 on Wednesday is one span).
* **Daily**: ``weekdays`` (Monday-Friday), ``weekends`` (Saturday, Sunday) or ``every_n``
  (every ``interval`` days counted from the start date).
* **Weekly**: every ``interval`` weeks (weeks start on Monday, counted from the start date's
  week) on the chosen ``weekdays`` (0 = Monday .. 6 = Sunday; at least one).
* **Monthly**: every ``interval`` months (counted from the start date's month) on day
  ``month_day`` (1-31), or on the last day of the month (``month_day`` 0: 31 January, 29
  February in a leap year, 28 February otherwise, 30 April ...). A month without the chosen
  day is **skipped** (day 31 does not happen in April; that is the iCalendar rule, and "the
  last day" is there for whoever wants the end of every month).
* **Yearly**: every ``interval`` years on the start date's day and month (a 29 February start
  happens in leap years only, by the same rule).
* Recurring schedules cover nothing before the start date and nothing after the end date
  (inclusive: the end date's own window still counts). No end date: no end.

The recurrence dates come from ``dateutil.rrule`` (RFC 5545 recurrence rules), never from
hand-written calendar arithmetic. Because a rule walks from its start date, the answer for a
(schedule, local date) pair is cached: the relay asks about "today" many times a second.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule

from app.errors import ValidationError
from app.models.assignments import Recurrence

DAILY_MODES = {"weekdays": "Every weekday (Monday to Friday)", "weekends": "Every weekend day",
               "every_n": "Every N days"}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LAST_DAY = 0
MAX_INTERVAL = 999
MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class Rule:
    """A schedule's values, plain and hashable (the model row, a form or a test builds one)."""

    start_date: date
    timezone: str = "UTC"
    all_day: bool = True
    start_time: time | None = None
    end_time: time | None = None
    recurrence: Recurrence = Recurrence.none
    end_date: date | None = None
    daily_mode: str = "every_n"
    interval: int = 1
    weekdays: tuple[int, ...] = ()
    month_day: int = 1


def rule_of(schedule: Any) -> Rule:
    """The :class:`Rule` of a ``Schedule`` row (or of anything with the same attributes)."""
    if isinstance(schedule, Rule):
        return schedule
    return Rule(
        start_date=schedule.start_date,
        timezone=schedule.timezone or "UTC",
        all_day=bool(schedule.all_day),
        start_time=schedule.start_time,
        end_time=schedule.end_time,
        recurrence=schedule.recurrence,
        end_date=schedule.end_date,
        daily_mode=schedule.daily_mode or "every_n",
        interval=schedule.interval or 1,
        weekdays=tuple(sorted(schedule.weekdays or ())),
        month_day=schedule.month_day if schedule.month_day is not None else 1,
    )


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; :class:`ValidationError` for a name zoneinfo does not know."""
    try:
        if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(f"{name or 'An empty name'} is not a known timezone.", field="timezone") from None


# ------------------------------------------------------------------------------ validation
def validate(rule: Rule) -> Rule:
    """``rule`` if it is a schedule that makes sense, else :class:`ValidationError` naming the
    field. Normalises what the form cannot get wrong in a harmful way (weekday order, the
    unused times of an all-day schedule)."""
    zone(rule.timezone)
    if not isinstance(rule.recurrence, Recurrence):
        raise ValidationError("Choose a recurrence from the list.", field="recurrence")
    if rule.end_date is not None and rule.end_date < rule.start_date:
        raise ValidationError("The end date cannot be before the start date.", field="end_date")
    changes: dict[str, Any] = {}
    if rule.all_day:
        changes.update(start_time=None, end_time=None)
    else:
        if rule.start_time is None or rule.end_time is None:
            raise ValidationError("Give a start time and an end time, or tick All day.",
                                  field="start_time" if rule.start_time is None else "end_time")
        changes.update(start_time=rule.start_time.replace(second=0, microsecond=0, tzinfo=None),
                       end_time=rule.end_time.replace(second=0, microsecond=0, tzinfo=None))
        start, end = changes["start_time"], changes["end_time"]
        spans_days = rule.recurrence is Recurrence.none and rule.end_date not in (None, rule.start_date)
        if not spans_days and end != MIDNIGHT and end <= start:
            raise ValidationError(
                "The end time must be after the start time. A window cannot run past midnight "
                "(00:00 as the end time means midnight): for a night shift use two assignments, "
                "one until 00:00 and one from 00:00.", field="end_time")
    if rule.recurrence is not Recurrence.none:
        if not isinstance(rule.interval, int) or not 1 <= rule.interval <= MAX_INTERVAL:
            raise ValidationError(f"The interval must be a whole number from 1 to {MAX_INTERVAL}.",
                                  field="interval")
    if rule.recurrence is Recurrence.daily and rule.daily_mode not in DAILY_MODES:
        raise ValidationError("Choose every weekday, every weekend day or every N days.", field="daily_mode")
    if rule.recurrence is Recurrence.weekly:
        days = tuple(sorted(set(rule.weekdays)))
        if not days:
            raise ValidationError("Choose at least one day of the week.", field="weekdays")
        if any(not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise ValidationError("Days of the week are 0 (Monday) to 6 (Sunday).", field="weekdays")
        changes["weekdays"] = days
    if rule.recurrence is Recurrence.monthly and (
            not isinstance(rule.month_day, int) or not LAST_DAY <= rule.month_day <= 31):
        raise ValidationError("Choose a day of the month from 1 to 31, or the last day.", field="month_day")
    return dataclasses.replace(rule, **changes)


# ------------------------------------------------------------------------------ evaluation
def covers(schedule: Any, at: datetime) -> bool:
    """Whether ``schedule`` (a ``Schedule`` row, a :class:`Rule`, or ``None`` for "no
    schedule", which always applies) covers the aware instant ``at``."""
    if schedule is None:
        return True
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("covers() needs an aware datetime")
    rule = rule_of(schedule)
    local = at.astimezone(zone(rule.timezone)).replace(tzinfo=None)
    if rule.recurrence is Recurrence.none:
        start, end = _span(rule)
        return start <= local and (end is None or local < end)
    day = local.date()
    if day < rule.start_date or (rule.end_date is not None and day > rule.end_date):
        return False
    if not rule.all_day and not _in_window(rule, local.time()):
        return False
    return occurs_on(rule, day)


def _in_window(rule: Rule, clock: time) -> bool:
    if clock < rule.start_time:
        return False
    return rule.end_time == MIDNIGHT or clock < rule.end_time


def _span(rule: Rule) -> tuple[datetime, datetime | None]:
    """The local start and (exclusive) end of a schedule without recurrence."""
    if rule.all_day:
        start = datetime.combine(rule.start_date, MIDNIGHT)
        end = None if rule.end_date is None else datetime.combine(rule.end_date + timedelta(days=1), MIDNIGHT)
        return start, end
    last = rule.end_date or rule.start_date
    start = datetime.combine(rule.start_date, rule.start_time)
    if rule.end_time == MIDNIGHT:
        return start, datetime.combine(last + timedelta(days=1), MIDNIGHT)
    return start, datetime.combine(last, rule.end_time)


def occurs_on(rule: Rule, day: date) -> bool:
    """Whether a recurring ``rule`` has an occurrence on the local date ``day`` (ignoring the
    time window). Cached per (rule, day)."""
    return _occurs(_recurrence_key(rule), day)


def _recurrence_key(rule: Rule) -> tuple:
    # Only what decides the dates: two schedules differing in times or zone share the cache.
    return (rule.recurrence, rule.start_date, rule.end_date, rule.daily_mode, rule.interval,
            rule.weekdays, rule.month_day)


@lru_cache(maxsize=8192)
def _occurs(key: tuple, day: date) -> bool:
    recurrence, start_date, end_date, *_ = key
    if day < start_date or (end_date is not None and day > end_date):
        return False
    midnight = datetime.combine(day, MIDNIGHT)
    return _rrule(key).after(midnight, inc=True) == midnight


@lru_cache(maxsize=1024)
def _rrule(key: tuple) -> rrule.rrule:
    recurrence, start_date, end_date, daily_mode, interval, weekdays, month_day = key
    options: dict[str, Any] = {
        "dtstart": datetime.combine(start_date, MIDNIGHT),
        "until": datetime.combine(end_date, MIDNIGHT) if end_date is not None else None,
        "interval": interval,
        "wkst": rrule.MO,
        "cache": True,
    }
    if recurrence is Recurrence.daily:
        freq = rrule.DAILY
        if daily_mode == "weekdays":
            options.update(byweekday=(rrule.MO, rrule.TU, rrule.WE, rrule.TH, rrule.FR), interval=1)
        elif daily_mode == "weekends":
            options.update(byweekday=(rrule.SA, rrule.SU), interval=1)
    elif recurrence is Recurrence.weekly:
        freq = rrule.WEEKLY
        options["byweekday"] = tuple(rrule.weekdays[d] for d in weekdays)
    elif recurrence is Recurrence.monthly:
        freq = rrule.MONTHLY
        options["bymonthday"] = -1 if month_day == LAST_DAY else month_day
    elif recurrence is Recurrence.yearly:
        freq = rrule.YEARLY
        options.update(bymonth=start_date.month, bymonthday=start_date.day)
    else:  # pragma: no cover - covers() handles "none" without a rule
        raise ValueError(f"no recurrence rule for {recurrence}")
    return rrule.rrule(freq, **options)


def occurrences(schedule: Any, after: date, count: int = 5) -> list[date]:
    """The next ``count`` dates on or after ``after`` with a window (for the schedule page)."""
    rule = rule_of(schedule)
    if rule.recurrence is Recurrence.none:
        return [rule.start_date] if rule.start_date >= after else []
    found = []
    for moment in _rrule(_recurrence_key(rule)).xafter(datetime.combine(after, MIDNIGHT), count=count, inc=True):
        found.append(moment.date())
    return found


# ------------------------------------------------------------------------------ wording
def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _every(interval: int, one: str, many: str) -> str:
    return f"every {one}" if interval == 1 else f"every {interval} {many}"


def _join(words: Iterable[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe(schedule: Any) -> str:
    """One sentence for people: "Every weekday, 09:00-17:00 (Europe/Copenhagen time), from
    2024-03-01 until 2024-12-31"."""
    rule = rule_of(schedule)
    hours = "all day" if rule.all_day else (
        f"{rule.start_time:%H:%M}\u2013{'24:00' if rule.end_time == MIDNIGHT else format(rule.end_time, '%H:%M')}")
    zone_text = f"({rule.timezone} time)"
    if rule.recurrence is Recurrence.none:
        if rule.end_date is None and rule.all_day:
            return f"From {rule.start_date.isoformat()} on, all day, with no end {zone_text}"
        if rule.all_day:
            return f"From {rule.start_date.isoformat()} to {rule.end_date.isoformat()}, all day {zone_text}"
        if rule.end_date is None or rule.end_date == rule.start_date:
            return f"On {rule.start_date.isoformat()} only, {hours} {zone_text}"
        return (f"From {rule.start_date.isoformat()} {rule.start_time:%H:%M} to "
                f"{rule.end_date.isoformat()} {'24:00' if rule.end_time == MIDNIGHT else format(rule.end_time, '%H:%M')} {zone_text}")
    if rule.recurrence is Recurrence.daily:
        what = {"weekdays": "Every weekday", "weekends": "Every Saturday and Sunday"}.get(
            rule.daily_mode) or _every(rule.interval, "day", "days").capitalize()
    elif rule.recurrence is Recurrence.weekly:
        what = _every(rule.interval, "week", "weeks").capitalize() + " on " + _join(
            WEEKDAY_NAMES[d] for d in rule.weekdays)
    elif rule.recurrence is Recurrence.monthly:
        day = "the last day" if rule.month_day == LAST_DAY else f"the {_ordinal(rule.month_day)}"
        what = _every(rule.interval, "month", "months").capitalize() + f" on {day}"
    else:
        what = _every(rule.interval, "year", "years").capitalize() + f" on {rule.start_date:%d %B}"
    until = f" until {rule.end_date.isoformat()}" if rule.end_date else ""
    return f"{what}, {hours} {zone_text}, from {rule.start_date.isoformat()}{until}"
