"""The agent API: ``POST /api/v1/agent/enroll`` with every answer it can give (201, 200 on
re-enrolment, 400, 403, 404, 409, 429), device tokens stored hashed, the package's device group,
and ``GET /api/v1/agent/me`` refusing unknown, revoked and removed devices."""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.devices import services as device_services
from app.downloads.services import PackageData, create_package
from app.models import AuditEvent, Device, EnrolmentState, Group, GroupKind, utcnow

URL = "/api/v1/agent/enroll"


def body(package, **changes):
    data = {"enrollment_key": package.enrollment_key, "hostname": "web-01", "os": "Ubuntu 24.04",
            "agent_version": "0.1.0", "hardware_id": "hw-0001"}
    data.update(changes)
    return data


def devices(db, account) -> list[Device]:
    return list(db.session.scalars(select(Device).where(Device.account_id == account.id).order_by(Device.id)))


def me(client, token):
    return client.get("/api/v1/agent/me", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def account(factory):
    return factory.account("Enrol Co")


@pytest.fixture
def package(account):
    return create_package(account.id, PackageData(name="Default", enrolment_state=EnrolmentState.enrolled))


def test_enrol_creates_a_device_with_a_hashed_token(client, db, account, package):
    response = client.post(URL, json=body(package))
    assert response.status_code == 201
    answer = response.get_json()
    assert set(answer) == {"device_id", "device_token", "state"} and answer["state"] == "enrolled"
    token = answer["device_token"]
    assert len(token) >= 43  # token_urlsafe(32)
    device = devices(db, account)[0]
    assert device.id == answer["device_id"] and device.hostname == "web-01"
    assert device.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (device.token_hash, device.hardware_id)
    assert device.package_id == package.id and device.enrolled_at is not None
    assert response.headers["Cache-Control"] == "no-store"
    mine = me(client, token)
    assert mine.status_code == 200
    assert mine.get_json() == {"device_id": device.id, "name": "web-01", "hostname": "web-01",
                               "state": "enrolled"}
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "device.enrolled")).target == "web-01"


def test_a_pending_package_enrols_pending_devices(client, db, account):
    pending = create_package(account.id, PackageData(name="Review"))
    answer = client.post(URL, json=body(pending)).get_json()
    assert answer["state"] == "pending"
    assert me(client, answer["device_token"]).get_json()["state"] == "pending"
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert "device.enrol_requested" in actions and "device.enrolled" not in actions


def test_the_device_joins_the_packages_device_group(client, db, account):
    group = Group(account_id=account.id, kind=GroupKind.device, name="Web servers")
    db.session.add(group)
    db.session.commit()
    grouped = create_package(account.id, PackageData(name="Web", device_group_id=group.id))
    client.post(URL, json=body(grouped))
    assert [g.name for g in devices(db, account)[0].groups] == ["Web servers"]


def test_re_enrolling_the_same_hardware_returns_the_same_device_with_a_new_token(client, db, account, package):
    first = client.post(URL, json=body(package)).get_json()
    second = client.post(URL, json=body(package, hostname="web-01-renamed", agent_version="0.2.0"))
    assert second.status_code == 200
    answer = second.get_json()
    assert answer["device_id"] == first["device_id"]
    assert answer["device_token"] != first["device_token"]
    assert len(devices(db, account)) == 1
    device = devices(db, account)[0]
    assert device.hostname == "web-01-renamed" and device.agent_version == "0.2.0"
    assert me(client, first["device_token"]).status_code == 401  # the old token is replaced
    assert me(client, answer["device_token"]).status_code == 200


def test_an_enrolled_device_stays_enrolled_when_it_re_enrols_with_a_pending_package(client, db, account, package):
    client.post(URL, json=body(package))
    pending = create_package(account.id, PackageData(name="Pending one"))
    answer = client.post(URL, json=body(pending)).get_json()
    assert answer["state"] == "enrolled"
    assert devices(db, account)[0].package_id == pending.id


def test_the_same_hardware_id_in_another_account_is_another_device(client, db, factory, account, package):
    other = factory.account()
    theirs = create_package(other.id, PackageData(name="Theirs"))
    a = client.post(URL, json=body(package)).get_json()
    b = client.post(URL, json=body(theirs))
    assert b.status_code == 201 and b.get_json()["device_id"] != a["device_id"]


