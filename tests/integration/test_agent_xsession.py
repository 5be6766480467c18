"""``display = auto`` on real X servers with access control (agents/host/xsession.py): Xvfb
started with ``-auth FILE`` refuses clients without its cookie. Discovery finds the test's
own server among whatever else runs (restricted to its display numbers, as other tests start
Xvfbs in parallel), gets in with the right cookie, and never lends one file's cookie where
its owner could not; the agent's private copy opens the display for mss, python-xlib and
xclip; and a real ``tessera-agent`` process with no DISPLAY and no XAUTHORITY finds the
screen, a viewer sees it, and it follows the display discovery picks as X servers come and
go (a login, a logout).
"""
from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from agents.common import protocol as p
from agents.host import xsession
from agents.host.capture import X11Capture
from agents.host.clipboard import X11Clipboard
from agents.host.input import X11Input
from tests.relay_harness import stop_process
from tests.integration.test_agent_x11_e2e import Server, open_viewer, viewer_shows, wait_online
from tests.x11_harness import AgentProcess

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/install-system-deps)")


def free_display() -> int:
    """A display number with neither a lock file nor a socket (Xvfbs of other tests run in
    parallel)."""
    for number in random.Random().sample(range(20, 600), 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number")


def listening(number: int, process, timeout: float = 10.0) -> bool:
    """The X server has made its socket (it may still refuse us: it has access control)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(f"/tmp/.X11-unix/X{number}")
                return True
            except OSError:
                time.sleep(0.05)
    return False


class CookieX:
    """``Xvfb :N -auth FILE`` with a random MIT-MAGIC-COOKIE-1 added by ``xauth``: only
    clients with the cookie get in. ``user`` runs it as another user (root only)."""

    def __init__(self, folder: Path, number: int | None = None, user: int | None = None):
        need("Xvfb", "xauth")
        self.cookie = secrets.token_hex(16)
        kw = {"user": user, "group": user, "extra_groups": []} if user is not None else {}
        for attempt in range(5):
            self.number = number if number is not None else free_display()
            self.display = f":{self.number}"
            self.auth_file = folder / f"xauth-{self.number}"
            self.auth_file.unlink(missing_ok=True)
            subprocess.run(["xauth", "-f", str(self.auth_file), "add", self.display, ".", self.cookie],
                           check=True, capture_output=True)
            if user is not None:
                os.chmod(self.auth_file, 0o644)  # the X server (another user) must read it
            self.process = subprocess.Popen(
                ["Xvfb", self.display, "-screen", "0", "1280x800x24", "-noreset", "-nolisten", "tcp",
                 "-auth", str(self.auth_file)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
            if listening(self.number, self.process):
                break
            self.stop()
            if number is not None:
                raise RuntimeError(f"Xvfb did not start on {self.display}")
        else:
            raise RuntimeError("Xvfb did not start on any of five display numbers")
        self.env = {**os.environ, "DISPLAY": self.display, "XAUTHORITY": str(self.auth_file)}
        # The X server reads its -auth file at the first connection setup, not at start (and
        # one it cannot read then turns access control off): let it read it now.
        assert opens_with_python_xlib(self.display, str(self.auth_file))

    def run(self, *args: str) -> str:
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, f"{args[0]} failed: {done.stderr}"
        return done.stdout

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def folder():
    """A folder another user can read (tmp_path's parents are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="tessera-xsession-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cookie_x(folder):
    server = CookieX(folder)
    yield server
    server.stop()


def opens_with_python_xlib(display: str, xauthority: str) -> bool:
    """A fresh process (python-xlib reads XAUTHORITY when it connects), nothing inherited."""
    code = ("import sys\nfrom Xlib import display\ntry:\n    display.Display(sys.argv[1]).close()\n"
            "except Exception:\n    sys.exit(1)\n")
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "XAUTHORITY": xauthority}
    return subprocess.run([sys.executable, "-c", code, display], env=env, capture_output=True,
                          timeout=20).returncode == 0


def test_discovery_finds_the_tests_x_server_its_auth_file_and_cookie(cookie_x):
    mine = [s for s in xsession.x_servers() if s.number == cookie_x.number]
    assert mine == [xsession.XServer(cookie_x.number, cookie_x.process.pid, "Xvfb", os.geteuid(),
                                     str(cookie_x.auth_file), mine[0].parent)]

    found = xsession.discover(allowed=frozenset({cookie_x.number}))
    assert (found.display, found.pid, found.xauthority) == (cookie_x.display, cookie_x.process.pid,
                                                            cookie_x.auth_file)
    assert found.cookie.data.hex() == cookie_x.cookie


def test_without_the_cookie_the_display_refuses_and_with_the_found_xauthority_it_opens(cookie_x):
    found = xsession.discover(allowed=frozenset({cookie_x.number}))
    assert not xsession.x_accepts(cookie_x.number, None)
    assert not opens_with_python_xlib(cookie_x.display, "/nonexistent")
    assert xsession.x_accepts(cookie_x.number, found.cookie)
    assert opens_with_python_xlib(cookie_x.display, str(found.xauthority))


def test_the_agents_private_copy_opens_the_display_for_mss_python_xlib_and_xclip(cookie_x, tmp_path, monkeypatch):
    need("xclip", "xsetroot")
    cookie_x.run("xsetroot", "-solid", "#204060")
    monkeypatch.delenv("XAUTHORITY", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    found = xsession.discover(allowed=frozenset({cookie_x.number}))
    private = xsession.adopt(found, tmp_path / "xauthority")
    assert os.environ["XAUTHORITY"] == str(private) and os.environ["DISPLAY"] == cookie_x.display
    assert stat.S_IMODE(private.stat().st_mode) == 0o600

    capture = X11Capture(cookie_x.display)                 # mss: libxcb / libX11
    try:
        [screen] = capture.screens()
        assert bytes(capture.grab(screen)[:4]) == b"\x60\x40\x20\xff"
    finally:
        capture.close()
    injector = X11Input(cookie_x.display)                  # python-xlib
    injector.move(10, 20)
    injector.close()
    clipboard = X11Clipboard(cookie_x.display)             # xclip
    try:
        clipboard.set_text("through the copied cookie")
        assert clipboard.get_text() == "through the copied cookie"
    finally:
        clipboard.close()


def test_the_session_users_xauthority_serves_when_the_servers_file_is_gone(cookie_x, tmp_path):
    """Root's own session on the test's display, as logind would list it: its runtime
    directory holds the cookie; the X server's -auth file no longer exists."""
    uid = os.geteuid()
    runtime = tmp_path / "run-user" / str(uid) / "gdm"
    runtime.mkdir(parents=True)
    shutil.copy(cookie_x.auth_file, runtime / "Xauthority")
    cookie_x.auth_file.unlink()
    session = xsession.LoginSession("t1", cookie_x.number, "root", uid, True, "seat0", "x11", "user", "active")

    def discover():
        return xsession.discover(allowed=frozenset({cookie_x.number}), sessions=[session],
                                 run_user=tmp_path / "run-user", home_of=lambda uid: str(tmp_path / "home"))

    found = discover()
    assert (found.xauthority, found.cookie.data.hex()) == (runtime / "Xauthority", cookie_x.cookie)
    assert "active session t1 of root" in found.why

    # Not through a symlink, and not a file someone else owns: then nothing lets it in, and
    # the active session's display is not swapped for another.
    (runtime / "Xauthority").rename(tmp_path / "elsewhere")
    (runtime / "Xauthority").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(xsession.NoDisplay, match="no Xauthority the agent found lets it in"):
        discover()
    (runtime / "Xauthority").unlink()
    (tmp_path / "elsewhere").rename(runtime / "Xauthority")
    os.chown(runtime / "Xauthority", uid + 4242, uid + 4242)
    with pytest.raises(xsession.NoDisplay):
        discover()
    os.chown(runtime / "Xauthority", uid, uid)
    assert discover().xauthority == runtime / "Xauthority"


def test_another_users_x_server_cannot_make_root_read_a_file_that_is_not_theirs(folder):
    if os.geteuid() != 0:
        pytest.skip("runs an X server as another user: needs root")
    server = CookieX(folder, user=NOBODY)   # its -auth file is root's (readable by all)
    try:
        [mine] = [s for s in xsession.x_servers() if s.number == server.number]
        assert (mine.uid, mine.auth_file) == (NOBODY, str(server.auth_file))
        with pytest.raises(xsession.NoDisplay, match="no X server lets the agent in"):
            xsession.discover(allowed=frozenset({server.number}))
        os.chown(server.auth_file, NOBODY, NOBODY)  # now it is that user's own file
        assert xsession.discover(allowed=frozenset({server.number})).xauthority == server.auth_file
    finally:
        server.stop()


def test_only_the_allowed_displays_are_considered(cookie_x):
    other = free_display()  # nothing runs there
    with pytest.raises(xsession.NoDisplay, match=f"no X server is running among displays :{other}$"):
        xsession.discover(allowed=frozenset({other}))
    assert xsession.discover(allowed=frozenset({other, cookie_x.number})).display == cookie_x.display


# --- end to end: the real agent, the real server, a viewer ----------------------------------


class AutoAgent(AgentProcess):
    """``tessera-agent --display auto`` with neither DISPLAY nor XAUTHORITY in its environment,
    restricted to the test's display numbers. Waiting for it to enrol (``device_id``), its log
    and stopping it are AgentProcess's: a failed wait reports the log as it is then."""

    def __init__(self, server, key: str, displays: list[int], tmp: Path):
        self.state_dir = tmp / "agent-state"
        self.log_path = tmp / "agent.log"
        script = Path(sys.executable).parent / "tessera-agent"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "agents.host"]
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "XAUTHORITY")}
        env["TESSERA_X_DISPLAYS"] = ",".join(str(n) for n in displays)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command + ["--server", server.url, f"--enroll-key={key}", "--state-dir", str(self.state_dir),
                       "--display", "auto", "--hardware-id", uuid.uuid4().hex],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)


