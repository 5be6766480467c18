"""The Users page through the test client: filters as chips, sort, paging, the HTMX fragment,
the column chooser, bad query strings, and who may see it."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.models import User, UserSession, utcnow
from tests.conftest import sign_in


@pytest.fixture
def crowd(factory, db):
    """An account of 15: the owner, an administrator (who signs in), 11 users (6 with
    OnDemand), one group manager, and an invited user who has not set up the account."""
    account = factory.account("Crowd", max_users=50, max_ondemand_users=50)
    admin = factory.user(account, "administrator", email="admin@crowd.example")
    for i in range(11):
        factory.user(account, "user", email=f"user{i:02d}@crowd.example",
                     first_name=f"First{i:02d}", last_name="Member", ondemand_enabled=i % 2 == 0)
    factory.user(account, "group_manager", email="manager@crowd.example", first_name="Greta",
                 last_name="Manager")
    pending = factory.user(account, "user", email="pending@crowd.example")
    pending.password_hash = None
    db.session.commit()
    return account, admin


def rows(html: str) -> list[str]:
    """The usernames in the table body, in order."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'data-column="username">([^<\s]+)', body)


def test_two_filters_sort_and_paging_show_chips_and_the_right_rows(client, crowd):
    account, admin = crowd
    sign_in(client, admin.username)
    response = client.get("/users/?f.type=user&f.ondemand=yes&sort=username&dir=desc&rows=10")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Type: User" in html and "OnDemand: Yes" in html
    assert rows(html) == ["user10@crowd.example", "user08@crowd.example", "user06@crowd.example",
                          "user04@crowd.example", "user02@crowd.example", "user00@crowd.example"]
    assert "1 - 6 of 6" in html

    everyone = client.get("/users/?sort=username&rows=10&page=2").get_data(as_text=True)
    assert "11 - 15 of 15" in everyone
    assert rows(everyone) == ["user06@crowd.example", "user07@crowd.example", "user08@crowd.example",
                              "user09@crowd.example", "user10@crowd.example"]


def test_chip_remove_link_drops_only_that_filter(client, crowd):
    account, admin = crowd
    sign_in(client, admin.username)
    html = client.get("/users/?f.type=user&f.ondemand=no&sort=username").get_data(as_text=True)
    chip = re.search(r'<span>Type: User</span><a href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert chip == "/users/?f.ondemand=no&sort=username&dir=asc"
    after = client.get(chip).get_data(as_text=True)
    assert "Type: User" not in after and "OnDemand: No" in after
    assert "Greta Manager" in after  # the group manager has no OnDemand: back in the list


def test_status_filter_finds_invite_pending_and_online_users(client, crowd, db):
    account, admin = crowd
    sign_in(client, admin.username)
    pending = client.get("/users/?f.status=pending").get_data(as_text=True)
    assert rows(pending) == ["pending@crowd.example"]
    assert "Invite pending" in pending
    online = client.get("/users/?f.status=online").get_data(as_text=True)
    assert rows(online) == ["admin@crowd.example"]  # the one signed in right now

    # Seen a while ago: offline, shown as "Last seen".
    member = db.session.query(User).filter_by(username="user03@crowd.example").one()
    member.last_seen_at = utcnow() - timedelta(hours=3)
    db.session.add(UserSession(id="old-session", user_id=member.id, account_id=account.id,
                               session_version=1, last_seen_at=utcnow() - timedelta(hours=3)))
    db.session.commit()
    offline = client.get("/users/?f.status=offline&f.username=user03").get_data(as_text=True)
    assert "Last seen 3 hours ago" in offline


def test_blanks_filter_on_last_seen_lists_who_never_signed_in(client, crowd):
    account, admin = crowd
    sign_in(client, admin.username)
    html = client.get("/users/?f.last_seen=:blank&rows=25").get_data(as_text=True)
    assert "Last seen: (Blanks)" in html
    assert "admin@crowd.example" not in rows(html)
    assert len(rows(html)) == 14  # everyone else, the owner included


def test_htmx_request_gets_only_the_listing_fragment(client, crowd):
    account, admin = crowd
    sign_in(client, admin.username)
    response = client.get("/users/?f.type=group_manager", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert html.lstrip().startswith('<div id="listing-users"')
    assert "<html" not in html and "Invite users" not in html
    assert rows(html) == ["manager@crowd.example"]
    full = client.get("/users/?f.type=group_manager")
    assert "<html" in full.get_data(as_text=True) and "HX-Request" in full.headers["Vary"]


def test_column_chooser_shows_only_the_chosen_columns(client, crowd):
    account, admin = crowd
    sign_in(client, admin.username)
    html = client.get("/users/?cols=email&cols=mfa").get_data(as_text=True)
    headers = re.findall(r'<th aria-sort="[a-z]+" data-column="([a-z_]+)"', html)
    assert headers == ["name", "email", "mfa"]


@pytest.mark.parametrize("query", [
    "?page=999", "?rows=7", "?sort=password_hash", "?dir=up", "?f.type=emperor",
    "?f.created.from=not-a-date", "?cols=;drop", "?page=-1&rows=1000000", "?f.status=%00",
])
def test_bad_query_strings_fall_back_to_a_working_page(client, crowd, query):
    account, admin = crowd
    sign_in(client, admin.username)
    response = client.get("/users/" + query)
    assert response.status_code == 200
    assert " of 15" in response.get_data(as_text=True)


def test_reloading_the_bare_address_clears_the_filters(client, crowd):
    account, admin = crowd
    sign_in(client, admin.username)
    assert "1 - 1 of 1" in client.get("/users/?f.type=group_manager").get_data(as_text=True)
    html = client.get("/users/").get_data(as_text=True)
    assert 'class="chip"' not in html and "1 - 10 of 15" in html


def test_regular_users_cannot_see_the_users_page(client, login_as):
    login_as("user")
    assert client.get("/users/").status_code == 403


def test_other_accounts_users_are_never_listed(client, crowd, factory):
    other = factory.account("Other")
    factory.user(other, "user", email="outsider@other.example")
    account, admin = crowd
    sign_in(client, admin.username)
    html = client.get("/users/?f.username=outsider").get_data(as_text=True)
    assert "0 - 0 of 0" in html and "outsider@other.example" not in html


def test_htmx_filter_submission_pushes_a_clean_address(client, crowd):
    account, admin = crowd
    sign_in(client, admin.username)
    response = client.get("/users/?sort=name&dir=asc&f.name=&f.type=user&f.status=&f.created.from=",
                          headers={"HX-Request": "true"})
    assert response.headers["HX-Push-Url"] == "/users/?f.type=user&sort=name&dir=asc"
