"""Account configuration: administrators read it, only the owner changes it; details with a
validated timezone, change of owner, and the two logos (checked, sanitised, served, audited)."""
from __future__ import annotations

import io

import pytest

from app.models import Account, AuditEvent, Membership, User, UserType
from tests.conftest import csrf_token, sign_in
from tests.unit.test_logos import SVG_ATTACK, make_png

CONFIG = "/account/configuration"


def details_data(client, account, **changes):
    data = {"csrf_token": csrf_token(client, CONFIG), "company": account.company,
            "contact_name": "Carla Contact", "contact_email": "carla@example.com",
            "contact_phone": "+45 12 34 56 78", "timezone": "Europe/Copenhagen",
            "default_action": "viewer"}
    data.update(changes)
    return data


@pytest.fixture
def owner_client(client, factory):
    account = factory.account("Acme Widgets")
    sign_in(client, account.owner.username)
    client.account = account
    return client


def test_owner_sees_the_forms(owner_client, factory):
    html = owner_client.get(CONFIG).get_data(as_text=True)
    assert "No one can take over yet" in html  # nobody to hand the account to
    factory.user(owner_client.account, "administrator")
    html = owner_client.get(CONFIG).get_data(as_text=True)
    assert 'action="/account/configuration"' in html
    assert 'action="/account/configuration/owner"' in html
    assert 'action="/account/configuration/logo/wide"' in html
    assert "only the account owner can change it" not in html


def test_administrator_reads_the_configuration_but_cannot_change_it(app, db, client, factory):
    account = factory.account("Acme Widgets")
    admin = factory.user(account, "administrator")
    sign_in(client, admin.username)
    response = client.get(CONFIG)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "only the account owner can change it" in html
    assert "Acme Widgets" in html and admin.username in html  # listed among administrators
    assert "<form" not in html.split('<main id="content">', 1)[1]

    token = csrf_token(client, CONFIG)
    for path, data in ((CONFIG, details_data(client, account, company="Hijacked")),
                       (f"{CONFIG}/owner", {"csrf_token": token, "new_owner": admin.id, "confirm": "Acme Widgets"}),
                       (f"{CONFIG}/logo/wide", {"csrf_token": token, "wide-file": (io.BytesIO(make_png(400, 100)), "l.png")}),
                       (f"{CONFIG}/logo/wide/remove", {"csrf_token": token})):
        assert client.post(path, data=data).status_code == 403, path
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.company == "Acme Widgets" and account.owner_id != admin.id and not account.logo_wide_type


@pytest.mark.parametrize("user_type", ["user", "group_manager"])
def test_users_and_group_managers_cannot_open_the_configuration(client, login_as, user_type):
    login_as(user_type)
    assert client.get(CONFIG).status_code == 403


def test_owner_updates_the_account_details(db, owner_client):
    account = owner_client.account
    response = owner_client.post(CONFIG, data=details_data(owner_client, account, company="Acme Gadgets"),
                                 follow_redirects=True)
    assert "The account details were saved." in response.get_data(as_text=True)
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert (account.company, account.contact_name, account.contact_email, account.contact_phone,
            account.timezone, account.default_action) == (
        "Acme Gadgets", "Carla Contact", "carla@example.com", "+45 12 34 56 78", "Europe/Copenhagen", "viewer")
    event = db.session.query(AuditEvent).filter_by(action="account.updated").one()
    assert "Acme Gadgets" in event.details and "Europe/Copenhagen" in event.details


@pytest.mark.parametrize("changes, message", [
    ({"timezone": "Mars/Olympus_Mons"}, "Mars/Olympus_Mons is not a known timezone."),
    ({"timezone": ""}, "Choose a timezone."),
    ({"company": "  "}, "Enter the company name."),
    ({"contact_email": "carla@"}, "is not a valid email address"),
    ({"contact_phone": "call me <maybe>"}, "A phone number may hold digits"),
    ({"default_action": "teleport"}, "Choose a default remote control action"),
])
def test_bad_account_details_are_refused_and_nothing_is_written(db, owner_client, changes, message):
    account = owner_client.account
    before = (account.company, account.timezone, account.contact_email, account.default_action)
    response = owner_client.post(CONFIG, data=details_data(owner_client, account, **{"company": "Renamed", **changes}))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert (account.company, account.timezone, account.contact_email, account.default_action) == before
    assert db.session.query(AuditEvent).filter_by(action="account.updated").count() == 0


