"""The Linux launcher of an OnDemand session, run for real: downloaded from a live ``tessera run``
(``GET /ondemand/<link_token>/download/linux``) and run with bash in a temporary HOME. It
downloads the agent wheel this Portal serves, checks its SHA-256, installs it into the per-user
virtual environment, registers the ``tessera-ondemand://`` handler (desktop entry + xdg-mime)
and starts ``tessera-ondemand`` on Xvfb, which connects with the key and waits in the queue.

No download from the internet: the launcher's documented overrides do it offline.
``TESSERA_ONDEMAND_PYTHON`` is this test's Python (the virtual environment is made from its
base interpreter, so its compiled modules fit), ``TESSERA_ONDEMAND_PIP_ARGS="--no-index
--no-deps"`` installs the Portal's wheel alone, and ``PYTHONPATH`` points at a folder of links
to the agent's dependencies (mss, python-xlib, websockets, zstandard and theirs) as installed
next to this test, the way a machine might provide them from its own packages.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import requests

from app.downloads.agent_wheel import DEPENDENCIES
from app.models.ondemand import OnDemandSession, OnDemandState
from tests.integration.relay_world import start_relay_server, wait_for
from tests.relay_harness import stop_process

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is needed to run the launcher")


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory):
    yield from start_relay_server(tmp_path_factory)


def _python_with_tk() -> str:
    done = subprocess.run([sys.executable, "-c", "import tkinter, venv"], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"{sys.executable} has no Tk (tkinter): the launcher requires it (Debian: python3-tk / libtk8.6)")
    return sys.executable


def _requirement_names(requires) -> list[str]:
    names = []
    for requirement in requires or []:
        if "extra ==" in requirement:
            continue
        names.append(re.match(r"[A-Za-z0-9._-]+", requirement).group(0))
    return names


def dependency_folder(folder: Path) -> Path:
    """Links to the agent's dependencies (and theirs) as installed for this test's Python."""
    folder.mkdir(parents=True, exist_ok=True)
    todo = _requirement_names(DEPENDENCIES)
    seen = set()
    while todo:
        name = todo.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            pytest.skip(f"the agent's dependency {name} is not installed next to the tests")
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__", "bin")}
        for top in tops:
            target = folder / top
            if not target.exists():
                target.symlink_to(Path(dist.locate_file(top)).resolve())
        todo += _requirement_names(dist.requires)
    return folder


def _session(server):
    """A technician's fresh session in the live server's database: (id, key, link token)."""
    import uuid

    from app.models import UserType
    from app.users.services import create_account, create_user
    from tests.integration.ondemand_world import new_session
    from tests.relay_harness import PASSWORD

    with server.app.app_context():
        account = create_account(f"Launcher {uuid.uuid4().hex[:6]}", f"owner-{uuid.uuid4().hex[:8]}@example.com",
                                 PASSWORD)
        user = create_user(account, f"tech-{uuid.uuid4().hex[:8]}@example.com", PASSWORD, UserType.user).user
        row = new_session(user, account.id)
        return row.id, row.key, row.link_token, account.company


def _row(server, session_id):
    from app.extensions import db

    with server.app.app_context():
        row = db.session.get(OnDemandSession, session_id)
        if row is not None:
            db.session.expunge(row)
        return row


def _download(server, link_token, tmp_path) -> Path:
    answer = requests.get(f"{server.url}/ondemand/{link_token}/download/linux", timeout=300)
    assert answer.status_code == 200, answer.text[:500]
    name = re.search(r'filename="([^"]+)"', answer.headers["Content-Disposition"]).group(1)
    path = tmp_path / name
    path.write_text(answer.text)
    return path


def _environment(tmp_path, **extra) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("XDG_", "PYTHON", "VIRTUAL_ENV", "TESSERA_"))}
    env.update(HOME=str(home), TESSERA_ONDEMAND_PYTHON=_python_with_tk(),
               TESSERA_ONDEMAND_PIP_ARGS="--no-index --no-deps",
               PYTHONPATH=str(dependency_folder(tmp_path / "deps")), **extra)
    return env


def test_the_launcher_installs_the_portals_agent_for_the_user_and_registers_the_link_handler(relay_server, tmp_path):
    session_id, key, link_token, _ = _session(relay_server)
    script = _download(relay_server, link_token, tmp_path)
    assert script.name == f"tessera-ondemand-{key}.sh"
    env = _environment(tmp_path, TESSERA_ONDEMAND_NO_START="1")
    done = subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Downloading the agent from " + relay_server.url + "/downloads/agent/tessera_agent-" in done.stdout

    home = Path(env["HOME"])
    venv = home / ".cache" / "tessera-ondemand" / "venv"
    command = venv / "bin" / "tessera-ondemand"
    assert command.is_file() and os.access(command, os.X_OK)
    # The agent package is the wheel's copy in the user's environment, not this checkout.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import agents.ondemand; print(agents.ondemand.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    help_text = subprocess.run([str(command), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=60)
    assert help_text.returncode == 0 and "--key" in help_text.stdout, help_text.stderr

    desktop = (home / ".local" / "share" / "applications" / "tessera-ondemand.desktop").read_text()
    assert f"Exec={command} %u\n" in desktop
    assert "MimeType=x-scheme-handler/tessera-ondemand;\n" in desktop
    if shutil.which("xdg-mime"):
        handler = subprocess.run(["xdg-mime", "query", "default", "x-scheme-handler/tessera-ondemand"],
                                 env=env, capture_output=True, text=True, timeout=30)
        assert handler.stdout.strip() == "tessera-ondemand.desktop", handler.stderr
    # Installing changed nothing for the key: it is still unused.
    assert _row(relay_server, session_id).state is OnDemandState.created


def test_the_launcher_starts_the_agent_which_waits_in_the_queue(relay_server, tmp_path, xvfb):
    session_id, key, link_token, company = _session(relay_server)
    script = _download(relay_server, link_token, tmp_path)
    cache = tmp_path / "xdg-cache"
    env = _environment(tmp_path, XDG_CACHE_HOME=str(cache), DISPLAY=xvfb.display)
    log_path = tmp_path / "launcher.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(["bash", str(script)], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        def waiting():
            assert process.poll() is None, f"the launcher stopped ({process.returncode}):\n{log_path.read_text()}"
            row = _row(relay_server, session_id)
            return row is not None and row.state is OnDemandState.waiting

        wait_for(waiting, timeout=300, every=0.5, message="the agent waiting in the queue")
        row = _row(relay_server, session_id)
        assert row.hostname and row.agent_version
        # bash exec'd the per-user agent with what the script carries.
        arguments = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert str(cache / "tessera-ondemand" / "venv" / "bin" / "tessera-ondemand").encode() in arguments
        for flag, value in (("--server", relay_server.url), ("--key", key), ("--account-name", company)):
            assert arguments[arguments.index(flag.encode()) + 1] == value.encode()
    finally:
        stop_process(process)