def solid(rgb: str) -> bytes:
    return bytes.fromhex(rgb) + b"\xff"


def test_agent_with_no_display_or_xauthority_finds_the_screen_and_follows_it(folder, tmp_path):
    """The agent shares the only X server; a lower-numbered one appears (a user logged in)
    and it moves there by itself; that one goes away (a logout) and it comes back."""
    need("xsetroot")
    from app.downloads.services import PackageData, create_package
    from app.models import EnrolmentState

    low, high = sorted({free_display() for _ in range(8)})[:2]
    first = CookieX(folder, high)
    server = Server(tmp_path)
    second = agent = None
    try:
        first.run("xsetroot", "-solid", "#336699")
        server.start()
        account_id, tech, _ = server.relay.account()
        with server.app.app_context():
            key = create_package(account_id, PackageData(
                name="Linux auto", enrolment_state=EnrolmentState("enrolled"))).enrollment_key
        agent = AutoAgent(server, key, [low, high], tmp_path)
        device_id = agent.device_id()
        world = type("World", (), {"relay": server.relay, "tech": tech})()
        wait_online(world, device_id, agent)
        assert f"sharing display {first.display}:" in agent.output()
        private = agent.state_dir / "xauthority"
        assert stat.S_IMODE(private.stat().st_mode) == 0o600

        viewer, greeting = open_viewer(world, device_id)
        assert greeting["state"].online
        viewer.expect(p.ScreenInfo)
        viewer_shows(viewer, solid("336699") * (1280 * 800))

        second = CookieX(folder, low)
        second.run("xsetroot", "-solid", "#aa5500")
        viewer_shows(viewer, solid("aa5500") * (1280 * 800), timeout=40)
        assert f"sharing display {second.display}:" in agent.output()

        second.stop()
        viewer_shows(viewer, solid("336699") * (1280 * 800), timeout=40)
        assert agent.output().count(f"sharing display {first.display}:") == 2
        assert agent.process.poll() is None
        viewer.close()
    finally:
        if agent is not None:
            agent.stop()
        for x in (second, first):
            if x is not None:
                x.stop()
        server.dispose()
