"""Deployment packages (Downloads): add and edit with their validation, the listing's status,
the details page with the enrolment key and installers, the Linux installer script, the
shareable installer link with its "I understand" step, revoke, remove, and the
``tessera create-package`` command."""
from __future__ import annotations

import os
import re
import stat
import subprocess
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, Device, EnrolmentState, Group, GroupKind, Package, utcnow
from tests.conftest import csrf_token, sign_in


def device_group(db, account, name="Servers", kind=GroupKind.device) -> Group:
    group = Group(account_id=account.id, kind=kind, name=name)
    db.session.add(group)
    db.session.commit()
    return group


def add_package(client, **fields):
    data = {"csrf_token": csrf_token(client, "/downloads/add"), "name": "Office PCs",
            "enrolment_state": "pending", "active": "y", "device_group_id": "", **fields}
    return client.post("/downloads/add", data=data)


def enrol(client, package, hardware_id="hw-1", hostname="pc-1"):
    return client.post("/api/v1/agent/enroll", json={
        "enrollment_key": package.enrollment_key, "hostname": hostname, "os": "Debian 12",
        "agent_version": "0.1.0", "hardware_id": hardware_id})


def packages(db, account) -> list[Package]:
    return list(db.session.scalars(select(Package).where(Package.account_id == account.id)))


@pytest.fixture
def admin(client, factory):
    account = factory.account("Packages Co")
    sign_in(client, account.owner.username)
    return account


# --------------------------------------------------------------------------- add and edit
def test_add_package_creates_an_unguessable_key_and_shows_it_on_the_details_page(client, db, admin):
    group = device_group(db, admin)
    response = add_package(client, name="Office PCs", description="Floor 2", max_devices="25",
                           valid_from="2024-01-01", valid_to="2030-12-31",
                           device_group_id=str(group.id), enrolment_state="enrolled")
    assert response.status_code == 302
    package = packages(db, admin)[0]
    assert len(package.enrollment_key) >= 32  # token_urlsafe(24): 192 bits
    assert package.enrolment_state is EnrolmentState.enrolled and package.device_group_id == group.id
    assert package.valid_from.date() == date(2024, 1, 1) and package.max_devices == 25
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert package.enrollment_key in html
    assert 'data-copy="#enrollment-key"' in html and "js/copy.js" in html
    assert "Download shell installer" in html
    assert re.search(r"Windows</strong>\s*<span class=\"badge\">Planned", html)
    assert re.search(r"macOS</strong>\s*<span class=\"badge\">Planned", html)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "package.created"))
    assert event.target == "Office PCs" and event.account_id == admin.id


def test_every_package_gets_its_own_key(client, db, admin):
    for name in ("One", "Two", "Three"):
        assert add_package(client, name=name).status_code == 302
    keys = {p.enrollment_key for p in packages(db, admin)}
    links = {p.link_token for p in packages(db, admin)}
    assert len(keys) == 3 and len(links) == 3 and not keys & links


def test_a_key_never_starts_with_a_dash_so_the_command_line_takes_it(client, db, admin, monkeypatch):
    from app.downloads import services

    real, drawn = services.secrets.token_urlsafe, iter(["-looks-like-an-option", "Ok-key_1"])
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: next(drawn, None) or real(n))
    assert add_package(client, name="Dash").status_code == 302
    assert [p.enrollment_key for p in packages(db, admin)] == ["Ok-key_1"]


def test_inverted_dates_are_refused_with_a_clear_message(client, db, admin):
    response = add_package(client, valid_from="2030-01-02", valid_to="2030-01-01")
    assert response.status_code == 422
    assert "before \u201cvalid from\u201d" in response.get_data(as_text=True)
    assert packages(db, admin) == []


def test_duplicate_name_is_refused_in_the_same_account_only(client, db, factory, admin):
    assert add_package(client, name="Laptops").status_code == 302
    response = add_package(client, name=" Laptops ")
    assert response.status_code == 409
    assert "named &#39;Laptops&#39; exists already" in response.get_data(as_text=True)
    assert len(packages(db, admin)) == 1
    other = factory.account()
    from app.downloads.services import PackageData, create_package

    create_package(other.id, PackageData(name="Laptops"))  # another account may use the name


