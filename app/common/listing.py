"""One listing component for every table in the Portal (users now; devices, groups, roles and
the audit log later).

A :class:`Listing` takes a SQLAlchemy ``select()``, a list of :class:`Column` definitions and
the request's query arguments, and does the filtering, sorting, counting and paging in the
database (``COUNT`` + ``LIMIT``/``OFFSET``, with the id as a stable second sort key). It never
loads more than one page of rows. All of its state lives in the query string, so a listing
works as plain links and GET forms, a shared link shows the same page, and reloading the bare
URL clears every filter:

=====================  ===========================================================
``f.<key>=text``       text columns: "contains", case-insensitive
``f.<key>=value``      choice columns: one of the column's choices
``f.<key>=yes|no``     boolean columns
``f.<key>.from=DATE``  date columns: a range, either end optional (``YYYY-MM-DD``)
``f.<key>.to=DATE``
``f.<key>=:blank``     any column with ``blanks=True``: NULL (or empty text)
``sort=<key>``         a sortable column; ``dir=asc|desc``
``page=N``             clamped to the pages there are
``rows=10|25|50|100``  anything else falls back to the default
``cols=a,b,c``         visible columns (``cols=a&cols=b`` from the chooser form works too)
=====================  ===========================================================

Bad values (an unknown column, ``rows=7``, ``page=999``, garbage dates) are ignored or clamped,
never an error.

The template half is ``templates/partials/listing.html``; a view uses both like this::

    # views.py
    listing = Listing(
        "users",
        select(Membership, User).join(User).where(Membership.account_id == account_id),
        [
            Column("name", "Name", User.first_name + " " + User.last_name, required=True),
            Column("type", "Type", Membership.type, filter="choice",
                   choices=[(t.name, t.label) for t in UserType], coerce=UserType.__getitem__),
            Column("enabled", "Enabled", Membership.enabled, filter="bool"),
            Column("created", "Created", Membership.created_at, filter="date"),
        ],
        request.args,
        id_column=Membership.id,
        default_sort="name",
        bulk_actions=[BulkAction("Remove", url_for("users.remove_many"), danger=True)],
    )
    return listing.push_url(render("users/index.html", partial="listing", listing=listing))

    {# users/index.html #}
    {% block listing %}
      {% from "partials/listing.html" import listing_table %}
      {% call(row, column) listing_table(listing, row_id=row_id_of) %}
        {% if column.key == "name" %}<a href="...">{{ row.User.display_name }}</a>
        {% else %}{{ listing.value(row, column) }}{% endif %}
      {% endcall %}
    {% endblock %}

``render(..., partial="listing")`` answers an HTMX request with only that block (the table
and its controls), and sets ``Vary: HX-Request``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlencode

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

BLANK = ":blank"
ROWS_CHOICES = (10, 25, 50, 100)
FILTER_KINDS = ("text", "choice", "bool", "date")
MAX_TEXT = 200  # a filter longer than this is cut: nobody types it, and LIKE on it is waste


@dataclass
class Column:
    """One column of a listing.

    ``expr`` is the SQL expression that is filtered and (unless ``sort_expr`` is given) sorted
    on. ``filter`` is one of ``text``, ``choice``, ``bool``, ``date`` or ``None`` (no filter).
    ``choices`` are ``(token, label)`` pairs for choice filters; ``coerce`` turns a token into
    the value compared with ``expr`` (e.g. an enum member). ``sort_expr`` (one expression or a
    tuple of them) sorts instead of ``expr``, e.g. a rank, or plain columns an index covers. ``blanks`` offers a "(Blanks)"
    filter matching NULL, or NULL or empty text for text columns. ``required`` columns cannot
    be hidden. ``get`` reads the cell value from a result row (default: the attribute named
    ``key``). ``match`` turns a choice token into the WHERE clause instead of ``expr == value``
    (plain predicates let the planner estimate better than a comparison with a CASE).
    """

    key: str
    label: str
    expr: Any = None
    filter: str | None = "text"
    sortable: bool = True
    visible: bool = True
    blanks: bool = False
    required: bool = False
    choices: Sequence[tuple[str, str]] = ()
    coerce: Callable[[str], Any] | None = None
    sort_expr: Any = None
    get: Callable[[Any], Any] | None = None
    match: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.filter is not None and self.filter not in FILTER_KINDS:
            raise ValueError(f"unknown filter kind {self.filter!r} for column {self.key!r}")
        if self.expr is None:
            self.filter = None
            self.sortable = self.sort_expr is not None

    @property
    def choice_labels(self) -> dict[str, str]:
        return dict(self.choices)


@dataclass
class BulkAction:
    """A button above the table that POSTs the selected row ids (``selected``) to ``url``."""

    label: str
    url: str
    danger: bool = False
    confirm: str = ""


@dataclass
class ActiveFilter:
    """A parsed filter: what it matches, how the chip reads, and its query-string pairs."""

    column: Column
    value: Any  # str, bool, (date | None, date | None) or BLANK
    text: str
    params: list[tuple[str, str]] = field(default_factory=list)


class Listing:
    """A filtered, sorted, paged view of ``query``. The query runs when the listing is built.

    ``id_column`` is the row id used for the stable second sort and for the bulk-action
    checkboxes (``row_id`` reads it back from a row; default: the attribute ``id`` of the
    first entity of the row, or of the row itself).
    """

    def __init__(
        self,
        name: str,
        query: Select,
        columns: Sequence[Column],
        args: Mapping[str, Any],
        *,
        id_column: Any,
        default_sort: str | None = None,
        default_dir: str = "asc",
        default_rows: int = 10,
        endpoint: str | None = None,
        url_values: Mapping[str, Any] | None = None,
        bulk_actions: Sequence[BulkAction] = (),
        row_id: Callable[[Any], Any] | None = None,
        tz: str = "UTC",
        session=None,
    ) -> None:
        self.name = name
        self.dom_id = f"listing-{name}"
        self.columns = list(columns)
        self.by_key = {c.key: c for c in self.columns}
        self.id_column = id_column
        self.bulk_actions = list(bulk_actions)
        self._row_id = row_id
        self._endpoint = endpoint
        self._url_values = dict(url_values or {})
        self._tz = _zone(tz)
        self.default_rows = default_rows if default_rows in ROWS_CHOICES else ROWS_CHOICES[0]
        self.default_sort = default_sort if default_sort in self.by_key else None
        self.default_dir = "desc" if default_dir == "desc" else "asc"
        self._parse(args)
        self._load(query, session)

    # ----------------------------------------------------------------- reading the state
    def _parse(self, args: Mapping[str, Any]) -> None:
        getlist = args.getlist if hasattr(args, "getlist") else (
            lambda k: [args[k]] if k in args else []
        )
        self.filters: list[ActiveFilter] = []
        for column in self.columns:
            if column.filter is None:
                continue
            parsed = self._parse_filter(column, getlist)
            if parsed is not None:
                self.filters.append(parsed)

        sort = _first(getlist("sort"))
        column = self.by_key.get(sort or "")
        if column is not None and column.sortable:
            self.sort = column.key
            self.dir = "desc" if _first(getlist("dir")) == "desc" else "asc"
            self._sort_given = True
        else:
            self.sort = self.default_sort
            self.dir = self.default_dir
            self._sort_given = False

        rows = _int(_first(getlist("rows")))
        self.rows_given = rows in ROWS_CHOICES
        self.rows = rows if self.rows_given else self.default_rows
        self.requested_page = max(_int(_first(getlist("page"))) or 1, 1)

        wanted: list[str] = []
        for value in getlist("cols"):
            wanted.extend(part.strip() for part in str(value).split(","))
        known = [key for key in wanted if key in self.by_key]
        self.cols_given = bool(known)
        if known:
            chosen = set(known)
            self.visible = [c for c in self.columns if c.required or c.key in chosen]
        else:
            self.visible = [c for c in self.columns if c.required or c.visible]

    def _parse_filter(self, column: Column, getlist) -> ActiveFilter | None:
        key = f"f.{column.key}"
        values = [str(v).strip() for v in getlist(key)]
        if column.blanks and BLANK in values:
            return ActiveFilter(column, BLANK, "(Blanks)", [(key, BLANK)])
        value = next((v for v in values if v and v != BLANK), "")
        if column.filter == "text":
            if not value:
                return None
            value = value[:MAX_TEXT]
            return ActiveFilter(column, value, f"contains \u201c{value}\u201d", [(key, value)])
        if column.filter == "choice":
            labels = column.choice_labels
            if value not in labels:
                return None
            if column.coerce is not None:
                try:
                    column.coerce(value)
                except (KeyError, ValueError, TypeError):
                    return None
            return ActiveFilter(column, value, labels[value], [(key, value)])
        if column.filter == "bool":
            if value.lower() in ("yes", "true", "1", "on"):
                return ActiveFilter(column, True, "Yes", [(key, "yes")])
            if value.lower() in ("no", "false", "0", "off"):
                return ActiveFilter(column, False, "No", [(key, "no")])
            return None
        # date range
        start = _date(_first(getlist(f"{key}.from")))
        end = _date(_first(getlist(f"{key}.to")))
        if start and end and start > end:
            start, end = end, start
        if not start and not end:
            return None
        params = []
        if start:
            params.append((f"{key}.from", start.isoformat()))
        if end:
            params.append((f"{key}.to", end.isoformat()))
        if start and end:
            text = f"{start.isoformat()} \u2013 {end.isoformat()}"
        elif start:
            text = f"from {start.isoformat()}"
        else:
            text = f"until {end.isoformat()}"
        return ActiveFilter(column, (start, end), text, params)

    # ----------------------------------------------------------------- querying
    def conditions(self) -> list[ColumnElement]:
        """The WHERE clauses of the active filters (the bench and tests reuse them)."""
        clauses = []
        for active in self.filters:
            column, expr, value = active.column, active.column.expr, active.value
            if value == BLANK:
                if column.filter == "text":
                    clauses.append(or_(expr.is_(None), expr == ""))
                else:
                    clauses.append(expr.is_(None))
            elif column.filter == "text":
                clauses.append(expr.icontains(value, autoescape=True))
            elif column.filter == "choice" and column.match is not None:
                clauses.append(column.match(value))
            elif column.filter == "choice":
                clauses.append(expr == (column.coerce(value) if column.coerce else value))
            elif column.filter == "bool":
                # "= true" rather than "IS TRUE": PostgreSQL can use an index for the former.
                clauses.append(expr == value)
            else:
                start, end = value
                parts = []
                if start:
                    parts.append(expr >= datetime.combine(start, time(), self._tz))
                if end:
                    parts.append(expr < datetime.combine(end + timedelta(days=1), time(), self._tz))
                clauses.append(and_(*parts))
        return clauses

    def order_by(self) -> list[ColumnElement]:
        ordering = []
        if self.sort is not None:
            column = self.by_key[self.sort]
            exprs = column.sort_expr if column.sort_expr is not None else column.expr
            for expr in exprs if isinstance(exprs, (list, tuple)) else [exprs]:
                ordering.append(expr.desc() if self.dir == "desc" else expr.asc())
        # The id keeps pages stable when many rows share a value.
        ordering.append(self.id_column.desc() if self.dir == "desc" else self.id_column.asc())
        return ordering

    def _load(self, query: Select, session) -> None:
        if session is None:
            from app.extensions import db

            session = db.session
        filtered = query.where(*self.conditions())
        count_query = select(func.count()).select_from(filtered.order_by(None).subquery())
        self.total = session.scalar(count_query) or 0
        self.pages = max(math.ceil(self.total / self.rows), 1)
        self.page = min(self.requested_page, self.pages)
        offset = (self.page - 1) * self.rows
        self.items = session.execute(
            filtered.order_by(None).order_by(*self.order_by()).limit(self.rows).offset(offset)
        ).all()
        self.first = offset + 1 if self.items else 0
        self.last = offset + len(self.items)

    # ----------------------------------------------------------------- reading rows
    def row_id(self, row) -> Any:
        if self._row_id is not None:
            return self._row_id(row)
        head = row[0] if isinstance(row, tuple) or hasattr(row, "_mapping") else row
        return getattr(head, "id", head)

    def value(self, row, column: Column | str) -> Any:
        """The plain value of a cell (templates format it; they escape it)."""
        if isinstance(column, str):
            column = self.by_key[column]
        if column.get is not None:
            return column.get(row)
        mapping = getattr(row, "_mapping", None)
        if mapping is None:
            return getattr(row, column.key, "")
        if column.key in mapping:
            return mapping[column.key]
        # select(Membership, User): the first entity with an attribute of that name.
        for part in mapping.values():
            if hasattr(part, column.key):
                return getattr(part, column.key)
        return ""

    # ----------------------------------------------------------------- building URLs
    def state(self, *, drop: Iterable[str] = (), **changes: Any) -> list[tuple[str, str]]:
        """The query-string pairs of the current state.

        ``drop`` names parts to leave out: ``"filters"``, ``"f.<key>"``, ``"sort"``,
        ``"page"``, ``"rows"``, ``"cols"``. ``changes`` set ``sort``, ``dir``, ``page``,
        ``rows`` or ``cols`` (a list of keys).
        """
        drop = set(drop)
        pairs: list[tuple[str, str]] = []
        if "filters" not in drop:
            for active in self.filters:
                if f"f.{active.column.key}" not in drop:
                    pairs.extend(active.params)
        sort = changes.get("sort", self.sort if self._sort_given else None)
        direction = changes.get("dir", self.dir)
        if sort and "sort" not in drop:
            pairs.append(("sort", sort))
            pairs.append(("dir", direction))
        rows = changes.get("rows", self.rows if self.rows_given else None)
        if rows and "rows" not in drop:
            pairs.append(("rows", str(rows)))
        cols = changes.get("cols", [c.key for c in self.visible] if self.cols_given else None)
        if cols and "cols" not in drop:
            pairs.append(("cols", ",".join(cols)))
        page = changes.get("page", self.page)
        if page and page != 1 and "page" not in drop:
            pairs.append(("page", str(page)))
        return pairs

    def url(self, *, drop: Iterable[str] = (), **changes: Any) -> str:
        from flask import request, url_for

        endpoint = self._endpoint or request.endpoint
        values = dict(self._url_values or (request.view_args or {}))
        base = url_for(endpoint, **values)
        query = urlencode(self.state(drop=drop, **changes))
        return f"{base}?{query}" if query else base

    def push_url(self, response):
        """For an HTMX request, put the listing's clean URL (no empty filter fields) in the
        browser's address bar instead of the raw form submission."""
        from app.common.templating import is_htmx

        if is_htmx():
            response.headers["HX-Push-Url"] = self.url()
        return response

    def sort_url(self, column: Column) -> str:
        if self.sort == column.key:
            direction = "asc" if self.dir == "desc" else "desc"
        else:
            direction = "asc"
        return self.url(sort=column.key, dir=direction, page=1)

    def remove_filter_url(self, active: ActiveFilter) -> str:
        return self.url(drop={f"f.{active.column.key}"}, page=1)

    def clear_url(self) -> str:
        return self.url(drop={"filters"}, page=1)

    def page_url(self, page: int) -> str:
        return self.url(page=min(max(page, 1), self.pages))

    # ----------------------------------------------------------------- template helpers
    def filter_for(self, column: Column) -> ActiveFilter | None:
        for active in self.filters:
            if active.column.key == column.key:
                return active
        return None

    def hidden_filters(self) -> list[ActiveFilter]:
        """Active filters on hidden columns: carried through the filter form unchanged."""
        shown = {c.key for c in self.visible}
        return [a for a in self.filters if a.column.key not in shown]

    @property
    def hideable(self) -> list[Column]:
        return [c for c in self.columns if not c.required]

    def is_visible(self, column: Column) -> bool:
        return column in self.visible

    @property
    def filterable(self) -> bool:
        return any(c.filter for c in self.visible)

    @property
    def summary(self) -> str:
        """The "1 - 10 of 57" text."""
        return f"{self.first} - {self.last} of {self.total}"


def _first(values: Sequence[Any]) -> str | None:
    for value in values:
        if value is not None and str(value) != "":
            return str(value)
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 9:
        return None
    return int(text)


def _date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _zone(name: str):
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # an unknown zone name: dates are read as UTC
        return timezone.utc
