"""Role assignments pages (listing, add, edit, remove one or many, apply a schedule to many),
Schedules pages (listing, add, edit, remove) and the Check permissions page.

Thin views: they fill the forms' choices from the account, call ``app.assignments.services``
(or ``permissions.check_permissions``) and render. ``roles.view`` (group manager and up) reads,
``roles.manage`` (administrator and up) changes.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, g, redirect, request, url_for

from app.access import can, requires
from app.account.services import timezone_choices
from app.assignments import permissions, schedule as schedules, services
from app.assignments.forms import AssignmentForm, BulkScheduleForm, CheckForm, ConfirmForm, ScheduleForm
from app.common.bulk import back_to_listing, selected_ids
from app.common.forms import choices
from app.common.listing import BulkAction, Listing
from app.common.templating import render
from app.errors import TesseraError, ValidationError
from app.models import Assignment, GroupKind, Recurrence, Schedule, utcnow

bp = Blueprint("role_assignments", __name__, url_prefix="/role-assignments")


def _account_id() -> int:
    return g.membership.account_id


def _account_zone() -> str:
    return g.membership.account.timezone or "UTC"


# ------------------------------------------------------------------------------ assignments
@bp.get("/")
@requires("roles.view")
def index():
    now = utcnow()
    bulk = []
    if can("roles.manage"):
        bulk = [BulkAction("Apply schedule", url_for("role_assignments.schedule_many")),
                BulkAction("Remove", url_for("role_assignments.remove_many"), danger=True)]
    listing = Listing(
        "assignments", services.assignments_query(_account_id()), services.assignment_columns(), request.args,
        id_column=Assignment.id, default_sort="name", bulk_actions=bulk, tz=_account_zone(),
    )
    rows = [row.Assignment for row in listing.items]
    response = render("assignments/index.html", partial="listing", listing=listing,
                      groups=services.group_names(rows),
                      statuses={a.id: services.status(a, now) for a in rows})
    return listing.push_url(response)


def _fill_assignment_choices(form: AssignmentForm) -> None:
    account_id = _account_id()
    form.role.choices = choices([("", "Choose a role")] + [
        (str(r.id), f"{r.name} ({r.type.label})") for r in services.account_roles(account_id)])
    form.user_groups.choices = choices(
        (grp.id, grp.name if grp.kind is GroupKind.user else f"{grp.name} ({grp.kind.label})")
        for grp in services.account_groups(account_id, services.USER_GROUP_KINDS))
    form.device_groups.choices = choices(
        (grp.id, grp.name) for grp in services.account_groups(account_id, (GroupKind.device,)))
    form.schedule.choices = choices([("", "No schedule (always, while active)")] + [
        (str(s.id), s.name) for s in services.account_schedules(account_id)])


def _int_or_none(value) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


def _values(form: AssignmentForm) -> services.AssignmentValues:
    return services.AssignmentValues(
        name=form.name.data or "", role_id=_int_or_none(form.role.data), active=form.active.data,
        everyone=form.everyone.data, user_group_ids=tuple(form.user_groups.data or ()),
        everything=form.everything.data, device_group_ids=tuple(form.device_groups.data or ()),
        description=form.description.data or "", schedule_id=_int_or_none(form.schedule.data),
    )


def _field_error(form, err: TesseraError) -> str | None:
    """Put a service error under its field when the form has one; else return it for the top."""
    field = getattr(form, err.field, None) if err.field else None
    if field is not None:
        field.errors = list(field.errors or []) + [err.message]
        return None
    return err.message


@bp.route("/new", methods=["GET", "POST"])
@requires("roles.manage")
def new():
    form = AssignmentForm()
    _fill_assignment_choices(form)
    status, error = 200, None
    if form.validate_on_submit():
        try:
            created = services.create_assignment(_account_id(), _values(form))
        except TesseraError as err:
            error, status = _field_error(form, err), err.status
        else:
            flash(f"The role assignment \u201c{created.name}\u201d was added.", "success")
            return redirect(url_for("role_assignments.index"))
    elif form.errors:
        status = 422
    return render("assignments/edit.html", status=status, form=form, error=error, assignment=None)


@bp.route("/<int:assignment_id>/edit", methods=["GET", "POST"])
@requires("roles.manage")
def edit(assignment_id: int):
    assignment = services.get_assignment(_account_id(), assignment_id)
    form = AssignmentForm()
    _fill_assignment_choices(form)
    if request.method == "GET":
        form.name.data, form.active.data = assignment.name, assignment.active
        form.role.data = str(assignment.role_id or "")
        form.everyone.data, form.everything.data = assignment.everyone, assignment.everything
        form.user_groups.data = [grp.id for grp in assignment.user_groups]
        form.device_groups.data = [grp.id for grp in assignment.device_groups]
        form.schedule.data = str(assignment.schedule_id or "")
        form.description.data = assignment.description
    status, error = 200, None
    if form.validate_on_submit():
        try:
            services.update_assignment(_account_id(), assignment_id, _values(form))
        except TesseraError as err:
            error, status = _field_error(form, err), err.status
        else:
            flash("The changes were saved.", "success")
            return redirect(url_for("role_assignments.index"))
    elif form.errors:
        status = 422
    return render("assignments/edit.html", status=status, form=form, error=error, assignment=assignment,
                  state=services.status(assignment),
                  when=schedules.describe(assignment.schedule) if assignment.schedule else "")


@bp.route("/<int:assignment_id>/remove", methods=["GET", "POST"])
@requires("roles.manage")
def remove(assignment_id: int):
    services.get_assignment(_account_id(), assignment_id)
    return _remove([assignment_id], confirmed=request.method == "POST")


@bp.post("/remove")
@requires("roles.manage")
def remove_many():
    ids = selected_ids()
    if not ids:
        flash("Select at least one role assignment first.", "error")
        return redirect(back_to_listing("role_assignments.index"))
    return _remove(ids, confirmed=request.form.get("confirm") == "yes")


def _remove(ids: list[int], confirmed: bool):
    targets = services.assignments_for(_account_id(), ids)
    form = ConfirmForm()
    if confirmed and form.validate_on_submit():
        names = services.remove_assignments(_account_id(), ids)
        flash("Removed " + ", ".join(f"\u201c{n}\u201d" for n in names) + ".", "success")
        return redirect(back_to_listing("role_assignments.index"))
    return render("assignments/remove.html", targets=targets, form=form, next=back_to_listing("role_assignments.index"))


@bp.post("/schedule")
@requires("roles.manage")
def schedule_many():
    """Step one: choose the schedule for the selected assignments; step two applies it."""
    ids = selected_ids()
    if not ids:
        flash("Select at least one role assignment first.", "error")
        return redirect(back_to_listing("role_assignments.index"))
    targets = services.assignments_for(_account_id(), ids)
    form = BulkScheduleForm()
    form.schedule.choices = choices([("", "No schedule (remove it)")] + [
        (str(s.id), s.name) for s in services.account_schedules(_account_id())])
    status, error = 200, None
    if request.form.get("confirm") == "yes" and form.validate_on_submit():
        try:
            names = services.set_schedule(_account_id(), ids, _int_or_none(form.schedule.data))
        except TesseraError as err:
            error, status = err.message, err.status
        else:
            chosen = _int_or_none(form.schedule.data)
            flash(("Schedule applied to " if chosen else "Schedule removed from ")
                  + ", ".join(f"\u201c{n}\u201d" for n in names) + ".", "success")
            return redirect(back_to_listing("role_assignments.index"))
    return render("assignments/schedule_many.html", status=status, targets=targets, form=form, error=error,
                  next=back_to_listing("role_assignments.index"))


# ------------------------------------------------------------------------------ schedules
@bp.get("/schedules")
@requires("roles.view")
def schedules_index():
    now = utcnow()
    listing = Listing(
        "schedules", services.schedules_query(_account_id()), services.schedule_columns(), request.args,
        id_column=Schedule.id, default_sort="name", tz=_account_zone(),
        endpoint="role_assignments.schedules_index",
    )
    texts = {row.Schedule.id: (schedules.describe(row.Schedule), schedules.covers(row.Schedule, now))
             for row in listing.items}
    return listing.push_url(render("assignments/schedules.html", partial="listing", listing=listing, texts=texts))


def _rule(form: ScheduleForm) -> schedules.Rule:
    zone_name = form.timezone.data or _account_zone()
    start = form.start_date.data
    if start is None:
        # The guide: without a start date the schedule starts today (in its own zone).
        start = utcnow().astimezone(schedules.zone(zone_name)).date()
    try:
        recurrence = Recurrence(form.recurrence.data or "none")
    except ValueError:
        raise ValidationError("Choose a recurrence from the list.", field="recurrence") from None
    month_day = _int_or_none(form.month_day.data)
    return schedules.Rule(
        start_date=start, timezone=zone_name, all_day=bool(form.all_day.data),
        start_time=form.start_time.data, end_time=form.end_time.data, recurrence=recurrence,
        end_date=form.end_date.data, daily_mode=form.daily_mode.data or "every_n",
        interval=form.interval.data if form.interval.data is not None else 1,
        weekdays=tuple(form.weekdays.data or ()),
        # A monthly schedule without a usable day is refused by validate(); others ignore it.
        month_day=month_day if month_day is not None else (-1 if recurrence is Recurrence.monthly else 1),
    )


def _schedule_form() -> ScheduleForm:
    form = ScheduleForm()
    form.timezone.choices = choices(timezone_choices())
    return form


def _save_schedule(form: ScheduleForm, target: Schedule | None):
    status, error = 200, None
    if form.validate_on_submit():
        try:
            rule = _rule(form)
            if target is None:
                saved = services.create_schedule(_account_id(), form.name.data or "", rule)
            else:
                saved = services.update_schedule(_account_id(), target.id, form.name.data or "", rule)
        except TesseraError as err:
            error, status = _field_error(form, err), err.status
        else:
            flash(f"The schedule \u201c{saved.name}\u201d was saved: {schedules.describe(saved)}.", "success")
            return redirect(url_for("role_assignments.schedules_index"))
    elif form.errors:
        status = 422
    used_by = services.schedule_usage(_account_id(), target.id) if target is not None else []
    return render("assignments/schedule_edit.html", status=status, form=form, error=error, schedule=target,
                  used_by=used_by, when=schedules.describe(target) if target is not None else "",
                  upcoming=schedules.occurrences(target, utcnow().astimezone(schedules.zone(target.timezone)).date())
                  if target is not None else [])


@bp.route("/schedules/new", methods=["GET", "POST"])
@requires("roles.manage")
def schedule_new():
    form = _schedule_form()
    if request.method == "GET":
        form.timezone.data = _account_zone()
        form.start_date.data = utcnow().astimezone(ZoneInfo(_account_zone())).date()
    return _save_schedule(form, None)


@bp.route("/schedules/<int:schedule_id>/edit", methods=["GET", "POST"])
@requires("roles.manage")
def schedule_edit(schedule_id: int):
    target = services.get_schedule(_account_id(), schedule_id)
    form = _schedule_form()
    if request.method == "GET":
        form.name.data, form.start_date.data, form.end_date.data = target.name, target.start_date, target.end_date
        form.all_day.data, form.start_time.data, form.end_time.data = target.all_day, target.start_time, target.end_time
        form.timezone.data, form.recurrence.data = target.timezone, target.recurrence.value
        form.daily_mode.data, form.interval.data = target.daily_mode, target.interval
        form.weekdays.data, form.month_day.data = list(target.weekdays or ()), str(target.month_day)
    return _save_schedule(form, target)


@bp.route("/schedules/<int:schedule_id>/remove", methods=["GET", "POST"])
@requires("roles.manage")
def schedule_remove(schedule_id: int):
    target = services.get_schedule(_account_id(), schedule_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        name = target.name
        names = services.remove_schedule(_account_id(), schedule_id)
        message = f"The schedule \u201c{name}\u201d was removed."
        if names:
            message += " These assignments now apply at all times while active: " + ", ".join(names) + "."
        flash(message, "success")
        return redirect(url_for("role_assignments.schedules_index"))
    return render("assignments/schedule_remove.html", schedule=target, form=form,
                  used_by=services.schedule_usage(_account_id(), schedule_id), when=schedules.describe(target))


# ------------------------------------------------------------------------------ check permissions
def instant(day, clock, zone_name: str) -> datetime:
    """The aware instant of a local date and time in ``zone_name`` (ValidationError for an
    unknown zone). A time skipped by a DST change is read with the offset before the change."""
    return datetime.combine(day, clock, tzinfo=schedules.zone(zone_name))


@bp.get("/check")
@requires("roles.view")
def check():
    form = CheckForm(request.args)
    form.timezone.choices = choices(timezone_choices())
    zone_name = request.args.get("timezone") or _account_zone()
    result = error = None
    status = 200
    asked = bool(request.args.get("user") or request.args.get("device"))
    if not asked:
        local = utcnow().astimezone(ZoneInfo(_account_zone()))
        form.timezone.data, form.date.data, form.time.data = _account_zone(), local.date(), local.time().replace(
            second=0, microsecond=0)
    elif form.validate():
        try:
            membership = services.find_member(_account_id(), form.user.data)
            device = services.find_device(_account_id(), form.device.data)
            now_local = utcnow().astimezone(schedules.zone(zone_name))
            at = instant(form.date.data or now_local.date(),
                         form.time.data or now_local.time().replace(tzinfo=None), zone_name)
            result = permissions.check_permissions(membership, device, at)
        except TesseraError as err:
            error, status = _field_error(form, err), err.status
        else:
            result.user, result.device, result.local_at = membership, device, at
    else:
        status = 422
    return render("assignments/check.html", status=status, form=form, result=result, error=error,
                  labels=permissions.PERMISSION_LABELS, client_labels=permissions.CLIENT_TYPE_LABELS)