def test_another_accounts_device_group_is_refused(client, db, factory, admin):
    foreign = device_group(db, factory.account(), "Theirs")
    response = add_package(client, device_group_id=str(foreign.id))
    assert response.status_code == 422
    assert "Choose a device group of this account" in response.get_data(as_text=True)
    assert packages(db, admin) == []


def test_a_user_group_is_not_a_device_group(client, db, admin):
    users = device_group(db, admin, "Helpdesk", kind=GroupKind.user)
    response = add_package(client, device_group_id=str(users.id))
    assert response.status_code == 422 and packages(db, admin) == []


@pytest.mark.parametrize("value, message", [("0", "from 1 to"), ("-3", "from 1 to"), ("many", "Not a valid integer")])
def test_number_of_devices_must_be_positive(client, db, admin, value, message):
    response = add_package(client, max_devices=value)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert packages(db, admin) == []


def test_a_name_is_required(client, db, admin):
    response = add_package(client, name="   ")
    assert response.status_code == 422
    assert packages(db, admin) == []


def test_edit_changes_the_package_and_is_audited(client, db, admin):
    add_package(client, name="Old name")
    package = packages(db, admin)[0]
    key = package.enrollment_key
    page = client.get(f"/downloads/{package.id}/edit").get_data(as_text=True)
    assert 'value="Old name"' in page
    response = client.post(f"/downloads/{package.id}/edit", data={
        "csrf_token": csrf_token(client, f"/downloads/{package.id}/edit"), "name": "New name",
        "enrolment_state": "enrolled", "device_group_id": "", "max_devices": "3"})
    assert response.status_code == 302
    db.session.refresh(package)
    assert package.name == "New name" and not package.active and package.max_devices == 3
    assert package.enrollment_key == key  # editing never re-keys installed devices
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "package.updated"))
    assert "Old name" in event.details and "New name" in event.details


def test_edit_refuses_a_name_taken_by_another_package(client, db, admin):
    add_package(client, name="A")
    add_package(client, name="B")
    b = next(p for p in packages(db, admin) if p.name == "B")
    response = client.post(f"/downloads/{b.id}/edit", data={
        "csrf_token": csrf_token(client, f"/downloads/{b.id}/edit"), "name": "A",
        "enrolment_state": "pending", "device_group_id": ""})
    assert response.status_code == 409
    db.session.refresh(b)
    assert b.name == "B"


def test_another_accounts_package_is_not_found(client, db, factory, admin):
    from app.downloads.services import PackageData, create_package

    theirs = create_package(factory.account().id, PackageData(name="Theirs"))
    for url in (f"/downloads/{theirs.id}", f"/downloads/{theirs.id}/edit",
                f"/downloads/{theirs.id}/install-linux.sh", f"/downloads/{theirs.id}/revoke",
                f"/downloads/{theirs.id}/remove"):
        assert client.get(url).status_code == 404, url
    assert theirs.enrollment_key not in client.get("/downloads/").get_data(as_text=True)


# --------------------------------------------------------------------------- the listing
def test_listing_shows_state_dates_devices_and_status(client, db, admin):
    from app.downloads.services import PackageData, create_package

    today = utcnow().date()
    create_package(admin.id, PackageData(name="Current", enrolment_state=EnrolmentState.enrolled,
                                         valid_from=date(2024, 3, 1)))
    create_package(admin.id, PackageData(name="Old", valid_to=today - timedelta(days=1)))
    create_package(admin.id, PackageData(name="Later", valid_from=today + timedelta(days=3)))
    create_package(admin.id, PackageData(name="Off", active=False))
    create_package(admin.id, PackageData(name="Ends today", valid_to=today))
    current = next(p for p in packages(db, admin) if p.name == "Current")
    enrol(client, current, "a")
    enrol(client, current, "b")
    html = client.get("/downloads/").get_data(as_text=True)

    def row(name):
        return re.search(rf">{name}</a>.*?</tr>", html, re.S).group(0)

    assert "Enrolled" in row("Current") and "2024-03-01" in row("Current")
    assert re.search(r'data-column="devices">2', row("Current"))
    assert "Active" in row("Current") and "Active" in row("Ends today")
    assert "Expired" in row("Old") and "Not yet valid" in row("Later") and "Disabled" in row("Off")
    by_devices = client.get("/downloads/?sort=devices&dir=desc").get_data(as_text=True)
    assert re.findall(r'href="/downloads/\d+">([^<]+)</a>', by_devices)[0] == "Current"  # 2 devices
    expired_only = client.get("/downloads/?f.status=expired").get_data(as_text=True)
    assert ">Old</a>" in expired_only and ">Current</a>" not in expired_only
    active_only = client.get("/downloads/?f.status=active").get_data(as_text=True)
    assert ">Current</a>" in active_only and ">Ends today</a>" in active_only
    assert ">Later</a>" not in active_only and ">Off</a>" not in active_only


