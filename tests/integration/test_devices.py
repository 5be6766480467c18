"""The Devices pages: the listing (columns, status, filters, escaping of what agents report),
favourites (star, bulk, listed first, filter), Enroll for pending devices (one and many), edit
(alias, groups, description), removal (administrators, token stops working), and the device
counters in the title bar and on the dashboard."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.downloads.services import PackageData, create_package
from app.models import AuditEvent, Device, DeviceFavourite, EnrolmentState, Group, GroupKind
from tests.conftest import csrf_token, sign_in

XSS = "<script>alert(1)</script>"


def enrol(client, package, hardware_id, hostname, os="Debian 12"):
    response = client.post("/api/v1/agent/enroll", json={
        "enrollment_key": package.enrollment_key, "hostname": hostname, "os": os,
        "agent_version": "0.1.0", "hardware_id": hardware_id})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def device(db, device_id) -> Device:
    db.session.expire_all()
    return db.session.get(Device, device_id)


def hostnames(html: str) -> list[str]:
    """The hostnames of the listing, in order."""
    return re.findall(r'data-column="hostname"><a href="/devices/\d+">([^<]*)</a>', html)


def post(client, url, data=None, page="/devices/"):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **(data or {})})


@pytest.fixture
def account(factory):
    return factory.account("Devices Co")


@pytest.fixture
def pending(account):
    return create_package(account.id, PackageData(name="Review first"))


@pytest.fixture
def enrolled(account):
    return create_package(account.id, PackageData(name="Trusted", enrolment_state=EnrolmentState.enrolled))


def device_group(db, account, name) -> Group:
    group = Group(account_id=account.id, kind=GroupKind.device, name=name)
    db.session.add(group)
    db.session.commit()
    return group


# --------------------------------------------------------------------------- the listing
def test_listing_shows_what_the_agent_reported(client, db, account, enrolled, pending):
    group = device_group(db, account, "Web")
    one = enrol(client, enrolled, "hw-1", "web-01", os="Ubuntu 24.04")
    enrol(client, pending, "hw-2", "new-pc")
    d = device(db, one["device_id"])
    d.alias, d.logged_in_user, d.online = "Front web", "alice", True
    d.groups.append(group)
    db.session.commit()
    sign_in(client, account.owner.username)
    html = client.get("/devices/").get_data(as_text=True)
    row = re.search(r">web-01</a>.*?</tr>", html, re.S).group(0)
    for text in ("Online", "Front web", "Web", "alice", "Ubuntu 24.04", "Enrolled", "Trusted"):
        assert text in row, text
    pending_row = re.search(r">new-pc</a>.*?</tr>", html, re.S).group(0)
    assert "Pending" in pending_row and "Review first" in pending_row and ">Enroll</button>" in pending_row


def test_columns_can_be_chosen(client, db, account, enrolled):
    enrol(client, enrolled, "hw-1", "web-01")
    sign_in(client, account.owner.username)
    default = client.get("/devices/").get_data(as_text=True)
    assert 'data-column="agent_version"' not in default and 'data-column="os"' in default
    chosen = client.get("/devices/?cols=hostname,agent_version").get_data(as_text=True)
    assert re.search(r'data-column="agent_version"><span class="presence-agent_version-\d+">0.1.0', chosen) and 'data-column="os"' not in chosen


def test_status_and_group_filters(client, db, account, enrolled, pending):
    group = device_group(db, account, "Kiosks")
    a = enrol(client, enrolled, "a", "kiosk-a")
    enrol(client, enrolled, "b", "office-b")
    enrol(client, pending, "c", "pending-c")
    kiosk = device(db, a["device_id"])
    kiosk.groups.append(group)
    db.session.commit()
    sign_in(client, account.owner.username)
    assert hostnames(client.get("/devices/?f.status=pending").get_data(as_text=True)) == ["pending-c"]
    assert hostnames(client.get(f"/devices/?f.groups={group.id}").get_data(as_text=True)) == ["kiosk-a"]
    assert sorted(hostnames(client.get("/devices/?f.status=offline").get_data(as_text=True))) == ["kiosk-a", "office-b"]


def test_agent_reported_text_is_escaped_in_the_list_and_details(client, db, account, enrolled):
    answer = enrol(client, enrolled, "hw-x", XSS, os=f"Linux {XSS}")
    sign_in(client, account.owner.username)
    for url in ("/devices/", f"/devices/{answer['device_id']}", f"/devices/{answer['device_id']}/edit"):
        html = client.get(url).get_data(as_text=True)
        assert XSS not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def test_another_accounts_devices_are_not_listed_or_found(client, db, factory, account, enrolled):
    other = factory.account()
    theirs = enrol(client, create_package(other.id, PackageData(name="Theirs")), "hw-t", "their-pc")
    sign_in(client, account.owner.username)
    assert "their-pc" not in client.get("/devices/").get_data(as_text=True)
    for url in (f"/devices/{theirs['device_id']}", f"/devices/{theirs['device_id']}/edit",
                f"/devices/{theirs['device_id']}/remove"):
        assert client.get(url).status_code == 404, url
    assert post(client, f"/devices/{theirs['device_id']}/enroll").status_code == 404
    assert post(client, f"/devices/{theirs['device_id']}/favourite").status_code == 404
    refused = post(client, "/devices/favourites/add", {"selected": str(theirs["device_id"])})
    assert refused.status_code == 404
    assert db.session.scalars(select(DeviceFavourite)).all() == []


# --------------------------------------------------------------------------- favourites
def test_favourites_come_first_by_default_and_can_be_filtered(app, client, db, account, enrolled):
    ids = {name: enrol(client, enrolled, name, name)["device_id"] for name in ("alpha", "bravo", "charlie", "delta")}
    owner = account.owner
    sign_in(client, owner.username)
    assert hostnames(client.get("/devices/").get_data(as_text=True)) == ["alpha", "bravo", "charlie", "delta"]

    star = post(client, f"/devices/{ids['charlie']}/favourite", {"next": "/devices/"})
    assert star.status_code == 302 and star.headers["Location"] == "/devices/"
    bulk = post(client, "/devices/favourites/add", {"selected": [str(ids["delta"]), str(ids["charlie"])]})
    assert bulk.status_code == 302
    html = client.get("/devices/").get_data(as_text=True)
    assert hostnames(html) == ["charlie", "delta", "alpha", "bravo"]
    assert hostnames(client.get("/devices/?f.favourite=yes").get_data(as_text=True)) == ["charlie", "delta"]
    assert hostnames(client.get("/devices/?f.favourite=no").get_data(as_text=True)) == ["alpha", "bravo"]

    # Favourites are per user: a colleague's list is unchanged.
    colleague = app.test_client()
    sign_in(colleague, factory_user(db, account, "group_manager").username)
    assert hostnames(colleague.get("/devices/").get_data(as_text=True)) == ["alpha", "bravo", "charlie", "delta"]

    post(client, "/devices/favourites/remove", {"selected": str(ids["charlie"])})
    assert hostnames(client.get("/devices/").get_data(as_text=True)) == ["delta", "alpha", "bravo", "charlie"]


def test_the_star_toggles_with_htmx_and_swaps_itself(client, db, account, enrolled):
    answer = enrol(client, enrolled, "hw-1", "web-01")
    sign_in(client, account.owner.username)
    token = csrf_token(client, "/devices/")
    url = f"/devices/{answer['device_id']}/favourite"
    on = client.post(url, headers={"HX-Request": "true", "X-CSRFToken": token})
    html = on.get_data(as_text=True)
    assert on.status_code == 200 and html.lstrip().startswith("<form")
    assert 'aria-pressed="true"' in html and "Remove from favourites" in html
    off = client.post(url, headers={"HX-Request": "true", "X-CSRFToken": token})
    assert 'aria-pressed="false"' in off.get_data(as_text=True)
    assert db.session.scalars(select(DeviceFavourite)).all() == []


# --------------------------------------------------------------------------- Enroll
def test_enroll_one_pending_device(client, db, account, pending):
    answer = enrol(client, pending, "hw-1", "new-pc")
    sign_in(client, account.owner.username)
    response = post(client, f"/devices/{answer['device_id']}/enroll", {"next": f"/devices/{answer['device_id']}"})
    assert response.status_code == 302 and response.headers["Location"] == f"/devices/{answer['device_id']}"
    d = device(db, answer["device_id"])
    assert d.enrolment_state is EnrolmentState.enrolled and d.enrolled_at is not None
    agent = client.get("/api/v1/agent/me", headers={"Authorization": f"Bearer {answer['device_token']}"})
    assert agent.get_json()["state"] == "enrolled"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "device.enrolled")).target == "new-pc"


def test_enroll_many_pending_devices(client, db, account, pending, enrolled):
    ids = [enrol(client, pending, f"hw-{n}", f"pc-{n}")["device_id"] for n in range(3)]
    already = enrol(client, enrolled, "hw-e", "old-pc")["device_id"]
    sign_in(client, account.owner.username)
    response = post(client, "/devices/enroll", {"selected": [str(i) for i in ids + [already]]})
    assert response.status_code == 302
    html = client.get("/devices/").get_data(as_text=True)
    assert "3 devices enrolled: pc-0, pc-1, pc-2." in html and "Already enrolled: old-pc." in html
    assert all(device(db, i).enrolment_state is EnrolmentState.enrolled for i in ids)


def test_enroll_with_a_revoked_device_changes_nothing(client, db, account, pending):
    keep = enrol(client, pending, "hw-1", "waiting")["device_id"]
    gone = enrol(client, pending, "hw-2", "gone")["device_id"]
    device(db, gone).revoked = True
    db.session.commit()
    sign_in(client, account.owner.username)
    post(client, "/devices/enroll", {"selected": [str(keep), str(gone)]})
    html = client.get("/devices/").get_data(as_text=True)
    assert "Revoked devices cannot be enrolled" in html and "Nothing was changed" in html
    assert device(db, keep).enrolment_state is EnrolmentState.pending


def test_enroll_without_a_selection_says_so(client, db, account):
    sign_in(client, account.owner.username)
    post(client, "/devices/enroll")
    assert "Select at least one device first." in client.get("/devices/").get_data(as_text=True)


# --------------------------------------------------------------------------- edit
def test_edit_alias_groups_and_description(client, db, account, enrolled):
    web, db_group = device_group(db, account, "Web"), device_group(db, account, "Databases")
    answer = enrol(client, enrolled, "hw-1", "srv-1")
    sign_in(client, factory_user(db, account, "group_manager").username)
    url = f"/devices/{answer['device_id']}/edit"
    page = client.get(url).get_data(as_text=True)
    assert "Web" in page and "Databases" in page
    response = post(client, url, {"alias": " Billing\tserver ", "description": "Rack 4",
                                  "groups": [str(web.id), str(db_group.id)]}, page=url)
    assert response.status_code == 302
    d = device(db, answer["device_id"])
    assert d.alias == "Billingserver" and d.description == "Rack 4"
    assert sorted(g.name for g in d.groups) == ["Databases", "Web"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "device.updated"))
    assert "Billingserver" in event.details and "Databases" in event.details


def test_edit_refuses_another_accounts_group(client, db, factory, account, enrolled):
    foreign = device_group(db, factory.account(), "Theirs")
    answer = enrol(client, enrolled, "hw-1", "srv-1")
    sign_in(client, account.owner.username)
    url = f"/devices/{answer['device_id']}/edit"
    response = post(client, url, {"alias": "Changed", "groups": [str(foreign.id)]}, page=url)
    assert response.status_code == 422
    assert "Choose device groups of this account." in response.get_data(as_text=True)
    d = device(db, answer["device_id"])
    assert d.alias == "" and d.groups == []


def factory_user(db, account, user_type):
    from tests.conftest import Factory

    return Factory(db).user(account, user_type)


# --------------------------------------------------------------------------- remove
def test_group_managers_may_not_remove_devices(client, db, account, enrolled):
    answer = enrol(client, enrolled, "hw-1", "srv-1")
    sign_in(client, factory_user(db, account, "group_manager").username)
    html = client.get(f"/devices/{answer['device_id']}").get_data(as_text=True)
    assert ">Edit</a>" in html and ">Remove</a>" not in html
    assert client.get(f"/devices/{answer['device_id']}/remove").status_code == 403
    toolbar = client.get("/devices/").get_data(as_text=True).split("<table", 1)[0]
    assert "Remove from favourites</button>" in toolbar and ">Remove</button>" not in toolbar
    assert device(db, answer["device_id"]) is not None


def test_administrators_remove_devices_and_their_tokens_stop_working(client, db, account, enrolled):
    one = enrol(client, enrolled, "hw-1", "srv-1")
    two = enrol(client, enrolled, "hw-2", "srv-2")
    three = enrol(client, enrolled, "hw-3", "srv-3")
    sign_in(client, factory_user(db, account, "administrator").username)
    post(client, f"/devices/{one['device_id']}/favourite")
    confirm = post(client, "/devices/remove", {"selected": [str(one["device_id"]), str(two["device_id"])]})
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Remove 2 devices?" in html and "srv-1" in html
    assert device(db, one["device_id"]) is not None  # nothing yet: this was the confirmation step
    done = post(client, "/devices/remove", {"selected": [str(one["device_id"]), str(two["device_id"])],
                                            "confirm": "yes"})
    assert done.status_code == 302
    assert device(db, one["device_id"]) is None and device(db, two["device_id"]) is None
    assert db.session.scalars(select(DeviceFavourite)).all() == []
    for answer, status in ((one, 401), (two, 401), (three, 200)):
        agent = client.get("/api/v1/agent/me", headers={"Authorization": f"Bearer {answer['device_token']}"})
        assert agent.status_code == status
    removed = db.session.scalars(select(AuditEvent.target).where(AuditEvent.action == "device.removed")).all()
    assert sorted(removed) == ["srv-1", "srv-2"]


def test_remove_one_device_from_its_page(client, db, account, enrolled):
    answer = enrol(client, enrolled, "hw-1", "srv-1")
    sign_in(client, account.owner.username)
    url = f"/devices/{answer['device_id']}/remove"
    assert "Remove 1 device?" in client.get(url).get_data(as_text=True)
    assert post(client, url, page=url).status_code == 302
    assert device(db, answer["device_id"]) is None


# --------------------------------------------------------------------------- counters
def counter(html: str, label: str) -> str:
    return re.search(rf"<li[^>]*>{label} <b>(\d+/\d+)</b></li>", html).group(1)


def test_title_bar_and_dashboard_count_devices(client, db, factory):
    account = factory.account("Counting Co", max_devices=10)
    group = device_group(db, account, "Group A")
    device_group(db, account, "Group B")
    db.session.add(Group(account_id=account.id, kind=GroupKind.user, name="Not a device group"))
    db.session.commit()
    trusted = create_package(account.id, PackageData(name="T", enrolment_state=EnrolmentState.enrolled,
                                                     device_group_id=group.id))
    review = create_package(account.id, PackageData(name="R"))
    a = enrol(client, trusted, "a", "a")
    enrol(client, trusted, "b", "b")
    enrol(client, review, "c", "c")
    revoked = enrol(client, review, "d", "d")
    device(db, a["device_id"]).online = True
    db.session.commit()
    device(db, revoked["device_id"]).revoked = True
    db.session.commit()
    sign_in(client, account.owner.username)
    html = client.get("/dashboard").get_data(as_text=True)
    assert counter(html, "Devices") == "3/10"  # the revoked device holds no seat
    panel = html.split('id="panel-devices"', 1)[1].split("</section>", 1)[0]
    values = dict(re.findall(r'<dd id="devices-(\w+)">(\d+)</dd>', panel))
    assert values == {"total": "3", "online": "1", "pending": "1", "groups": "2"}
    assert "/devices/" in panel
    activity = re.search(r'id="activity-enrolled-devices">.*?<strong class="trend-value">(\d+)', html, re.S)
    assert activity.group(1) == "2"  # the two enrolled at once; pending ones are not enrolled yet


def test_htmx_gets_only_the_listing_with_favourites_first(client, db, account, enrolled):
    ids = [enrol(client, enrolled, name, name)["device_id"] for name in ("alpha", "bravo")]
    sign_in(client, account.owner.username)
    post(client, f"/devices/{ids[1]}/favourite")
    response = client.get("/devices/?f.os=debian", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="listing-devices"')
    assert "<html" not in html and "HX-Request" in response.headers["Vary"]
    assert hostnames(html) == ["bravo", "alpha"]
    assert response.headers["HX-Push-Url"] == "/devices/?f.os=debian"


def test_details_link_to_check_permissions_and_the_package(client, db, account, enrolled):
    answer = enrol(client, enrolled, "hw-1", "srv-1")
    sign_in(client, account.owner.username)
    html = client.get(f"/devices/{answer['device_id']}").get_data(as_text=True)
    assert f"/role-assignments/check?device=%23{answer['device_id']}" in html
    assert f'href="/downloads/{enrolled.id}">Trusted</a>' in html


@pytest.mark.parametrize("user_type, devices_link, downloads_link", [
    ("user", False, False), ("group_manager", True, False), ("administrator", True, True)])
def test_the_menu_shows_devices_and_downloads_to_whom_they_are_for(client, db, account, user_type,
                                                                   devices_link, downloads_link):
    sign_in(client, factory_user(db, account, user_type).username)
    html = client.get("/profile").get_data(as_text=True)
    nav = html.split('<nav>', 1)[1].split('</nav>', 1)[0]
    assert ('href="/devices/"' in nav) is devices_link
    assert ('href="/downloads/"' in nav) is downloads_link


def test_listing_and_details_poll_presence_and_see_a_device_come_online(client, db, account, enrolled):
    answer = enrol(client, enrolled, "hw-p", "presence-pc")
    sign_in(client, account.owner.username)
    device_id = answer["device_id"]
    listing = client.get("/devices/").get_data(as_text=True)
    assert f"/devices/presence?ids={device_id}" in listing and f'class="presence-status-{device_id}"' in listing
    partial = client.get("/devices/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "presence-poller" in partial, "the poller is swapped with the listing, for the rows shown"
    details = client.get(f"/devices/{device_id}").get_data(as_text=True)
    assert f"/devices/presence?ids={device_id}" in details

    before = client.get(f"/devices/presence?ids={device_id}").get_data(as_text=True)
    assert "Online" not in before
    row = device(db, device_id)
    row.online, row.os = True, "Debian 13"
    db.session.commit()
    after = client.get(f"/devices/presence?ids={device_id}").get_data(as_text=True)
    assert "Online" in after and "Debian 13" in after


def test_details_list_the_remote_sessions_with_what_was_used_and_how_they_ended(client, db, account, enrolled):
    from datetime import timedelta

    from app.models import RemoteSession, utcnow

    answer = enrol(client, enrolled, "hw-s", "session-pc")
    sign_in(client, account.owner.username)
    page = client.get(f"/devices/{answer['device_id']}").get_data(as_text=True)
    assert "Nobody has connected to this device yet." in page

    now = utcnow()
    db.session.add_all([
        RemoteSession(account_id=account.id, device_id=answer["device_id"], technician=f"Eve {XSS}",
                      started_at=now - timedelta(hours=2), ended_at=now - timedelta(hours=1, minutes=58, seconds=55),
                      permissions="clipboard,keyboard_mouse,remote_session,view_screen",
                      used="keyboard_mouse,view_screen", close_code=4010),
        RemoteSession(account_id=account.id, device_id=answer["device_id"], technician="Tom (tom@x.example)",
                      started_at=now - timedelta(minutes=5), permissions="remote_session,view_screen",
                      used="view_screen"),
    ])
    db.session.commit()
    page = client.get(f"/devices/{answer['device_id']}").get_data(as_text=True)
    rows = re.findall(r'<tr data-session="\d+">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    newest, oldest = rows
    assert "Tom (tom@x.example)" in newest and "In progress" in newest
    assert "0:01:05" in oldest and "Keyboard and mouse, View screen" in oldest
    assert "The technician&#39;s permission was withdrawn." in oldest
    assert XSS not in page and "&lt;script&gt;" in page


def test_details_list_access_confirmations_with_who_answered_and_how(client, db, account, enrolled):
    from datetime import timedelta

    from app.models import AccessRequest, AccessRequestState, utcnow

    answer = enrol(client, enrolled, "hw-c", "confirm-pc")
    sign_in(client, account.owner.username)
    assert 'id="access-requests"' not in client.get(f"/devices/{answer['device_id']}").get_data(as_text=True)
    now = utcnow()
    db.session.add_all([
        AccessRequest(account_id=account.id, device_id=answer["device_id"], technician=f"Eve {XSS}",
                      created_at=now - timedelta(minutes=9), expires_at=now, state=AccessRequestState.denied,
                      answered_by="Ann at the desk", answered_via="host"),
        AccessRequest(account_id=account.id, device_id=answer["device_id"], technician="Tom",
                      created_at=now - timedelta(minutes=2), expires_at=now, state=AccessRequestState.allowed,
                      answered_by="Ada Helper", answered_via="email"),
    ])
    db.session.commit()
    page = client.get(f"/devices/{answer['device_id']}").get_data(as_text=True)
    rows = re.findall(r'<tr data-request="\d+">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    assert "Tom" in rows[0] and "Allowed" in rows[0] and "Ada Helper (by email)" in rows[0]
    assert "Denied" in rows[1] and "Ann at the desk (at the device)" in rows[1]
    assert XSS not in page