def test_company_name_of_another_account_is_refused(db, owner_client, factory):
    factory.account("Taken Name")
    response = owner_client.post(CONFIG, data=details_data(owner_client, owner_client.account, company="taken name"))
    assert response.status_code == 422
    assert "Another account is already named" in response.get_data(as_text=True)


def test_timezone_select_offers_known_zones(owner_client):
    html = owner_client.get(CONFIG).get_data(as_text=True)
    assert '<option value="Europe/Copenhagen">' in html
    assert '<option selected value="UTC">' in html or '<option value="UTC" selected>' in html


def test_change_owner_demotes_the_old_owner_and_signs_them_out(app, db, owner_client, factory):
    account = owner_client.account
    old_owner = account.owner
    successor = factory.user(account, "group_manager")
    elsewhere = app.test_client()
    sign_in(elsewhere, old_owner.username)

    html = owner_client.get(CONFIG).get_data(as_text=True)
    assert f'<option value="{successor.id}">' in html

    response = owner_client.post(f"{CONFIG}/owner", follow_redirects=True, data={
        "csrf_token": csrf_token(owner_client, CONFIG), "new_owner": successor.id,
        "confirm": "acme widgets"})
    assert response.request.path == "/login"
    assert "now owns Acme Widgets" in response.get_data(as_text=True)

    db.session.expire_all()
    account = db.session.get(Account, account.id)
    assert account.owner_id == successor.id
    types = {m.user_id: m.type for m in db.session.query(Membership).filter_by(account_id=account.id)}
    assert types[successor.id] is UserType.owner
    assert types[old_owner.id] is UserType.administrator
    # Both of the old owner's browsers must sign in again.
    assert owner_client.get("/dashboard").status_code == 302
    assert elsewhere.get("/dashboard").status_code == 302
    event = db.session.query(AuditEvent).filter_by(action="account.owner_changed").one()
    assert successor.username in event.details and old_owner.username in event.details

    # The new owner can configure; the old one now reads only.
    new_client = app.test_client()
    sign_in(new_client, successor.username)
    assert "only the account owner can change it" not in new_client.get(CONFIG).get_data(as_text=True)
    sign_in(owner_client, old_owner.username)
    assert "only the account owner can change it" in owner_client.get(CONFIG).get_data(as_text=True)


def test_change_owner_needs_the_company_name_and_a_set_up_user(db, owner_client, factory):
    account = owner_client.account
    successor = factory.user(account, "administrator")
    invited = factory.user(account, "user", password=None)  # has not set up a password yet
    disabled = factory.user(account, "user", enabled=False)
    token = csrf_token(owner_client, CONFIG)
    html = owner_client.get(CONFIG).get_data(as_text=True)
    assert f'<option value="{invited.id}">' not in html and f'<option value="{disabled.id}">' not in html

    for data, message in (
        ({"new_owner": successor.id, "confirm": "Wrong Name"}, "Type the company name, Acme Widgets, to confirm."),
        ({"new_owner": invited.id, "confirm": "Acme Widgets"}, "Choose an enabled user of this account"),
        ({"new_owner": disabled.id, "confirm": "Acme Widgets"}, "Choose an enabled user of this account"),
        ({"new_owner": 0, "confirm": "Acme Widgets"}, "Choose the new owner."),
    ):
        response = owner_client.post(f"{CONFIG}/owner", data={"csrf_token": token, **data})
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Account, account.id).owner_id == account.owner_id
    assert owner_client.get("/dashboard").status_code == 200  # still signed in, still owner
    assert db.session.query(AuditEvent).filter_by(action="account.owner_changed").count() == 0


def upload(client, kind, data, filename):
    return client.post(f"{CONFIG}/logo/{kind}", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(client, CONFIG), f"{kind}-file": (io.BytesIO(data), filename)})