# --------------------------------------------------------------------------- installers
def test_linux_installer_is_a_valid_script_with_the_key_and_a_systemd_unit(client, db, admin, tmp_path):
    add_package(client, name="Servers; rm -rf / #\n$(reboot)")
    package = packages(db, admin)[0]
    response = client.get(f"/downloads/{package.id}/install-linux.sh")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    script = response.get_data(as_text=True)
    assert script.startswith("#!/usr/bin/env bash")
    assert f"ENROLLMENT_KEY={package.enrollment_key}" in script or \
        f"ENROLLMENT_KEY='{package.enrollment_key}'" in script
    assert "PORTAL_URL=http://localhost" in script
    assert "tessera-agent.service" in script and "ExecStart=/opt/tessera-agent/bin/tessera-agent" in script
    # The package name is only in a comment, on one line: it cannot run.
    assert "\n$(reboot)" not in script
    path = tmp_path / "install.sh"
    path.write_text(script)
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def _shim(folder, name, body):
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def test_linux_installer_writes_a_private_config_and_the_unit(client, db, admin, tmp_path):
    """Run the real script under TESSERA_INSTALL_ROOT with stand-ins for python3 (its venv and
    pip) and systemctl, so nothing outside the temporary folder is touched."""
    add_package(client, name="Linux")
    package = packages(db, admin)[0]
    script = tmp_path / "install.sh"
    script.write_text(client.get(f"/downloads/{package.id}/install-linux.sh").get_data(as_text=True))
    bin_dir, root, log = tmp_path / "bin", tmp_path / "root", tmp_path / "log"
    bin_dir.mkdir()
    root.mkdir()
    _shim(bin_dir, "id", 'echo 0\n')
    _shim(bin_dir, "python3", f'''echo "python3 $*" >> {log}
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  printf '#!/usr/bin/env bash\\necho "pip $*" >> {log}\\n' > "$3/bin/pip"
  chmod 755 "$3/bin/pip"
fi
exit 0
''')
    _shim(bin_dir, "systemctl", f'echo "systemctl $*" >> {log}\n')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TESSERA_INSTALL_ROOT": str(root)}
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr

    conf = root / "etc/tessera/agent.conf"
    assert conf.read_text() == (f"[agent]\nportal_url = http://localhost\n"
                                f"enrollment_key = {package.enrollment_key}\n")
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    unit = (root / "etc/systemd/system/tessera-agent.service").read_text()
    assert "ExecStart=/opt/tessera-agent/bin/tessera-agent --config /etc/tessera/agent.conf" in unit
    assert "WantedBy=multi-user.target" in unit
    calls = log.read_text()
    assert f"python3 -m venv {root}/opt/tessera-agent" in calls
    # The Portal's own wheel (tests/integration/test_agent_download.py downloads it for real),
    # never a name on a public index.
    wheel = re.search(r"^python3 - (http://localhost/downloads/agent/\S+) (\S+/(tessera_agent-\S+\.whl)) "
                      r"([0-9a-f]{64})$", calls, re.M)
    assert wheel, calls
    assert f"pip install --quiet --upgrade {wheel.group(2)}\n" in calls
    assert "systemctl" not in calls  # under an install root the service is not started


