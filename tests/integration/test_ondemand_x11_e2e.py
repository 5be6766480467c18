"""The OnDemand agent end to end: Xvfb + a real ``tessera-ondemand`` process + the real relay
(``tessera run``) + the technician's console as a scripted websocket viewer.

Everything the person does is typed or clicked with xdotool (XTEST) into the program's real Tk
windows, found by their titles: the key in the key window (a wrong one is refused and another
typed), the consent window's checkboxes and Allow / Decline, the banner's Disconnect button,
Ctrl+Shift+X anywhere on the display, Close at the end. The console checks what the relay lets
through: nothing of the screen before consent, the screen when "View screen" was allowed, its
input refused without "Keyboard and mouse", and 4013 at once when the person ends it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.common import protocol as p
from agents.ondemand.windows import END_READY, KEY_READY
from app.models.ondemand import OnDemandState
from tests.integration.relay_world import start_relay_server, wait_for
from tests.integration.test_relay_ondemand import World, refusal
from tests.relay_harness import ROOT, relay_server_process, stop_process
from tests.unit.test_ondemand_logo import png

pytest.importorskip("websockets")
pytest.importorskip("tkinter")

MAIN = "Tessera OnDemand"
CONSENT = "Tessera OnDemand: allow access?"
BANNER = "Tessera OnDemand: session running"
SCREEN = (p.ScreenInfo, p.FrameUpdate, p.Cursor)
SKIP = (p.Ping, p.Pong, p.Status, p.Cursor, p.ScreenInfo, p.DeviceState, p.Permissions)


LIMITS = {"TESSERA_ONDEMAND_KEY_LIMIT_PER_ADDRESS": "10000 per hour",
          "TESSERA_ONDEMAND_KEY_LIMIT_GLOBAL": "10000 per hour"}


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory):
    # The checker looks for sessions waiting too long every second (30 s by default).
    yield from start_relay_server(tmp_path_factory, TESSERA_ONDEMAND_CHECK_EVERY="1", **LIMITS)


@pytest.fixture
def world(relay_server, xvfb):
    for tool in ("xdotool", "xsetroot"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (scripts/install-system-deps)")
    return World(relay_server)


class OnDemandProcess:
    """``tessera-ondemand`` (the console script, else ``python -m agents.ondemand``) on
    ``display`` with ``args``, its output in a file."""

    def __init__(self, server_url: str | None, display: str, tmp: Path, *args: str):
        script = Path(sys.executable).parent / "tessera-ondemand"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "agents.ondemand"]
        self.log_path = tmp / f"ondemand-{len(list(tmp.glob('ondemand-*.log')))}.log"
        self.log = open(self.log_path, "w")
        server = ["--server", server_url] if server_url else []   # None: the link gives it
        self.process = subprocess.Popen(command + [*server, "--display", display, *args],
                                        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, env={**os.environ, "DISPLAY": display})

    def output(self) -> str:
        return self.log_path.read_text()

    def exit_code(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tessera-ondemand still runs; its log:\n{self.output()}") from None

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


@pytest.fixture
def start(world, xvfb, tmp_path):
    started = []

    def start(*args: str, server: bool = True) -> OnDemandProcess:
        agent = OnDemandProcess(world.server.url if server else None, xvfb.display, tmp_path, *args)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def find(xvfb, title: str) -> list[str]:
    done = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", f"^{re.escape(title)}$"],
                          env=xvfb.env, capture_output=True, text=True)
    return done.stdout.split()


def window(xvfb, title: str, agent: OnDemandProcess, timeout: float = 45.0) -> str:
    """The id of the program's window titled ``title`` once it is on screen."""
    try:
        return wait_for(lambda: (find(xvfb, title) or [None])[0], timeout, every=0.2,
                        message=f"the window {title!r} to appear")
    except AssertionError as late:
        raise AssertionError(f"{late}; tessera-ondemand's log:\n{agent.output()}") from None


def press(xvfb, win: str, *keys: str) -> None:
    """Give ``win`` the keyboard and press ``keys`` through XTEST, as a person would."""
    xvfb.run("xdotool", "windowfocus", "--sync", win)
    xvfb.run("xdotool", "key", "--clearmodifiers", *keys)


