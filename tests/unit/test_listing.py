"""The listing component against the real database (SQLite, or PostgreSQL with
TESSERA_TEST_DATABASE=postgres): filter parsing, blanks, several filters, sort, paging, the
query-string round trip and bad input that must fall back instead of failing."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.common.listing import BLANK, BulkAction, Column, Listing
from app.models import Account, Membership, User, UserType


def _at(day: int) -> datetime:
    return datetime(2024, 3, day, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def people(db):
    """An account with seven members whose names, types and dates differ, plus another
    account's member who must never show up."""
    account = Account(company="Listing Co")
    other = Account(company="Elsewhere")
    db.session.add_all([account, other])
    db.session.flush()
    rows = [
        ("ada@example.com", "Ada", "Lovelace", UserType.administrator, True, _at(1), _at(5)),
        ("alan@example.com", "Alan", "Turing", UserType.user, True, _at(2), None),
        ("grace@example.com", "Grace", "Hopper", UserType.group_manager, False, _at(3), _at(6)),
        ("edsger@example.com", "", "", UserType.user, True, _at(4), None),
        ("barbara@example.com", "Barbara", "Liskov", UserType.user, False, _at(5), _at(7)),
        ("ken@example.com", "Ken", "Thompson", UserType.user, True, _at(6), None),
        ("linus_x@example.com", "Linus", "Torvalds", UserType.user, True, _at(7), None),
    ]
    for username, first, last, user_type, enabled, created, seen in rows:
        user = User(username=username, email=username, first_name=first, last_name=last,
                    last_seen_at=seen, created_at=created)
        db.session.add(Membership(user=user, account=account, type=user_type, enabled=enabled,
                                  created_at=created))
    stranger = User(username="stranger@example.com", email="stranger@example.com",
                    first_name="Ada", last_name="Stranger")
    db.session.add(Membership(user=stranger, account=other, type=UserType.user))
    db.session.commit()
    return account


def columns():
    return [
        Column("name", "Name", User.first_name + " " + User.last_name, required=True, blanks=True),
        Column("username", "Username", User.username),
        Column("type", "Type", Membership.type, filter="choice",
               choices=[(t.name, t.label) for t in UserType], coerce=UserType.__getitem__),
        Column("enabled", "Enabled", Membership.enabled, filter="bool"),
        Column("created", "Created", Membership.created_at, filter="date"),
        Column("seen", "Last seen", User.last_seen_at, filter="date", blanks=True, visible=False),
    ]


def make(account, **args) -> Listing:
    query = select(Membership, User).join(User, Membership.user_id == User.id).where(
        Membership.account_id == account.id)
    return Listing("people", query, columns(), MultiDict(args), id_column=Membership.id,
                   default_sort="username", endpoint="users.index")


def usernames(listing: Listing) -> list[str]:
    return [row.User.username for row in listing.items]


def test_without_arguments_everything_of_the_account_is_listed_by_default_sort(app, people):
    listing = make(people)
    assert listing.total == 7
    assert usernames(listing)[:3] == ["ada@example.com", "alan@example.com", "barbara@example.com"]
    assert "stranger@example.com" not in usernames(listing)
    assert listing.summary == "1 - 7 of 7"


def test_text_filter_contains_ignores_case(app, people):
    listing = make(people, **{"f.name": "LOV"})
    assert usernames(listing) == ["ada@example.com"]
    assert [(f.column.label, f.text) for f in listing.filters] == [("Name", "contains \u201cLOV\u201d")]


def test_text_filter_treats_like_wildcards_as_plain_characters(app, people):
    assert usernames(make(people, **{"f.username": "_x"})) == ["linus_x@example.com"]
    assert make(people, **{"f.username": "%"}).total == 0


def test_blanks_matches_empty_names_and_missing_dates(app, people):
    assert usernames(make(people, **{"f.name": BLANK})) == []  # "first last" of an unnamed user is " ", not blank
    blank_seen = make(people, **{"f.seen": BLANK})
    assert usernames(blank_seen) == ["alan@example.com", "edsger@example.com", "ken@example.com",
                                     "linus_x@example.com"]
    assert blank_seen.filters[0].text == "(Blanks)"


def test_blanks_on_a_text_column_matches_empty_text(app, people, db):
    columns_ = [Column("first", "First name", User.first_name, blanks=True)]
    query = select(User).join(Membership, Membership.user_id == User.id).where(
        Membership.account_id == people.id)
    listing = Listing("first", query, columns_, MultiDict({"f.first": BLANK}), id_column=User.id,
                      endpoint="users.index")
    assert [u.username for (u,) in listing.items] == ["edsger@example.com"]


def test_several_filters_apply_together_and_each_has_a_chip(app, people):
    listing = make(people, **{"f.type": "user", "f.enabled": "yes", "f.created.from": "2024-03-03"})
    assert usernames(listing) == ["edsger@example.com", "ken@example.com", "linus_x@example.com"]
    assert [f.column.key for f in listing.filters] == ["type", "enabled", "created"]
    assert [f.text for f in listing.filters] == ["User", "Yes", "from 2024-03-03"]


