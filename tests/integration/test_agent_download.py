"""The agent the Portal serves: ``GET /downloads/agent/<file>`` (public, the current build only,
ETag and conditional requests), the Linux installer that downloads it and checks its SHA-256,
the ``AGENT_PIP_SPEC`` override, ``tessera agent build-wheel``, and the real installer run
against a live ``tessera run``: the wheel lands in a virtual environment and
``tessera-agent --help`` runs from it.

Dependencies in the live test: the installer's pip resolves them normally (no ``--no-deps``),
with ``PIP_NO_INDEX=1`` and this venv's site-packages on ``PYTHONPATH``, so it finds mss,
python-xlib, websockets and zstandard already installed instead of fetching them. PYTHONPATH
entries are not site directories: the editable install's import hook (a ``.pth`` file) does
not run there, so the agent's own modules can only come from the installed wheel, which the
test checks.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from app.downloads import agent_wheel
from app.downloads.services import PackageData, create_package
from app.models import Package
from tests.conftest import sign_in

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin(client, factory):
    account = factory.account("Agent Downloads Co")
    sign_in(client, account.owner.username)
    return account


def _script_value(script: str, name: str) -> str:
    match = re.search(rf"^{name}=(\S*)$", script, re.M)
    assert match, f"no {name}= line in the installer"
    return match.group(1).strip("'")


def _installer(client, db, account) -> tuple[Package, str]:
    package = create_package(account.id, PackageData(name="Linux desktops"))
    response = client.get(f"/downloads/{package.id}/install-linux.sh")
    assert response.status_code == 200
    return package, response.get_data(as_text=True)


# --------------------------------------------------------------------------- the route
def test_current_wheel_is_served_to_a_visitor_without_a_session(app):
    visitor = app.test_client()
    name = agent_wheel.current_filename()
    response = visitor.get(f"/downloads/agent/{name}")
    assert response.status_code == 200
    wheel = agent_wheel.wheel_for_app(app)
    body = response.get_data()
    assert body == wheel.path.read_bytes() and hashlib.sha256(body).hexdigest() == wheel.sha256
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Length"] == str(wheel.size)
    assert response.headers["ETag"] == f'"{wheel.sha256}"'
    assert f"filename={name}" in response.headers["Content-Disposition"].replace('"', "")
    assert "attachment" in response.headers["Content-Disposition"]
    # A cache that has it already gets a 304 without the bytes.
    again = visitor.get(f"/downloads/agent/{name}", headers={"If-None-Match": f'"{wheel.sha256}"'})
    assert again.status_code == 304 and again.get_data() == b""
    head = visitor.head(f"/downloads/agent/{name}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(wheel.size)


def test_any_other_file_name_is_not_found(app):
    visitor = app.test_client()
    wheel = agent_wheel.wheel_for_app(app)
    # An older build left in the cache folder is not served either.
    stale = wheel.path.with_name("tessera_agent-0.1.0+src000000000000-py3-none-any.whl")
    stale.write_bytes(b"stale")
    for name in (stale.name, "tessera_agent-0.0.0-py3-none-any.whl", "tessera-0.1.0.tar.gz",
                 "secret_key", "tessera.db", ".build.lock", "..%2Fsecret_key",
                 wheel.filename.replace(".whl", ".zip")):
        response = visitor.get(f"/downloads/agent/{name}")
        assert response.status_code == 404, name
        assert response.get_data() != stale.read_bytes()
    assert visitor.get("/downloads/agent/").status_code == 404


# --------------------------------------------------------------------------- the installer
def test_installer_names_the_served_wheel_and_its_checksum(app, client, db, admin):
    package, script = _installer(client, db, admin)
    wheel = agent_wheel.wheel_for_app(app)
    url = _script_value(script, "AGENT_WHEEL_URL")
    assert url.startswith("http://localhost/downloads/agent/")
    assert _script_value(script, "AGENT_WHEEL_FILE") == wheel.filename
    assert _script_value(script, "AGENT_WHEEL_SHA256") == wheel.sha256
    assert _script_value(script, "DEFAULT_PIP_SPEC") == ""
    # The address in the script serves exactly the bytes the checksum names.
    served = app.test_client().get(url.removeprefix("http://localhost"))
    assert served.status_code == 200 and hashlib.sha256(served.get_data()).hexdigest() == wheel.sha256
    # No public index name is installed by default any more.
    assert not re.search(r"pip\S* install [^\n]*\btessera\b(?!_agent|-agent)", script)
    # The desktop helpers the agent needs for the confirm prompt and the clipboard.
    assert re.search(r"apt-get install -y -q python3-tk xclip", script)


def test_installer_link_script_names_the_same_wheel(app, client, db, admin):
    package, admin_script = _installer(client, db, admin)
    visitor = app.test_client()
    url = f"/downloads/link/{package.link_token}"
    from tests.conftest import csrf_token

    page = visitor.post(url, data={"csrf_token": csrf_token(visitor, url), "understand": "y"})
    download = re.search(r'id="download-linux" href="([^"]+)"', page.get_data(as_text=True))
    script = visitor.get(download.group(1).replace("&amp;", "&").removeprefix("http://localhost"))
    text = script.get_data(as_text=True)
    for name in ("AGENT_WHEEL_URL", "AGENT_WHEEL_FILE", "AGENT_WHEEL_SHA256"):
        assert _script_value(text, name) == _script_value(admin_script, name)


def test_configured_pip_spec_replaces_the_wheel_and_builds_nothing(app, client, db, admin):
    app.config["AGENT_PIP_SPEC"] = "https://mirror.example.com/tessera_agent-9.9-py3-none-any.whl"
    package, script = _installer(client, db, admin)
    assert _script_value(script, "DEFAULT_PIP_SPEC") == app.config["AGENT_PIP_SPEC"]
    assert _script_value(script, "AGENT_WHEEL_URL") == ""
    assert not agent_wheel.cache_dir_for(app.config["INSTANCE_PATH"]).exists()
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# --------------------------------------------------------------------------- the command
def test_build_wheel_command_copies_the_served_wheel_to_a_folder(app, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app.cli, ["agent", "build-wheel", "--out", str(out)])
    assert result.exit_code == 0, result.output
    wheel = agent_wheel.wheel_for_app(app)
    copied = out / wheel.filename
    assert result.output.split() == [str(copied), "sha256", wheel.sha256]
    assert copied.read_bytes() == wheel.path.read_bytes()
    assert [p.name for p in out.iterdir()] == [wheel.filename]  # no temporary file left


# --------------------------------------------------------------------------- the real thing
def _link_token(live_server, enrollment_key: str, tmp_path) -> str:
    from app import create_app
    from app.config import TestConfig
    from app.extensions import db

    reader = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=live_server.env["TESSERA_DATABASE_URL"],
                                   INSTANCE_PATH=str(tmp_path / "reader")))
    with reader.app_context():
        token = db.session.scalar(select(Package.link_token)
                                  .where(Package.enrollment_key == enrollment_key))
        db.session.remove()
        db.engine.dispose()
    assert token
    return token


def _fetch_installer(server_url: str, link_token: str) -> str:
    """The public installer page's steps, as the person at the machine takes them."""
    http = requests.Session()
    url = f"{server_url}/downloads/link/{link_token}"
    page = http.get(url, timeout=30).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    accepted = http.post(url, data={"csrf_token": csrf, "understand": "y"}, timeout=30)
    download = re.search(r'id="download-linux" href="([^"]+)"', accepted.text).group(1)
    script = http.get(download.replace("&amp;", "&"), timeout=120)
    assert script.status_code == 200, script.text[:300]
    return script.text