def type_key(xvfb, agent: OnDemandProcess, text: str, times: int = 1) -> None:
    """Type ``text`` and Return into the key field once it is shown for the ``times``-th time."""
    wait_for(lambda: agent.output().count(KEY_READY) >= times, 30,
             message="the key field to take the keyboard")
    xvfb.run("xdotool", "windowfocus", "--sync", window(xvfb, MAIN, agent))
    xvfb.run("xdotool", "type", "--delay", "20", text)
    xvfb.run("xdotool", "key", "Return")


def grouped(key: str) -> str:
    return f"{key[:3]} {key[3:6]} {key[6:]}"


def waits(world, session_id: int, agent: OnDemandProcess) -> None:
    def waiting():
        row = world.row(session_id)
        return row is not None and row.state is OnDemandState.waiting

    try:
        wait_for(waiting, 45, every=0.2, message="the session to wait in the queue")
    except AssertionError as late:
        raise AssertionError(f"{late}; tessera-ondemand's log:\n{agent.output()}") from None


def ask(world, session_id: int):
    """The technician's console, greeted and told to wait for the person at the computer."""
    console = world.console(session_id)
    console.start()
    assert console.expect(p.ConfirmState).state is p.ConfirmOutcome.WAITING
    return console


def until_consent(xvfb, console, agent) -> tuple[str, list]:
    """Wait for the consent window; what the console received meanwhile."""
    got = []
    deadline_window = None
    while deadline_window is None:
        got += console.quiet(0.3)
        found = find(xvfb, CONSENT)
        deadline_window = found[0] if found else None
        if agent.process.poll() is not None:
            raise AssertionError(f"tessera-ondemand exited; its log:\n{agent.output()}")
    return deadline_window, got


def allowed_state(console) -> p.ConfirmState:
    while True:
        state = console.expect(p.ConfirmState, timeout=30, skip=SKIP)
        if state.state is not p.ConfirmOutcome.WAITING:
            return state


def shows(console, colour: bytes, x: int = 640, y: int = 700) -> None:
    """The console's picture of the primary screen has ``colour`` at (x, y) (away from the
    banner at the top)."""
    def painted():
        while True:
            try:
                console.recv(timeout=0.2)
            except TimeoutError:
                break
        frame = console.frames.get(0)
        if frame is None:
            return False
        width = console.screens[0][0]
        return bytes(frame[(y * width + x) * 4:(y * width + x) * 4 + 4]) == colour

    wait_for(painted, 30, every=0.05, message="the console to show the screen")


def close_the_end(xvfb, agent: OnDemandProcess, keys: str, title: str = "The session has ended") -> int:
    """Once the main window says how it ended (``title`` and its sentence are logged when it
    does), close it with ``keys``; the exit status."""
    try:
        wait_for(lambda: END_READY in agent.output(), 30, message="the program to show the end")
    except AssertionError as late:
        raise AssertionError(f"{late}; tessera-ondemand's log:\n{agent.output()}") from None
    assert f"INFO {title}" in agent.output()
    press(xvfb, window(xvfb, MAIN, agent), keys)
    return agent.exit_code()


def click_disconnect(xvfb, banner: str) -> None:
    """Click the banner's Disconnect button: the bottom-right corner of the banner, inside its
    padding (the button is packed last, to the right)."""
    geometry = xvfb.run("xdotool", "getwindowgeometry", "--shell", banner)
    g = dict(line.split("=", 1) for line in geometry.split())
    x, y = int(g["X"]) + int(g["WIDTH"]) - 14 - 20, int(g["Y"]) + int(g["HEIGHT"]) - 8 - 10
    xvfb.run("xdotool", "mousemove", "--sync", str(x), str(y), "click", "1")


