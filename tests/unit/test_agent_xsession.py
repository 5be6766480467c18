"""How the Host agent reads what runs and picks a display with ``display = auto``
(agents/host/xsession.py): X server command lines as display managers write them, the
Xauthority file format, loginctl's answers, the choice order, and the agent following the
choice. Real X servers: tests/integration/test_agent_xsession.py."""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading

import pytest
from hypothesis import given, strategies as st

from agents.common import protocol as P
from agents.common.transport import Backoff, WebsocketTransport
from agents.host.agent import Agent
from agents.host.state import build_config
from agents.host.xsession import (
    FAMILY_LOCAL, FAMILY_WILD, MIT_COOKIE, FoundDisplay, LoginSession, NoDisplay, XauthEntry,
    XServer, allowed_displays, candidates, encode_xauthority, login_sessions,
    parse_server_command, parse_xauthority, server_cookies, user_cookies, x_servers,
)
from tests.unit.test_agent_connection import Enroller, Sleeps, fake_desktop, finish, relay  # noqa: F401


def argv(line: str) -> list[str]:
    return line.split(" ")


@pytest.mark.parametrize("line, expected", [
    # gdm, rootless Xorg: the number comes back on -displayfd, not on the command line
    ("/usr/lib/xorg/Xorg vt2 -displayfd 3 -auth /run/user/1000/gdm/Xauthority -nolisten tcp "
     "-background none -noreset -keeptty -novtswitch -verbose 3", (None, "/run/user/1000/gdm/Xauthority")),
    # lightdm: the auth file's name ends in ":0" and is not the display
    ("/usr/lib/xorg/Xorg :0 -seat seat0 -auth /var/run/lightdm/root/:0 -nolisten tcp vt7 -novtswitch",
     (0, "/var/run/lightdm/root/:0")),
    ("/usr/lib/xorg/Xorg -nolisten tcp -auth /var/run/sddm/{1c0e8f6a-3d} -background none -noreset "
     "-displayfd 17 -seat seat0 vt1", (None, "/var/run/sddm/{1c0e8f6a-3d}")),
    ("/usr/lib/xorg/Xorg -nolisten tcp :1 vt2 -keeptty -auth /tmp/serverauth.kq2Xw", (1, "/tmp/serverauth.kq2Xw")),
    ("Xvfb :99 -screen 0 1280x800x24 -auth /tmp/cookie", (99, "/tmp/cookie")),
    ("/usr/bin/Xwayland :0 -rootless -noreset -accessx -core -auth /run/user/1000/.mutter-Xwaylandauth.X1 "
     "-listenfd 4 -listenfd 5 -displayfd 6", (0, "/run/user/1000/.mutter-Xwaylandauth.X1")),
    ("/usr/bin/Xvfb :5 -auth cookie", (5, None)),              # relative: to what?
    ("Xorg :3 -auth", (3, None)),                              # cut short
    ("Xorg :999999 :1.0 -screen 0 :4", (4, None)),             # no such display, a screen, then :4
    ("Xorg -auth /a -auth /b :2 :3", (2, "/b")),               # the X server takes the last -auth
    (":7 Xorg", (None, None)),                                 # argv[0] is the program
])
def test_x_server_command_lines_give_their_display_and_auth_file(line, expected):
    assert parse_server_command(argv(line)) == expected


def mit(number=b"0", data=b"\x01" * 16, family=FAMILY_LOCAL, address=b"host", name=MIT_COOKIE):
    return XauthEntry(family, address, number, name, data)


@given(st.lists(st.builds(XauthEntry, st.integers(0, 65535), st.binary(max_size=40), st.binary(max_size=5),
                          st.binary(max_size=30), st.binary(max_size=64)), max_size=8))
def test_xauthority_files_round_trip(entries):
    assert parse_xauthority(encode_xauthority(entries)) == entries