def _shim(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)


def test_installer_from_a_live_portal_installs_the_served_agent_into_a_venv(live_server, tmp_path):
    key = live_server.tessera("create-package", "--company", "Demo Company",
                              "--name", "Live installer").strip().splitlines()[-1]
    script_text = _fetch_installer(live_server.url, _link_token(live_server, key, tmp_path))
    wheel_file = _script_value(script_text, "AGENT_WHEEL_FILE")
    sha256 = _script_value(script_text, "AGENT_WHEEL_SHA256")
    assert _script_value(script_text, "AGENT_WHEEL_URL") == \
        f"{live_server.url}/downloads/agent/{wheel_file}"

    # Real python3 (this venv's base interpreter), pip and venv; `id` and `systemctl` stand in
    # for a root systemd machine (under TESSERA_INSTALL_ROOT systemctl must not even be called).
    bin_dir, root, log = tmp_path / "bin", tmp_path / "root", tmp_path / "systemctl.log"
    bin_dir.mkdir()
    root.mkdir()
    (bin_dir / "python3").symlink_to(sys._base_executable)
    _shim(bin_dir, "id", "echo 0\n")
    _shim(bin_dir, "systemctl", f'echo "systemctl $*" >> {log}\n')
    site_packages = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "TESSERA_", "VIRTUAL_ENV")) and k != "PYTHONPATH"}
    env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", TESSERA_INSTALL_ROOT=str(root),
               PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONPATH=site_packages)
    prefix = root / "opt/tessera-agent"

    # A download that does not match the checksum is refused before anything is installed.
    tampered = tmp_path / "tampered.sh"
    tampered.write_text(script_text.replace(f"AGENT_WHEEL_SHA256={sha256}",
                                            f"AGENT_WHEEL_SHA256={'0' * 64}"))
    refused = subprocess.run(["bash", str(tampered)], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 1 and f"SHA-256 {sha256}" in refused.stderr, refused.stderr
    assert list(root.iterdir()) == []

    # Piped into bash, as the installer page's `curl ... | sudo bash` runs it.
    done = subprocess.run(["bash"], input=script_text, env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Downloading the agent from {live_server.url}/downloads/agent/" in done.stdout

    # The wheel the Portal built is what was installed, with its console script.
    served = live_server.instance / "agent-wheels" / wheel_file
    assert hashlib.sha256(served.read_bytes()).hexdigest() == sha256
    version = wheel_file.split("-")[1]
    assert list(prefix.glob(f"lib/python3*/site-packages/tessera_agent-{version}.dist-info"))
    helped = subprocess.run([str(prefix / "bin/tessera-agent"), "--help"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: tessera-agent") and "--enroll-key" in helped.stdout
    reported = subprocess.run([str(prefix / "bin/tessera-agent"), "--version"], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert reported.stdout.strip() == f"tessera-agent {version}"
    where = subprocess.run(
        [str(prefix / "bin/python"), "-c",
         "import agents.host.agent, relay_ext; print(agents.host.agent.__file__); "
         "print(relay_ext.__file__); print(relay_ext.IMPLEMENTATION)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    agent_file, relay_file, implementation = where.stdout.split()
    assert agent_file.startswith(str(prefix)) and relay_file.startswith(str(prefix))
    assert implementation == "python"  # no compiled module in the wheel: the twin serves

    conf = root / "etc/tessera/agent.conf"
    assert conf.read_text() == f"[agent]\nportal_url = {live_server.url}\nenrollment_key = {key}\n"
    assert (root / "etc/systemd/system/tessera-agent.service").is_file()
    assert not log.exists()  # under an install root the service is left alone
