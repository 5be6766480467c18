"""The Logs page: the account's audit events through the listing component, in the account's
timezone, newest first, never another account's — and sign-ins show up there with their IP."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from app.models import AuditEvent
from tests.conftest import PASSWORD, csrf_token, sign_in


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def add_event(db, account, at, action="user.updated", target="alice@example.com", actor="bob@example.com",
              ip="10.0.0.7", details=""):
    db.session.add(AuditEvent(at=at, account_id=account.id if account else None, actor=actor, ip=ip,
                              action=action, target=target, details=details))
    db.session.commit()


def rows(html: str) -> list[str]:
    """The text of each body row of the listing table."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def column(html: str, key: str) -> list[str]:
    return [" ".join(re.sub(r"<[^>]+>", " ", c).split())
            for c in re.findall(rf'<td data-column="{key}">(.*?)</td>', html, re.S)]


def test_logs_page_shows_events_newest_first_in_the_account_timezone(db, client, factory):
    account = factory.account("Acme", timezone="Asia/Tokyo")
    manager = factory.user(account, "group_manager")
    add_event(db, account, utc(2024, 5, 1, 0, 0, 5), target="older@example.com", ip="198.51.100.4",
              details='{"fields": "email"}')
    add_event(db, account, utc(2024, 5, 2, 15, 30), target="newer@example.com", actor="carol@example.com")
    sign_in(client, manager.username)

    html = client.get("/logs/?f.action=user.updated").get_data(as_text=True)

    assert column(html, "target") == ["newer@example.com", "older@example.com"]
    # 15:30 UTC is 00:30 the next day in Tokyo (UTC+9).
    assert column(html, "time") == ["2024-05-03 00:30:00", "2024-05-01 09:00:05"]
    assert column(html, "actor") == ["carol@example.com", "bob@example.com"]
    assert column(html, "ip") == ["10.0.0.7", "198.51.100.4"]
    assert column(html, "details") == ["", "fields: email"]
    assert "User: updated" in column(html, "action")[0]


def test_another_accounts_events_are_never_shown(db, client, factory):
    account = factory.account("Acme")
    other = factory.account("Other")
    add_event(db, account, utc(2024, 5, 1, 12), target="mine@acme.example")
    add_event(db, other, utc(2024, 5, 1, 12), target="secret@other.example")
    add_event(db, None, utc(2024, 5, 1, 12), target="nobody-in-particular")
    sign_in(client, account.owner.username)

    everything = client.get("/logs/?rows=100").get_data(as_text=True)
    searched = client.get("/logs/?f.target=secret").get_data(as_text=True)

    assert "mine@acme.example" in everything
    assert "secret@other.example" not in everything and "nobody-in-particular" not in everything
    assert "No events match these filters." in searched
    assert "0 - 0 of 0" in searched


def test_filters_on_several_columns_show_as_chips(db, client, factory):
    account = factory.account("Acme")
    add_event(db, account, utc(2024, 5, 1, 8), action="sign_in.failed", ip="203.0.113.9", target="a@x.example")
    add_event(db, account, utc(2024, 5, 1, 9), action="sign_in.failed", ip="10.1.1.1", target="b@x.example")
    add_event(db, account, utc(2024, 5, 1, 10), action="sign_in.success", ip="203.0.113.9", target="c@x.example")
    add_event(db, account, utc(2024, 5, 3, 10), action="sign_in.failed", ip="203.0.113.9", target="d@x.example")
    sign_in(client, account.owner.username)

    html = client.get("/logs/?f.action=failed&f.ip=203.0.113&f.time.from=2024-05-01&f.time.to=2024-05-02"
                      ).get_data(as_text=True)

    assert column(html, "target") == ["a@x.example"]
    chips = re.findall(r'<li class="chip"><span>(.*?)</span>', html)
    assert chips == ["Time: 2024-05-01 \u2013 2024-05-02", "IP address: contains \u201c203.0.113\u201d",
                     "Action: contains \u201cfailed\u201d"]


def test_blank_filter_finds_events_without_a_user(db, client, factory):
    account = factory.account("Acme")
    add_event(db, account, utc(2024, 5, 1, 8), actor="", target="system-did-it")
    add_event(db, account, utc(2024, 5, 1, 9), actor="dan@example.com", target="dan-did-it")
    sign_in(client, account.owner.username)

    html = client.get("/logs/?f.actor=:blank&f.time.from=2024-05-01&f.time.to=2024-05-01").get_data(as_text=True)

    assert column(html, "target") == ["system-did-it"]
    assert column(html, "actor") == ["-"]