def test_a_truncated_xauthority_file_keeps_the_whole_entries_before_the_cut():
    raw = encode_xauthority([mit(b"1"), mit(b"2", b"\x02" * 16)])
    for cut in range(len(raw)):
        parsed = parse_xauthority(raw[:cut])
        assert parsed == [mit(b"1"), mit(b"2", b"\x02" * 16)][:len(parsed)]
    assert parse_xauthority(raw[:len(raw) // 2 + 3]) == [mit(b"1")]


def test_what_xauth_writes_is_read():
    if shutil.which("xauth") is None:
        pytest.skip("xauth not installed (scripts/install-system-deps)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "auth")
        subprocess.run(["xauth", "-f", path, "add", ":12", ".", "00112233445566778899aabbccddeeff"],
                       check=True, capture_output=True)
        with open(path, "rb") as fh:
            [entry] = parse_xauthority(fh.read())
    assert entry == XauthEntry(FAMILY_LOCAL, socket.gethostname().encode(), b"12", MIT_COOKIE,
                               bytes.fromhex("00112233445566778899aabbccddeeff"))


def test_an_x_servers_own_file_lends_any_of_its_cookies_this_display_first():
    entries = [mit(b"7", b"a" * 16), mit(b"", b"b" * 16), mit(b"3", b"c" * 16, address=b"elsewhere"),
               mit(b"3", b"d" * 16, name=b"XDM-AUTHORIZATION-1"), mit(b"3", b"")]
    assert [e.data for e in server_cookies(entries, 3)] == [b"c" * 16, b"b" * 16, b"a" * 16]


def test_a_users_file_lends_only_local_cookies_of_this_display_this_host_first():
    entries = [mit(b"1", b"a" * 16, address=b"oldname"), mit(b"1", b"b" * 16, family=FAMILY_WILD, address=b""),
               mit(b"1", b"c" * 16, address=b"host"), mit(b"2", b"d" * 16, address=b"host"),
               mit(b"1", b"e" * 16, family=0, address=b"\x7f\0\0\1"), mit(b"", b"f" * 16, address=b"host")]
    assert [e.data for e in user_cookies(entries, 1, b"host")] == [b"c" * 16, b"f" * 16, b"b" * 16, b"a" * 16]


def test_x_displays_restriction_from_the_environment():
    assert allowed_displays({}) is None
    assert allowed_displays({"TESSERA_X_DISPLAYS": " "}) is None
    assert allowed_displays({"TESSERA_X_DISPLAYS": "5, :7,12"}) == {5, 7, 12}
    assert allowed_displays({"TESSERA_X_DISPLAYS": "localhost:3,x"}) == frozenset()  # allows nothing


class Loginctl:
    def __init__(self, sessions: dict[str, str], listing: str | None = None, rc=0):
        self.sessions, self.rc, self.calls = sessions, rc, []
        self.listing = listing if listing is not None else "".join(
            f"{sid} 1000 alice seat0 tty2\n" for sid in sessions)

    def __call__(self, args):
        self.calls.append(args)
        if args[:2] == ["loginctl", "list-sessions"]:
            return subprocess.CompletedProcess(args, self.rc, self.listing, "")
        return subprocess.CompletedProcess(args, 0, self.sessions.get(args[2], ""), "")


def test_logind_sessions_are_read_from_loginctl_defensively():
    runner = Loginctl({
        "2": "Display=:1\nName=alice\nUser=1000\nActive=yes\nSeat=seat0\nType=x11\nClass=user\n"
             "State=active\nRemote=no\n",
        "c1": "Display=\nName=gdm\nUser=120\nActive=no\nSeat=seat0\nType=wayland\nClass=greeter\nState=online\n",
        "7": "Display=" + "9" * 5000 + "\nName=mallory\nUser=-1\nActive=yes\n",
    }, listing="2 1000 alice seat0 tty2\nc1 120 gdm seat0 tty1\n--help x\n7 0 m\n\n")
    sessions = login_sessions(runner)
    assert sessions[0] == LoginSession("2", 1, "alice", 1000, True, "seat0", "x11", "user", "active", False)
    assert sessions[1] == LoginSession("c1", None, "gdm", 120, False, "seat0", "wayland", "greeter", "online", False)
    assert sessions[2].display is None and sessions[2].uid is None
    assert all(call[2] != "--help" for call in runner.calls[1:]), "an id that looks like an option is skipped"
    assert login_sessions(Loginctl({}, rc=1)) == []


def session(sid, display, **kw):
    values = dict(user="alice", uid=1000, active=True, seat="seat0", type="x11", kind="user", state="active")
    values.update(kw)
    return LoginSession(sid, display, **values)


def numbers(found):
    return [c.number for c in found]


def test_the_active_x11_session_on_seat0_is_the_only_choice():
    servers = [XServer(0, 10, "Xorg", 120, "/run/user/120/gdm/Xauthority", "gdm-x-session"),
               XServer(1, 20, "Xorg", 1000, "/run/user/1000/gdm/Xauthority", "gdm-x-session")]
    sessions = [session("c1", 0, user="gdm", uid=120, active=False, kind="greeter", state="online"),
                session("2", 1)]
    [chosen] = candidates(servers, sessions)
    assert (chosen.number, chosen.only, chosen.server.pid, chosen.session.id) == (1, True, 20, "2")
    assert "active session 2 of alice" in chosen.why


def test_an_active_wayland_session_is_refused_rather_than_sharing_another_screen():
    servers = [XServer(0, 10, "Xwayland", 1000, "/run/user/1000/.mutter-Xwaylandauth.A"), XServer(5, 11, "Xvfb", 0)]
    with pytest.raises(NoDisplay, match="Wayland"):
        candidates(servers, [session("3", None, type="wayland")])


def test_without_an_active_session_the_login_screen_then_the_lowest_x_server():
    servers = [XServer(4, 40, "Xvfb", 0), XServer(2, 20, "Xorg", 0, "/var/run/lightdm/root/:2", "lightdm"),
               XServer(0, 5, "Xorg", 1000), XServer(6, 60, "Xwayland", 1000)]
    assert numbers(candidates(servers, [])) == [2, 0, 4]
    tty = [session("5", None, type="tty"), session("c3", 4, active=False, kind="greeter", state="online")]
    found = candidates(servers, tty)
    assert numbers(found) == [4, 2, 0] and "login screen" in found[0].why and not found[0].only


def test_remote_closing_and_other_seat_sessions_are_not_the_one_in_front():
    servers = [XServer(n, n + 100, "Xorg", 0) for n in (0, 10, 11, 12)]
    sessions = [session("r", 10, remote=True, seat=""), session("x", 11, state="closing"),
                session("s1", 12, seat="seat1")]
    found = candidates(servers, sessions)
    assert numbers(found) == [0, 10, 11, 12] and not any(c.only for c in found)
    assert found[2].session is None and found[3].session.id == "s1"  # its files may hold the cookie


def test_the_allowed_displays_restrict_every_choice():
    servers = [XServer(0, 1, "Xorg", 0), XServer(7, 2, "Xvfb", 0), XServer(9, 3, "Xvfb", 0)]
    assert numbers(candidates(servers, [session("2", 0)], allowed=frozenset({9, 7}))) == [7, 9]
    assert candidates(servers, [], allowed=frozenset()) == []


def test_x_servers_are_known_by_their_sockets_before_their_lock_file_and_command_line(tmp_path):
    """A /proc and /tmp laid out as Linux does, with a process calling itself Xorg that claims
    another server's display on its command line."""
    if os.geteuid() != 0:
        pytest.skip("gives a file to another user: needs root")
    proc, tmp = tmp_path / "proc", tmp_path / "tmp"
    (proc / "net").mkdir(parents=True)
    (tmp / ".X11-unix").mkdir(parents=True)
    (proc / "net" / "unix").write_text(
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 501 /tmp/.X11-unix/X0\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 502 @/tmp/.X11-unix/X0\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 503 @/tmp/.X11-unix/X8\n"
        "0000000000000000: 00000003 00000000 00000000 0001 03 504 /tmp/.X11-unix/X3\n"
        "garbage line\n")

    def process(pid, comm, args, uids="0\t0\t0\t0", sockets=(), ppid=1):
        base = proc / str(pid)
        (base / "fd").mkdir(parents=True)
        (base / "comm").write_text(comm + "\n")
        (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in args.split(" ")) + b"\0")
        (base / "status").write_text(f"Name:\t{comm}\nUid:\t{uids}\n")
        (base / "stat").write_text(f"{pid} ({comm}) S {ppid} 1 1 0\n")
        for fd, inode in enumerate(sockets):
            os.symlink(f"socket:[{inode}]", base / "fd" / str(fd))

    process(1, "systemd", "/sbin/init")
    process(40, "lightdm", "/usr/sbin/lightdm")
    process(41, "Xorg", "/usr/lib/xorg/Xorg -displayfd 3 -auth /var/run/lightdm/root/:0", sockets=(501, 502), ppid=40)
    process(42, "Xorg", "/usr/lib/xorg/Xorg :0 -auth /home/mallory/fake", uids="1001\t0\t0\t0")
    process(50, "Xvfb", "Xvfb :6 -auth /tmp/c")
    (tmp / ".X5-lock").write_text("        50\n")
    process(43, "Xorg", "Xorg :11", uids="1001\t1001\t1001\t1001")
    (tmp / ".X12-lock").write_text("43\n")
    os.chown(tmp / ".X12-lock", 2002, 2002)  # someone else's word for it: not believed
    process(60, "Xwayland", "/usr/bin/Xwayland :8 -rootless", uids="1000\t1000\t1000\t1000", sockets=(503,))
    process(70, "bash", "bash :9")
    os.mkfifo(tmp / ".X11-unix" / "X3")  # not a socket
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp / ".X11-unix" / "X4"))  # a socket whose server is not visible
        servers = {s.number: s for s in x_servers(proc, tmp)}
    assert sorted(servers) == [0, 4, 5, 8, 11]
    assert servers[0] == XServer(0, 41, "Xorg", 0, "/var/run/lightdm/root/:0", "lightdm")
    assert servers[5] == XServer(5, 50, "Xvfb", 0, "/tmp/c", "systemd")  # its lock file says :5
    assert servers[8].wayland and servers[8].uid == 1000
    assert (servers[11].pid, servers[11].uid) == (43, 1001)
    assert servers[4] == XServer(4, uid=os.geteuid())