def test_two_agents_racing_with_one_hardware_id_end_as_one_device(client, db, account, package, monkeypatch):
    """The unique constraint decides a race: the loser looked before the winner committed, so
    its insert fails; it retries and re-enrols the winner's device instead of a duplicate."""
    original = device_services._enrol_once
    state = {"calls": 0, "blind": False}
    real_scalar = db.session.scalar

    def scalar(statement, *args, **kwargs):
        text = str(statement)
        if state["blind"] and "FROM device" in text and "hardware_id" in text and "count(" not in text:
            return None  # what the loser saw before the winner's commit
        return real_scalar(statement, *args, **kwargs)

    def racing(request, now, why_not_usable):
        state["calls"] += 1
        if state["calls"] == 1:
            db.session.add(Device(account_id=account.id, hardware_id=request.hardware_id,
                                  token_hash="f" * 64, hostname="winner", package_id=package.id,
                                  enrolment_state=EnrolmentState.enrolled))
            db.session.commit()
            state["blind"] = True
            try:
                return original(request, now, why_not_usable)
            finally:
                state["blind"] = False
        return original(request, now, why_not_usable)

    monkeypatch.setattr(db.session, "scalar", scalar)
    monkeypatch.setattr(device_services, "_enrol_once", racing)
    response = client.post(URL, json=body(package))
    assert response.status_code == 200, response.get_json()
    assert state["calls"] == 2
    assert len(devices(db, account)) == 1
    assert me(client, response.get_json()["device_token"]).status_code == 200


# --------------------------------------------------------------------------- errors
def test_unknown_key_is_404(client, db, account, package):
    response = client.post(URL, json=body(package, enrollment_key="x" * 32))
    assert response.status_code == 404
    assert response.get_json() == {"error": "Unknown enrolment key."}
    assert devices(db, account) == []


@pytest.mark.parametrize("setup, words", [
    (lambda p: setattr(p, "active", False), "disabled"),
    (lambda p: setattr(p, "revoked_at", utcnow()), "revoked"),
    (lambda p: setattr(p, "valid_to", utcnow() - timedelta(days=2)), "expired"),
    (lambda p: setattr(p, "valid_from", utcnow() + timedelta(days=2)), "valid from"),
])
def test_unusable_packages_are_403(client, db, account, package, setup, words):
    setup(package)
    db.session.commit()
    response = client.post(URL, json=body(package))
    assert response.status_code == 403 and words in response.get_json()["error"]
    assert devices(db, account) == []


def test_a_package_valid_until_today_still_enrols(client, db, account):
    today = create_package(account.id, PackageData(name="Today", valid_from=date(2020, 1, 1),
                                                   valid_to=utcnow().date()))
    assert client.post(URL, json=body(today)).status_code == 201


def test_the_packages_device_limit_is_409(client, db, account):
    limited = create_package(account.id, PackageData(name="Two only", max_devices=2))
    for n in range(2):
        assert client.post(URL, json=body(limited, hardware_id=f"hw-{n}")).status_code == 201
    refused = client.post(URL, json=body(limited, hardware_id="hw-3"))
    assert refused.status_code == 409
    assert "allows 2 devices and all are in use" in refused.get_json()["error"]
    # Re-enrolling a device already counted is not a new one.
    assert client.post(URL, json=body(limited, hardware_id="hw-0")).status_code == 200
    assert len(devices(db, account)) == 2


def test_the_account_licence_is_409_and_revoked_devices_hold_no_seat(client, db, factory):
    account = factory.account("Small licence", max_devices=2)
    first = create_package(account.id, PackageData(name="First"))
    second = create_package(account.id, PackageData(name="Second"))
    assert client.post(URL, json=body(first, hardware_id="a")).status_code == 201
    assert client.post(URL, json=body(second, hardware_id="b")).status_code == 201
    refused = client.post(URL, json=body(second, hardware_id="c"))
    assert refused.status_code == 409 and "licence allows 2 devices" in refused.get_json()["error"]

    from app.downloads.services import revoke_package

    revoke_package(account.id, first.id, "revoke")
    assert client.post(URL, json=body(second, hardware_id="c")).status_code == 201
    # The revoked device comes back with another package: it needs a seat again.
    assert client.post(URL, json=body(second, hardware_id="a")).status_code == 409