def test_sort_and_paging(db, client, factory):
    account = factory.account("Acme")
    start = utc(2024, 5, 1)
    for i in range(30):
        add_event(db, account, start + timedelta(minutes=i), target=f"user{i:02d}@example.com")
    sign_in(client, account.owner.username)

    first = client.get("/logs/?f.time.from=2024-05-01&f.time.to=2024-05-01&rows=10").get_data(as_text=True)
    last = client.get("/logs/?f.time.from=2024-05-01&f.time.to=2024-05-01&rows=10&page=3").get_data(as_text=True)
    by_target = client.get("/logs/?f.time.from=2024-05-01&f.time.to=2024-05-01&rows=10&sort=target&dir=asc"
                           ).get_data(as_text=True)

    assert "1 - 10 of 30" in first and column(first, "target")[0] == "user29@example.com"
    assert "21 - 30 of 30" in last and column(last, "target")[-1] == "user00@example.com"
    assert column(by_target, "target")[:2] == ["user00@example.com", "user01@example.com"]


def test_htmx_request_gets_only_the_listing(db, client, factory):
    account = factory.account("Acme")
    add_event(db, account, utc(2024, 5, 1, 8), target="in-the-partial@example.com")
    sign_in(client, account.owner.username)

    response = client.get("/logs/?f.target=partial", headers={"HX-Request": "true"})

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="listing-logs"')
    assert "<html" not in html and "in-the-partial@example.com" in html
    assert "HX-Request" in response.headers["Vary"]


def test_event_text_is_escaped(db, client, factory):
    account = factory.account("Acme")
    add_event(db, account, utc(2024, 5, 1, 8), target="<script>alert(1)</script>",
              details='{"name": "<img src=x onerror=alert(2)>"}')
    sign_in(client, account.owner.username)

    html = client.get("/logs/").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html


def test_regular_user_has_no_logs_page(client, factory):
    account = factory.account("Acme")
    user = factory.user(account, "user")
    sign_in(client, user.username)

    assert client.get("/logs/").status_code == 403
    assert 'href="/logs/"' not in client.get("/my-devices").get_data(as_text=True)


def test_sign_in_success_and_failure_appear_on_the_logs_page_with_the_ip(client, factory):
    account = factory.account("Acme")
    manager = factory.user(account, "group_manager")
    other = factory.account("Other")
    stranger = factory.user(other, "user")

    client.environ_base["REMOTE_ADDR"] = "203.0.113.77"
    token = csrf_token(client)
    client.post("/login", data={"csrf_token": token, "username": manager.username})
    failed = client.post("/login/password", data={"csrf_token": token, "password": "Wrong-Pass-1"})
    assert "not correct" in failed.get_data(as_text=True)
    sign_in(client, stranger.username)  # another account's sign-in from the same address
    client.post("/logout", data={"csrf_token": csrf_token(client, "/my-devices")})
    client.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert sign_in(client, manager.username, PASSWORD).status_code == 200

    html = client.get("/logs/?f.action=sign_in").get_data(as_text=True)

    events = list(zip(column(html, "action"), column(html, "target"), column(html, "ip")))
    assert [(a.split(" sign_in")[0], t, ip) for a, t, ip in events] == [
        ("Signed in", manager.username, "198.51.100.20"),
        ("Sign-in failed", manager.username, "203.0.113.77"),
    ]
    assert stranger.username not in html


def test_remote_session_and_access_confirmation_events_have_readable_names(db, client, factory):
    account = factory.account("Acme")
    events = {
        "session.started": "Remote session started",
        "session.ended": "Remote session ended",
        "session.power": "Power action requested",
        "confirm.requested": "Access confirmation requested",
        "confirm.allowed": "Access allowed by confirmation",
        "confirm.denied": "Access denied by confirmation",
        "confirm.expired": "Access confirmation expired",
        "confirm.cancelled": "Access confirmation cancelled",
        "confirm.skipped": "Access confirmation waived",
    }
    for minute, action in enumerate(events):
        add_event(db, account, utc(2024, 5, 1, 9, minute), action=action, target="pc-7",
                  details='{"via": "email"}')
    sign_in(client, account.owner.username)

    html = client.get("/logs/?rows=100&f.target=pc-7").get_data(as_text=True)

    shown = column(html, "action")
    # Newest first; each row reads as words, with the recorded name beside it for filtering.
    assert shown == [f"{label} {action}" for action, label in reversed(events.items())]
    assert column(html, "details") == ["via: email"] * len(events)