class AutoDesktops:
    """What discovery finds, step by step, and the desktops the agent opens on it."""

    def __init__(self, *answers):
        self.answers, self.opened, self.calls = list(answers), [], 0

    def discover(self):
        self.calls += 1
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def open(self, display):
        self.opened.append(display)
        return fake_desktop()


def test_with_display_auto_the_agent_waits_for_a_display_then_follows_it(relay, tmp_path, monkeypatch):  # noqa: F811
    import agents.host.agent as agent_module

    monkeypatch.setattr(agent_module, "STATUS_EVERY", 0.2)
    monkeypatch.setenv("XAUTHORITY", "/nowhere")  # restored afterwards: the agent sets both
    monkeypatch.setenv("DISPLAY", ":99")
    one = FoundDisplay(":1", None, mit(b"1"), "the login screen")
    two = FoundDisplay(":2", None, None, "the active session 4 of alice")
    desktops = AutoDesktops(NoDisplay("no X server is running"), one, one, one, two)
    config = build_config(server=relay.url, enroll_key="KEY", state_dir=str(tmp_path / "state"),
                          hardware_id="hw-1", environ={})
    assert config.display == "auto"
    sleeps = Sleeps()
    agent = Agent(config, transport=WebsocketTransport(open_timeout=5), desktop_factory=desktops.open,
                  discover=desktops.discover, enroller=Enroller(), sleep=sleeps,
                  backoff=Backoff(rng=random.Random(1)))
    result = []
    agent.thread, agent.result = threading.Thread(target=lambda: result.append(agent.run()), daemon=True), result
    agent.thread.start()
    first = relay.next()
    assert isinstance(first.recv(), P.Hello)
    assert desktops.opened == [":1"] and len(sleeps.delays) == 1, "it waited once for an X server"
    private = tmp_path / "state" / "xauthority"
    assert os.environ["XAUTHORITY"] == str(private) and os.environ["DISPLAY"] == ":1"
    assert parse_xauthority(private.read_bytes())[0].data == b"\x01" * 16
    assert private.stat().st_mode & 0o777 == 0o600

    # A user logged in: discovery now picks :2, the agent leaves :1 and comes back at once.
    second = relay.next(timeout=10)
    assert isinstance(second.recv(), P.Hello)
    assert desktops.opened == [":1", ":2"] and len(sleeps.delays) == 1
    assert os.environ["DISPLAY"] == ":2" and not private.exists(), ":2 needs no cookie"
    assert finish(agent) == 0
    first.close()
    second.close()