def test_linux_installer_refuses_to_run_without_root(client, db, admin, tmp_path):
    add_package(client, name="Linux")
    package = packages(db, admin)[0]
    script = tmp_path / "install.sh"
    script.write_text(client.get(f"/downloads/{package.id}/install-linux.sh").get_data(as_text=True))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _shim(bin_dir, "id", "echo 1000\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TESSERA_INSTALL_ROOT": str(tmp_path / "r")}
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "run this installer as root" in result.stderr
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- installer link
def test_installer_link_shows_the_download_only_after_i_understand(app, client, db, admin):
    add_package(client, name="Shared")
    package = packages(db, admin)[0]
    visitor = app.test_client()  # someone without an account
    url = f"/downloads/link/{package.link_token}"
    page = visitor.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Packages Co" in html and "I understand" in html
    assert "install-linux.sh" not in html and package.enrollment_key not in html

    refused = visitor.post(url, data={"csrf_token": csrf_token(visitor, url)})
    assert refused.status_code == 422 and "Tick the box" in refused.get_data(as_text=True)
    assert "install-linux.sh" not in refused.get_data(as_text=True)

    accepted = visitor.post(url, data={"csrf_token": csrf_token(visitor, url), "understand": "y"})
    html = accepted.get_data(as_text=True)
    download = re.search(r'id="download-linux" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    script = visitor.get(download.replace("http://localhost", ""))
    assert script.status_code == 200 and package.enrollment_key in script.get_data(as_text=True)
    # Skipping the step (or tampering with its signed value) gives no script.
    bare = visitor.get(f"{url}/install-linux.sh")
    assert bare.status_code == 404 and "I understand" in bare.get_data(as_text=True)
    assert visitor.get(f"{url}/install-linux.sh?ack=forged").status_code == 404


def test_installer_link_shows_the_account_logo(app, client, db, admin):
    admin.logo_wide = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    admin.logo_wide_type = "image/svg+xml"
    db.session.commit()
    add_package(client, name="Branded")
    package = packages(db, admin)[0]
    html = app.test_client().get(f"/downloads/link/{package.link_token}").get_data(as_text=True)
    assert f"/account/{admin.id}/logo/wide" in html


def test_renewing_the_link_retires_the_old_one(app, client, db, admin):
    add_package(client, name="Shared")
    package = packages(db, admin)[0]
    old = package.link_token
    response = client.post(f"/downloads/{package.id}/link/renew",
                           data={"csrf_token": csrf_token(client, f"/downloads/{package.id}")})
    assert response.status_code == 302
    db.session.refresh(package)
    assert package.link_token != old
    visitor = app.test_client()
    assert visitor.get(f"/downloads/link/{old}").status_code == 404
    assert visitor.get(f"/downloads/link/{package.link_token}").status_code == 200


def test_installer_link_of_a_disabled_package_offers_no_download(app, client, db, admin):
    add_package(client, name="Paused", active="")
    package = packages(db, admin)[0]
    visitor = app.test_client()
    url = f"/downloads/link/{package.link_token}"
    html = visitor.get(url).get_data(as_text=True)
    assert "cannot be used at present" in html and "disabled" in html
    response = visitor.post(url, data={"csrf_token": csrf_token(visitor, url), "understand": "y"})
    assert "download-linux" not in response.get_data(as_text=True)


# --------------------------------------------------------------------------- revoke and remove
def test_revoke_needs_the_typed_word(client, db, admin):
    add_package(client, name="Fleet")
    package = packages(db, admin)[0]
    url = f"/downloads/{package.id}/revoke"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "confirmation": "yes"})
    assert response.status_code == 422
    assert "Type the word revoke to confirm." in response.get_data(as_text=True)
    db.session.refresh(package)
    assert package.revoked_at is None