def test_a_revoked_device_re_enrols_with_another_package(client, db, account, package):
    old_token = client.post(URL, json=body(package)).get_json()["device_token"]
    from app.downloads.services import revoke_package

    revoke_package(account.id, package.id, "revoke")
    fresh = create_package(account.id, PackageData(name="Fresh"))
    answer = client.post(URL, json=body(fresh))
    assert answer.status_code == 200
    device = devices(db, account)[0]
    assert not device.revoked and device.package_id == fresh.id
    assert device.enrolment_state is EnrolmentState.pending  # it comes back through review
    assert me(client, old_token).status_code == 401
    assert me(client, answer.get_json()["device_token"]).status_code == 200


@pytest.mark.parametrize("payload, words", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"text"', "must be a JSON object"),
])
def test_a_body_that_is_not_a_json_object_is_400(client, db, account, package, payload, words):
    response = client.post(URL, data=payload, content_type="application/json")
    assert response.status_code == 400 and words in response.get_json()["error"]


@pytest.mark.parametrize("field", ["enrollment_key", "hostname", "os", "agent_version", "hardware_id"])
def test_a_missing_field_is_400(client, db, account, package, field):
    data = body(package)
    del data[field]
    response = client.post(URL, json=data)
    assert response.status_code == 400
    assert response.get_json()["error"] == f"The field {field} is missing."
    assert devices(db, account) == []


@pytest.mark.parametrize("field, value, words", [
    ("hostname", 42, "must be a string"),
    ("hardware_id", None, "must be a string"),
    ("os", ["Linux"], "must be a string"),
    ("hostname", "h" * 256, "longer than 255 characters"),
    ("os", "o" * 201, "longer than 200 characters"),
    ("agent_version", "1" * 51, "longer than 50 characters"),
    ("hardware_id", "x" * 201, "longer than 200 characters"),
    ("enrollment_key", "k" * 65, "longer than 64 characters"),
    ("hostname", "  \n\t ", "must not be empty"),
    ("hardware_id", "", "must not be empty"),
])
def test_wrong_types_and_oversized_fields_are_400(client, db, account, package, field, value, words):
    response = client.post(URL, json=body(package, **{field: value}))
    assert response.status_code == 400 and words in response.get_json()["error"]
    assert devices(db, account) == []


def test_an_oversized_body_is_400(client, db, account, package):
    response = client.post(URL, json=body(package, padding="p" * 20000))
    assert response.status_code == 400 and "larger than" in response.get_json()["error"]


def test_hostnames_are_stored_trimmed_without_control_characters(client, db, account, package):
    client.post(URL, json=body(package, hostname=" evil\x1b[31m-host\r\n\u202e ", os="Linux\x00 6.1"))
    device = devices(db, account)[0]
    assert device.hostname == "evil[31m-host" and device.os == "Linux 6.1"


def test_enrolment_is_rate_limited_per_address(app, client, db, account, package):
    app.config["AGENT_ENROLL_LIMIT"] = "3 per minute"
    for n in range(3):
        assert client.post(URL, json=body(package, enrollment_key="wrong")).status_code == 404
    limited = client.post(URL, json=body(package))
    assert limited.status_code == 429 and "error" in limited.get_json()
    assert devices(db, account) == []
    other_address = client.post(URL, json=body(package), environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other_address.status_code == 201


def test_the_api_needs_no_csrf_token_and_sets_no_cookie(client, db, account, package):
    response = client.post(URL, json=body(package))
    assert response.status_code == 201 and "Set-Cookie" not in response.headers


# --------------------------------------------------------------------------- /agent/me
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic abc", "Bearer " + "x" * 300])
def test_me_refuses_missing_or_unknown_tokens(client, db, account, package, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/agent/me", headers=headers)
    assert response.status_code == 401 and "error" in response.get_json()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_me_refuses_a_removed_device(client, db, account, package):
    answer = client.post(URL, json=body(package)).get_json()
    device_services.remove_devices(account.id, [answer["device_id"]])
    assert me(client, answer["device_token"]).status_code == 401
    assert db.session.scalar(select(func.count(Device.id))) == 0


def test_authenticate_device_refuses_devices_of_revoked_packages(client, db, account, package):
    token = client.post(URL, json=body(package)).get_json()["device_token"]
    assert device_services.authenticate_device(token).hostname == "web-01"
    package.revoked_at = utcnow()  # even if a device row missed the revocation
    db.session.commit()
    assert device_services.authenticate_device(token) is None
    assert device_services.authenticate_device("") is None and device_services.authenticate_device(None) is None