def test_typed_key_view_only_input_refused_then_ctrl_shift_x_ends_it_at_once(world, start, xvfb):
    xvfb.run("xsetroot", "-solid", "#2a6f3b")
    session_id, key = world.session()
    agent = start("--account-name", "Acme Support")
    type_key(xvfb, agent, grouped(key))
    waits(world, session_id, agent)
    if shutil.which("xclip"):
        copy(xvfb, "a password copied while waiting")

    console = ask(world, session_id)
    consent, before = until_consent(xvfb, console, agent)
    assert not [m for m in before if isinstance(m, SCREEN + (p.Clipboard,))], \
        "nothing of the screen or the clipboard before consent"
    press(xvfb, consent, "alt+v")
    press(xvfb, consent, "alt+a")
    state = allowed_state(console)
    assert state.state is p.ConfirmOutcome.ALLOWED and "View screen" in state.text
    shows(console, b"\x2a\x6f\x3b\xff")
    window(xvfb, BANNER, agent)

    console.send(p.Key(0x61, True))   # no Keyboard and mouse: refused by the relay
    error = console.expect(p.Error, timeout=10, skip=SKIP + (p.FrameUpdate, p.ConfirmState))
    assert error.code == p.CloseCode.PERMISSION_WITHDRAWN

    xvfb.run("xdotool", "key", "--clearmodifiers", "ctrl+shift+x")
    assert console.close_code == p.CloseCode.ENDED_BY_HOST
    wait_for(lambda: not find(xvfb, BANNER), 20, message="the banner to close")
    assert close_the_end(xvfb, agent, "Return") == 0   # Close has the focus
    log = agent.output()
    assert "the person at the computer ended the session" in log and "You ended the session" in log
    assert world.row(session_id) is None, "the session is over and deleted"


def test_a_wrong_key_is_explained_and_another_one_typed(world, start, xvfb):
    session_id, key = world.session()
    wrong = "000000000" if key != "000000000" else "000000001"
    agent = start()
    type_key(xvfb, agent, "123 45")    # too short: refused in the window, never sent
    wait_for(lambda: "The session key has 9 digits; this has 5" in agent.output(), 20,
             message="the short key to be explained")
    type_key(xvfb, agent, grouped(wrong))   # the field's text is selected: typing replaces it
    wait_for(lambda: "This session key is not valid" in agent.output(), 30,
             message="the relay's refusal to be shown")
    type_key(xvfb, agent, grouped(key), times=2)
    waits(world, session_id, agent)
    assert world.details("ondemand.key_tried", session_id), "the good key was tried once typed"
    assert agent.process.poll() is None


def paste(xvfb) -> str:
    done = subprocess.run(["xclip", "-selection", "clipboard", "-out"], env=xvfb.env,
                          capture_output=True, timeout=10)
    return done.stdout.decode("utf-8", "replace")