def test_revoke_marks_devices_revoked_refuses_their_tokens_and_keeps_them_listed(client, db, admin):
    add_package(client, name="Fleet", enrolment_state="enrolled")
    package = packages(db, admin)[0]
    token = enrol(client, package, "hw-a", "alpha").get_json()["device_token"]
    enrol(client, package, "hw-b", "beta")
    me = client.get("/api/v1/agent/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["state"] == "enrolled"

    url = f"/downloads/{package.id}/revoke"
    response = client.post(url, data={"csrf_token": csrf_token(client, url), "confirmation": " Revoke "},
                           follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "2 devices can no longer connect" in html
    db.session.refresh(package)
    assert package.revoked_at is not None
    assert all(d.revoked for d in db.session.scalars(select(Device).where(Device.package_id == package.id)))
    refused = client.get("/api/v1/agent/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "error" in refused.get_json()
    listing = client.get("/devices/?f.status=revoked").get_data(as_text=True)
    assert ">alpha</a>" in listing and ">beta</a>" in listing and "Revoked" in listing
    again = enrol(client, package, "hw-c", "gamma")
    assert again.status_code == 403 and "revoked" in again.get_json()["error"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "package.revoked"))
    assert '"devices_revoked": 2' in event.details
    # Its link page is gone and its installer is no longer served.
    assert client.get(f"/downloads/link/{package.link_token}").status_code == 404
    assert client.get(f"/downloads/{package.id}/install-linux.sh").status_code == 409


def test_a_package_with_devices_cannot_be_removed_until_revoked(client, db, admin):
    add_package(client, name="Busy")
    package = packages(db, admin)[0]
    enrol(client, package)
    url = f"/downloads/{package.id}/remove"
    page = client.get(url)
    assert page.status_code == 409 and "still has 1 device" in page.get_data(as_text=True)
    refused = client.post(url, data={"csrf_token": csrf_token(client, f"/downloads/{package.id}")})
    assert refused.status_code == 409 and packages(db, admin)

    client.post(f"/downloads/{package.id}/revoke", data={
        "csrf_token": csrf_token(client, f"/downloads/{package.id}/revoke"), "confirmation": "revoke"})
    removed = client.post(url, data={"csrf_token": csrf_token(client, url)}, follow_redirects=True)
    assert "was removed" in removed.get_data(as_text=True)
    assert packages(db, admin) == []
    device = db.session.scalar(select(Device).where(Device.account_id == admin.id))
    assert device.revoked and device.package_id is None  # still listed as Revoked
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "package.removed")) == 1


def test_an_empty_package_can_be_removed(client, db, admin):
    add_package(client, name="Unused")
    package = packages(db, admin)[0]
    url = f"/downloads/{package.id}/remove"
    assert client.get(url).status_code == 200
    client.post(url, data={"csrf_token": csrf_token(client, url)})
    assert packages(db, admin) == []


# --------------------------------------------------------------------------- the CLI
def test_cli_create_package_prints_the_key(app, db, factory):
    account = factory.account("Cli Co")
    group = device_group(db, account, "Kiosks")
    result = app.test_cli_runner().invoke(args=[
        "create-package", "--company", "Cli Co", "--name", "Rollout", "--enrolled",
        "--device-group", "Kiosks"])
    assert result.exit_code == 0, result.output
    package = packages(db, account)[0]
    assert result.output.strip() == package.enrollment_key
    assert package.enrolment_state is EnrolmentState.enrolled and package.device_group_id == group.id


def test_cli_create_package_defaults_to_pending(app, db, factory):
    account = factory.account("Cli Pending")
    result = app.test_cli_runner().invoke(args=["create-package", "--company", "Cli Pending", "--name", "P"])
    assert result.exit_code == 0
    assert packages(db, account)[0].enrolment_state is EnrolmentState.pending


@pytest.mark.parametrize("args, message", [
    (["--company", "Nobody Inc", "--name", "P"], "No account named 'Nobody Inc'"),
    (["--company", "Cli Bad", "--name", "P", "--device-group", "Missing"], "no device group named 'Missing'"),
    (["--company", "Cli Bad", "--name", "  "], "Enter a name"),
    (["--company", "Cli Bad", "--name", "Taken"], "exists already"),
])
def test_cli_create_package_bad_input_fails_clearly(app, db, factory, args, message):
    account = factory.account("Cli Bad")
    from app.downloads.services import PackageData, create_package

    create_package(account.id, PackageData(name="Taken"))
    result = app.test_cli_runner().invoke(args=["create-package", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert len(packages(db, account)) == 1