def test_png_logo_is_accepted_served_and_shown_in_the_sidebar(app, db, owner_client):
    account = owner_client.account
    png = make_png(400, 100)
    response = upload(owner_client, "wide", png, "logo.png")
    assert response.status_code == 302
    logo_url = f"/account/{account.id}/logo/wide"
    served = app.test_client().get(logo_url)  # public: error and download pages show it
    assert served.status_code == 200
    assert served.data == png
    assert served.headers["Content-Type"] == "image/png"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    html = owner_client.get("/dashboard").get_data(as_text=True)
    sidebar = html.split('<aside class="sidebar"', 1)[1].split("</aside>", 1)[0]
    assert f'src="{logo_url}"' in sidebar
    event = db.session.query(AuditEvent).filter_by(action="account.logo_changed").one()
    assert '"kind": "wide"' in event.details and "400x100" in event.details


def test_logo_that_is_too_big_is_refused(db, owner_client):
    response = upload(owner_client, "wide", make_png(400, 100, padding=int(0.4 * 1024 * 1024)), "big.png")
    assert response.status_code == 422
    assert "logos may be at most 0.3 MB" in response.get_data(as_text=True)
    assert not db.session.get(Account, owner_client.account.id).logo_wide_type


def test_html_file_named_png_is_refused(db, owner_client):
    response = upload(owner_client, "square", b"<!doctype html><script>alert(1)</script>", "logo.png")
    assert response.status_code == 422
    assert "not a JPG, PNG or SVG image" in response.get_data(as_text=True)
    assert not db.session.get(Account, owner_client.account.id).logo_square_type
    assert db.session.query(AuditEvent).filter_by(action="account.logo_changed").count() == 0


def test_svg_logo_is_stored_without_anything_that_could_run(app, owner_client):
    response = upload(owner_client, "wide", SVG_ATTACK, "logo.svg")
    assert response.status_code == 302
    served = app.test_client().get(f"/account/{owner_client.account.id}/logo/wide")
    assert served.headers["Content-Type"] == "image/svg+xml"
    body = served.data.decode()
    for bad in ("<script", "onload", "onclick", "javascript:", "foreignObject"):
        assert bad not in body, bad
    assert "<rect" in body


def test_logo_can_be_removed(db, owner_client):
    upload(owner_client, "square", make_png(256, 256), "square.png")
    account_id = owner_client.account.id
    response = owner_client.post(f"{CONFIG}/logo/square/remove", data={"csrf_token": csrf_token(owner_client, CONFIG)},
                                 follow_redirects=True)
    assert "The square logo (1:1) was removed." in response.get_data(as_text=True)
    db.session.expire_all()
    assert not db.session.get(Account, account_id).logo_square_type
    assert owner_client.get(f"/account/{account_id}/logo/square").status_code == 404
    assert owner_client.post(f"{CONFIG}/logo/square/remove",
                             data={"csrf_token": csrf_token(owner_client, CONFIG)}).status_code == 404


def test_error_page_shows_the_account_logo(owner_client):
    upload(owner_client, "wide", make_png(400, 100), "logo.png")
    response = owner_client.get("/no-such-page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert f'src="/account/{owner_client.account.id}/logo/wide"' in html
    assert '<span class="error-code">404</span>' in html


@pytest.mark.parametrize("path, status", [("/no-such-page", 404), ("/dashboard", 403)])
def test_error_pages_look_the_same_for_every_status(client, login_as, path, status):
    login_as("user")
    response = client.get(path)
    assert response.status_code == status
    html = response.get_data(as_text=True)
    assert f'<section class="error-page" id="error" role="alert" data-status="{status}">' in html
    assert "Go to your start page" in html


def test_error_page_for_signed_out_visitors_uses_the_card(client):
    html = client.get("/no-such-page").get_data(as_text=True)
    assert 'class="auth-card error-card"' in html
    assert '<span class="error-code">404</span>' in html and "Go to sign-in" in html


def test_administrators_are_listed_with_links_when_user_details_exist(app, db, owner_client, factory):
    admin = factory.user(owner_client.account, "administrator")
    html = owner_client.get(CONFIG).get_data(as_text=True)
    panel = html.split('id="administrators"', 1)[1].split("</section>", 1)[0]
    assert admin.username in panel
    if "users.details" in app.view_functions:
        assert f'<a href="/users/{admin.id}">' in panel
    else:
        assert "<a href=" not in panel
    owner = db.session.get(User, owner_client.account.owner_id)
    assert owner.username not in panel  # the owner has a panel of their own