def test_removing_one_chip_keeps_the_other_filters_and_the_sort(app, people):
    with app.test_request_context("/users/"):
        listing = make(people, **{"f.type": "user", "f.enabled": "no", "sort": "created",
                                  "dir": "desc", "page": "1"})
        url = listing.remove_filter_url(listing.filters[0])
    params = dict(parse_qsl(urlsplit(url).query))
    assert params == {"f.enabled": "no", "sort": "created", "dir": "desc"}


def test_date_range_includes_both_end_days(app, people):
    listing = make(people, **{"f.created.from": "2024-03-02", "f.created.to": "2024-03-04"})
    assert usernames(listing) == ["alan@example.com", "edsger@example.com", "grace@example.com"]
    assert listing.filters[0].text == "2024-03-02 \u2013 2024-03-04"


def test_date_range_given_backwards_is_swapped(app, people):
    listing = make(people, **{"f.created.from": "2024-03-04", "f.created.to": "2024-03-02"})
    assert listing.total == 3


def test_sort_descending_with_id_as_tie_breaker(app, people):
    listing = make(people, sort="type", dir="desc", rows="10")
    # Enum names sort as text: user > group_manager > administrator; ties keep id order (desc).
    assert usernames(listing) == ["linus_x@example.com", "ken@example.com", "barbara@example.com",
                                  "edsger@example.com", "alan@example.com", "grace@example.com",
                                  "ada@example.com"]


def test_paging_counts_in_the_database_and_slices(app, people):
    listing = make(people, sort="created", rows="10")
    assert listing.rows == 10 and listing.pages == 1
    small = make(people, sort="created", page="2", **{"f.type": "user"})
    assert small.total == 5 and small.page == 1  # only one page of 10 exists


@pytest.mark.parametrize("args", [
    {"rows": "7"}, {"rows": "-10"}, {"rows": "abc"}, {"page": "0"}, {"page": "-3"},
    {"page": "99999999999999999999"}, {"page": "2.5"}, {"sort": "nope"}, {"sort": "name; drop"},
    {"dir": "sideways"}, {"cols": "nope,,"}, {"f.type": "emperor"}, {"f.enabled": "maybe"},
    {"f.created.from": "2024-13-45"}, {"f.created.to": "yesterday"}, {"f.unknown": "x"},
    {"f.name": "x" * 5000},
])
def test_bad_values_fall_back_instead_of_failing(app, people, args):
    listing = make(people, **args)
    assert listing.rows in (10, 25, 50, 100)
    assert listing.page == 1
    assert listing.total >= 0


def test_page_beyond_the_end_shows_the_last_page(app, people, db):
    listing = Listing("people", select(Membership, User).join(User, Membership.user_id == User.id).where(
        Membership.account_id == people.id), columns(), MultiDict({"rows": "10", "page": "50"}),
        id_column=Membership.id, endpoint="users.index")
    assert listing.page == listing.pages == 1
    assert listing.summary == "1 - 7 of 7"


def test_paging_through_rows_of_ten(app, people, db):
    for i in range(15):
        user = User(username=f"bulk{i:02d}@example.com", email="")
        db.session.add(Membership(user=user, account=people, type=UserType.user))
    db.session.commit()
    second = make(people, page="2")
    assert second.summary == "11 - 20 of 22"
    third = make(people, page="3")
    assert third.summary == "21 - 22 of 22"
    assert set(usernames(second)).isdisjoint(usernames(third))


def test_columns_choice_keeps_required_columns(app, people):
    listing = make(people, cols="type")
    assert [c.key for c in listing.visible] == ["name", "type"]
    chooser = make(people, **{"cols": ["created", "seen"]})  # from the checkbox form: cols=a&cols=b
    assert [c.key for c in chooser.visible] == ["name", "created", "seen"]
    assert [c.key for c in make(people).visible] == ["name", "username", "type", "enabled", "created"]


def test_urls_carry_the_state_and_reset_the_page(app, people):
    with app.test_request_context("/users/"):
        listing = make(people, rows="25", cols="username", sort="username", dir="desc",
                       **{"f.type": "user"})
        sort_url = listing.sort_url(listing.by_key["username"])
        assert dict(parse_qsl(urlsplit(sort_url).query)) == {
            "f.type": "user", "sort": "username", "dir": "asc", "rows": "25", "cols": "name,username"}
        assert urlsplit(listing.clear_url()).query == "sort=username&dir=desc&rows=25&cols=name%2Cusername"


def test_template_renders_chips_sort_links_and_bulk_checkboxes(app, people):
    from flask import render_template_string

    with app.test_request_context("/users/?f.type=user&f.enabled=yes"):
        listing = Listing(
            "people", select(Membership, User).join(User, Membership.user_id == User.id).where(Membership.account_id == people.id),
            columns(), MultiDict({"f.type": "user", "f.enabled": "yes"}), id_column=Membership.id,
            default_sort="username", bulk_actions=[BulkAction("Remove", "/users/remove", danger=True)],
        )
        html = render_template_string(
            '{% from "partials/listing.html" import listing_table %}'
            '{% call(row, column) listing_table(listing) %}{{ listing.value(row, column) }}{% endcall %}',
            listing=listing)
    assert "Type: User" in html and "Enabled: Yes" in html
    assert html.count('name="selected"') == 4
    assert 'href="/users/?f.enabled=yes"' in html  # the Type chip's remove link
    assert "1 - 4 of 4" in html and "ken@example.com" in html
    assert 'hx-target="#listing-people"' in html and 'hx-push-url="true"' in html