def copy(xvfb, text: str) -> None:
    """Put ``text`` on the clipboard as another program would (xclip keeps serving it)."""
    subprocess.run(["xclip", "-selection", "clipboard", "-in"], input=text.encode(), env=xvfb.env,
                   timeout=10, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def set_square_logo(world, data: bytes) -> str:
    """The account's square logo (the Portal's own upload check), and its public address."""
    from app.account.services import set_logo
    from app.extensions import db
    from app.models import Account

    with world.server.app.app_context():
        set_logo(db.session.get(Account, world.account_id), "square", data)
        db.session.commit()
    return f"{world.server.url}/account/{world.account_id}/logo/square"


def test_declined_then_allowed_with_everything_then_the_disconnect_button(world, start, xvfb):
    """The launcher's form: key, company name and logo on the command line."""
    xvfb.run("xsetroot", "-solid", "#1f5a7b")
    session_id, key = world.session()
    logo = set_square_logo(world, png(200, 200))
    agent = start("--key", key, "--account-name", "Acme Support", "--logo", logo)
    waits(world, session_id, agent)
    wait_for(lambda: "showing the logo (67x67)" in agent.output(), 30,
             message="the logo, scaled down to fit, to be shown")

    console = ask(world, session_id)
    consent, before = until_consent(xvfb, console, agent)
    press(xvfb, consent, "Escape")    # declines
    state = allowed_state(console)
    assert state.state is p.ConfirmOutcome.DENIED
    code, _ = refusal(console.ws)
    assert code == p.CloseCode.ACCESS_DENIED
    assert not [m for m in before if isinstance(m, SCREEN)]
    wait_for(lambda: not find(xvfb, CONSENT), 20, message="the consent window to close")
    assert world.row(session_id).state is OnDemandState.waiting, "declined: the session waits again"

    console = ask(world, session_id)
    consent, before = until_consent(xvfb, console, agent)
    assert not [m for m in before if isinstance(m, SCREEN)]
    press(xvfb, consent, "alt+v")
    press(xvfb, consent, "alt+k")
    press(xvfb, consent, "alt+c")
    press(xvfb, consent, "alt+a")
    state = allowed_state(console)
    assert state.state is p.ConfirmOutcome.ALLOWED
    assert all(label in state.text for label in ("View screen", "Keyboard and mouse", "Clipboard"))
    shows(console, b"\x1f\x5a\x7b\xff")

    # Clipboard (D4), both ways, with xclip as the person's other programs.
    if shutil.which("xclip"):
        console.send(p.Clipboard("from the technician ✓"))
        wait_for(lambda: paste(xvfb) == "from the technician ✓", 20,
                 message="the technician's text on the computer's clipboard")
        copy(xvfb, "copied at the computer ✓")
        got = console.expect(p.Clipboard, timeout=20, skip=SKIP + (p.FrameUpdate, p.ConfirmState))
        assert got.text == "copied at the computer ✓"

    click_disconnect(xvfb, window(xvfb, BANNER, agent))
    assert console.close_code == p.CloseCode.ENDED_BY_HOST
    assert close_the_end(xvfb, agent, "Escape") == 0
    assert "You ended the session" in agent.output()
    assert world.row(session_id) is None


def reject_in_the_queue(world, session_id: int) -> None:
    """The technician's Reject button on My sessions (a form post with the page's CSRF token)."""
    page = world.http.get(f"{world.server.url}/sessions", timeout=10).text
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    done = world.http.post(f"{world.server.url}/sessions/{session_id}/reject",
                           data={"csrf_token": token}, timeout=10)
    assert done.status_code == 200, done.text[:300]


def waited_over_an_hour(world, session_id: int) -> None:
    from datetime import timedelta

    world.backdate(session_id, connected_at=timedelta(minutes=61))


def link(server_url: str, key: str) -> str:
    """The link page's "Open it" address, as a browser hands it to the registered handler."""
    from urllib.parse import quote

    return f"tessera-ondemand://connect?server={quote(server_url, safe='')}&key={key}"


@pytest.mark.parametrize("end, title, sentence, by_link", [
    (reject_in_the_queue, "The technician rejected this session", "its key no longer works", False),
    (waited_over_an_hour, "This session has expired", "Nobody started this session within an hour", True),
])
def test_a_waiting_session_rejected_or_expired_says_so_and_never_reconnects(world, start, xvfb, end,
                                                                           title, sentence, by_link):
    session_id, key = world.session()
    # Started by the launcher (--server, --key) or by the tessera-ondemand:// link alone.
    agent = start(link(world.server.url, key), server=False) if by_link else start("--key", key)
    waits(world, session_id, agent)
    end(world, session_id)
    assert close_the_end(xvfb, agent, "Return", title=title) == 1
    assert f"{title}: " in agent.output() and sentence in agent.output()
    assert agent.output().count("connected to ws://") == 1, "a spent key is never used again"
    assert world.row(session_id) is None


def test_an_outdated_program_is_told_to_download_it_again(tmp_path, xvfb):
    for tool in ("xdotool",):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (scripts/install-system-deps)")
    with relay_server_process(tmp_path / "relay", TESSERA_ONDEMAND_MIN_AGENT_VERSION="99.0", **LIMITS) as server:
        world = World(server)
        session_id, key = world.session()
        agent = OnDemandProcess(server.url, xvfb.display, tmp_path, "--key", key)
        try:
            assert close_the_end(xvfb, agent, "Return", title="This program is out of date") == 1
            assert "download it again from the link" in agent.output().lower()
            assert world.row(session_id).state is OnDemandState.created, "the key is not spent"
        finally:
            agent.stop()
