"""Which X display the Host agent shares when it is not told, and how it gets in.

The Linux installer runs the agent as root from a systemd unit, without ``DISPLAY`` or
``XAUTHORITY``. With ``display = auto`` (the default when no display is given and
``$DISPLAY`` is unset) ``agent.Agent`` calls :func:`discover` before it opens the desktop, and
again every few seconds while connected, so that it follows the person at the machine: the
login screen, then their session, then the login screen again after they log out.

Like x11vnc's ``-find`` and ``-auth guess`` (its FD_XDM mode), it looks at what runs:

* the X servers (:func:`x_servers`): processes named Xorg, X, Xvfb, Xvnc or Xtigervnc, with
  the display they serve (their listening sockets in /proc/net/unix; else the
  ``/tmp/.X<N>-lock`` file naming them; else ``:N`` on their command line: a display manager
  that uses ``-displayfd`` gives none) and their ``-auth FILE``. Xwayland is noted but never
  chosen: its screen belongs to a Wayland compositor. A socket in /tmp/.X11-unix (or an
  abstract one) whose server process is not visible counts as an X server too;
* logind's sessions (:func:`login_sessions`, through ``desktop.logind_sessions``).

The choice (:func:`candidates`):

1. the active session on seat0, when it is an X11 session with a display: that display and no
   other (when it cannot be opened, discovery fails and says why rather than share a screen
   nobody is looking at). When it is a Wayland session, nothing: not supported yet;
2. the display manager's login screen: a logind greeter session's display, then an X server
   that a display manager (gdm, lightdm, sddm, xdm ...) started;
3. any other X server, the lowest display number first.

For the display chosen, the Xauthority (:func:`credentials`): the X server's ``-auth`` file,
then the session user's ``/run/user/<uid>/gdm/Xauthority`` and ``~/.Xauthority``, then none (a
server without access control). Each cookie is tried with a real X connection setup
(:func:`x_accepts`) before it is believed.

What /proc, /tmp and loginctl say comes from other users' programs: any process may call
itself Xorg and claim any ``-auth`` file. So nothing runs through a shell, everything is parsed
defensively, and a file is read only as a regular file, not through a symlink, and only when it
belongs to whom it should: the X server's user (any owner for an X server root runs), the
session's user for the files in their home and runtime directories. The agent then does not
point ``XAUTHORITY`` at the file it found (its owner could swap it for something else before
the next connection reads it): :func:`adopt` copies the one cookie that got in into a private
file of the agent's, as x11vnc does, with an entry for this host name (what python-xlib looks
up) and a wildcard one (libxcb's fallback).

``TESSERA_X_DISPLAYS`` (display numbers, comma-separated) restricts discovery to those
displays; the tests use it to find their own Xvfb among the others running in parallel.
"""
from __future__ import annotations

import logging
import os
import pwd
import re
import socket
import stat
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, MutableMapping

from agents.host.desktop import Runner, display_number, logind_sessions, run_command
from agents.host.state import AUTO  # noqa: F401 - the display value that asks for discovery

log = logging.getLogger("tessera.agent")

ENV_DISPLAYS = "TESSERA_X_DISPLAYS"

X_SERVER_NAMES = frozenset({"Xorg", "X", "Xvfb", "Xvnc", "Xtigervnc"})
XWAYLAND = "Xwayland"
# Process names (as /proc/<pid>/comm has them, at most 15 characters) of display managers and
# of the helpers that start their X servers.
DISPLAY_MANAGERS = frozenset({"gdm", "gdm3", "gdm-x-session", "lightdm", "sddm", "sddm-helper",
                              "xdm", "lxdm", "lxdm-binary", "slim", "nodm", "kdm", "wdm", "ly"})

FAMILY_LOCAL, FAMILY_WILD = 256, 65535
MIT_COOKIE = b"MIT-MAGIC-COOKIE-1"
MAX_FILE = 64 * 1024         # an Xauthority file, a command line: more is not one
MAX_ENTRIES = 256
COOKIES_PER_FILE = 4         # cookies tried from one file
SESSION_PROPERTIES = ("Display", "Name", "User", "Active", "Seat", "Type", "Class", "State", "Remote")

_DISPLAY_ARG = re.compile(r":(\d{1,5})")
_SOCKET_PATH = re.compile(r"@?/tmp/\.X11-unix/X(\d{1,5})")
_SOCKET_NAME = re.compile(r"X(\d{1,5})")
_LOCK_NAME = re.compile(r"\.X(\d{1,5})-lock")
_SOCKET_LINK = re.compile(r"socket:\[(\d{1,20})\]")
_SO_ACCEPTCON = 0x10000      # /proc/net/unix: a listening socket


class NoDisplay(Exception):
    """No X display can be shared now; the message says why (the agent logs it and retries)."""


@dataclass(frozen=True)
class XServer:
    number: int                   # the display, :number
    pid: int | None = None        # None: only its socket is seen
    name: str = ""                # the process name (comm)
    uid: int | None = None        # who controls it: the process's user, else its socket's owner
    auth_file: str | None = None  # -auth FILE on its command line (absolute paths only)
    parent: str = ""              # the parent process's name (a display manager?)

    @property
    def wayland(self) -> bool:
        return self.name == XWAYLAND


@dataclass(frozen=True)
class LoginSession:
    id: str
    display: int | None
    user: str = ""
    uid: int | None = None
    active: bool = False
    seat: str = ""
    type: str = ""                # x11, wayland, tty ...
    kind: str = ""                # logind's Class: user, greeter ...
    state: str = ""               # online, active, closing
    remote: bool = False

    def describe(self) -> str:
        return f"session {self.id} of {self.user or f'uid {self.uid}'}"


@dataclass(frozen=True)
class Candidate:
    number: int
    why: str                      # for the log: "the active session 3 of alice"
    server: XServer | None
    session: LoginSession | None = None
    only: bool = False            # the active session's display: no falling back to another


@dataclass(frozen=True)
class XauthEntry:
    family: int
    address: bytes
    number: bytes
    name: bytes
    data: bytes


@dataclass(frozen=True)
class FoundDisplay:
    display: str                  # ":N"
    xauthority: Path | None       # the file whose cookie got in; None: the server needs none
    cookie: XauthEntry | None
    why: str
    pid: int | None = None        # the X server's process, when it is visible

    def describe(self) -> str:
        source = f"Xauthority from {self.xauthority}" if self.xauthority else "no Xauthority needed"
        return f"{self.why}; {source}"


# --- parsing what other programs wrote ------------------------------------------------------


def _small_int(text: str, digits: int = 10) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= digits else None


def parse_server_command(argv: list[str]) -> tuple[int | None, str | None]:
    """An X server's command line (``argv[0]`` first) -> (display number, ``-auth`` file).
    Either is None when absent; a relative ``-auth`` path is not used (relative to what?)."""
    number = auth = None
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-auth":
            auth = argv[i + 1] if i + 1 < len(argv) else None
            i += 2
            continue
        match = _DISPLAY_ARG.fullmatch(arg)
        if match and number is None and int(match.group(1)) <= 65535:
            number = int(match.group(1))
        i += 1
    if auth is not None and not (auth.startswith("/") and len(auth) < 4096):
        auth = None
    return number, auth


def parse_xauthority(raw: bytes) -> list[XauthEntry]:
    """The entries of an Xauthority file (big-endian: family, then address, display number,
    scheme name and data, each a 16-bit length and bytes). Stops at anything truncated."""
    entries, pos = [], 0
    while pos + 2 <= len(raw) and len(entries) < MAX_ENTRIES:
        (family,) = struct.unpack_from(">H", raw, pos)
        pos += 2
        fields = []
        for _ in range(4):
            if pos + 2 > len(raw):
                return entries
            (length,) = struct.unpack_from(">H", raw, pos)
            pos += 2
            if pos + length > len(raw):
                return entries
            fields.append(raw[pos:pos + length])
            pos += length
        entries.append(XauthEntry(family, *fields))
    return entries


def encode_xauthority(entries: Iterable[XauthEntry]) -> bytes:
    out = bytearray()
    for e in entries:
        out += struct.pack(">H", e.family)
        for value in (e.address, e.number, e.name, e.data):
            out += struct.pack(">H", len(value)) + value
    return bytes(out)


def allowed_displays(environ: Mapping[str, str]) -> frozenset[int] | None:
    """``TESSERA_X_DISPLAYS`` ("5,7" or ":5, :7") as display numbers; None when unset. A value
    that lists nothing usable allows nothing (a typo must not share every display)."""
    value = environ.get(ENV_DISPLAYS, "").strip()
    if not value:
        return None
    numbers = set()
    for part in value.split(","):
        match = re.fullmatch(r":?(\d{1,5})", part.strip())
        if match:
            numbers.add(int(match.group(1)))
        elif part.strip():
            log.warning("%s: %r is not a display number", ENV_DISPLAYS, part.strip()[:20])
    return frozenset(numbers)


# --- what runs: X servers -------------------------------------------------------------------


def _read(path: Path | str, limit: int = MAX_FILE) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def _text(path: Path | str, limit: int = 4096) -> str:
    raw = _read(path, limit)
    return raw.decode("utf-8", "replace") if raw else ""


def _listening_sockets(net_unix: Path) -> dict[int, int]:
    """inode -> display number of every listening X socket (/proc/net/unix: ``Num RefCount
    Protocol Flags Type St Inode Path``; an abstract socket's path starts with @)."""
    found = {}
    for line in _text(net_unix, 4 << 20).splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        match = _SOCKET_PATH.fullmatch(fields[7])
        try:
            listening = int(fields[3], 16) & _SO_ACCEPTCON
            inode = int(fields[6])
        except ValueError:
            continue
        if match and listening:
            found[inode] = int(match.group(1))
    return found


def _socket_numbers(fd_dir: Path, listening: dict[int, int]) -> set[int]:
    """The displays a process listens on (readable for root or the process's own user)."""
    numbers = set()
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return numbers
    for name in names[:4096]:
        try:
            match = _SOCKET_LINK.fullmatch(os.readlink(fd_dir / name))
        except OSError:
            continue
        if match and int(match.group(1)) in listening:
            numbers.add(listening[int(match.group(1))])
    return numbers


def _lock_files(tmp: Path) -> dict[int, tuple[int, int]]:
    """pid -> (display number, the file's owner) from ``/tmp/.X<N>-lock``: the X server
    writes its pid there."""
    locks = {}
    try:
        names = os.listdir(tmp)
    except OSError:
        return locks
    for name in names:
        match = _LOCK_NAME.fullmatch(name)
        if not match:
            continue
        try:
            owner = os.lstat(tmp / name).st_uid
        except OSError:
            continue
        raw = read_owned(tmp / name, owners={owner}, limit=64)
        pid = _small_int(raw.decode("ascii", "replace")) if raw else None
        if pid:
            locks[pid] = (int(match.group(1)), owner)
    return locks


def _process_owner(status: str) -> int | None:
    """Who controls a process: root only when every uid of it is root (a user's ``startx``
    runs a set-uid Xorg: real uid the user, effective uid root), else its first other uid."""
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uids = [u for u in (_small_int(f) for f in line.split()[1:]) if u is not None]
            if not uids:
                return None
            return next((u for u in uids if u != 0), 0)
    return None


def _parent_name(proc: Path, stat_text: str) -> str:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    fields = stat_text[stat_text.rfind(")") + 1:].split()
    ppid = _small_int(fields[1]) if len(fields) > 1 else None
    return _text(proc / str(ppid) / "comm", 64).strip() if ppid else ""


def x_servers(proc: Path = Path("/proc"), tmp: Path = Path("/tmp")) -> list[XServer]:
    """Every X server that can be seen, one per display number, lowest number first."""
    listening = _listening_sockets(proc / "net" / "unix")
    locks = _lock_files(tmp)
    servers: dict[int, tuple[int, XServer]] = {}   # number -> (how sure, server)
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        pids = []
    for name in pids:
        base = proc / name
        comm = _text(base / "comm", 64).strip()
        if comm not in X_SERVER_NAMES and comm != XWAYLAND:
            continue
        raw = _read(base / "cmdline")
        if not raw:
            continue  # gone, or a kernel thread
        pid = int(name)
        claimed, auth = parse_server_command([os.fsdecode(a) for a in raw.rstrip(b"\0").split(b"\0")])
        server_uid = _process_owner(_text(base / "status", 16384))
        # How sure we are of its display: it listens there; its lock file (written by its own
        # user) says so; it says so.
        numbers, sure = _socket_numbers(base / "fd", listening), 2
        if not numbers and pid in locks and locks[pid][1] in (server_uid, 0):
            numbers, sure = {locks[pid][0]}, 1
        if not numbers and claimed is not None:
            numbers, sure = {claimed}, 0
        parent = _parent_name(proc, _text(base / "stat", 4096))
        for number in numbers:
            known = servers.get(number)
            if known is None or sure > known[0]:
                servers[number] = (sure, XServer(number, pid, comm, server_uid, auth, parent))
    for number, owner in _visible_sockets(tmp / ".X11-unix", listening):
        if number not in servers:
            servers[number] = (-1, XServer(number, uid=owner))
    return [server for _, server in sorted(servers.values(), key=lambda item: item[1].number)]


def _visible_sockets(socket_dir: Path, listening: dict[int, int]) -> Iterator[tuple[int, int | None]]:
    try:
        names = os.listdir(socket_dir)
    except OSError:
        names = []
    seen = set()
    for name in names:
        match = _SOCKET_NAME.fullmatch(name)
        if not match:
            continue
        try:
            info = os.lstat(socket_dir / name)
        except OSError:
            continue
        if stat.S_ISSOCK(info.st_mode):
            seen.add(int(match.group(1)))
            yield int(match.group(1)), info.st_uid
    for number in set(listening.values()) - seen:  # abstract sockets only
        yield number, None


# --- what runs: logind sessions -------------------------------------------------------------


def login_sessions(runner: Runner = run_command) -> list[LoginSession]:
    sessions = []
    for session_id, props in logind_sessions(runner, SESSION_PROPERTIES):
        shown = props.get("Display", "")
        sessions.append(LoginSession(
            id=session_id,
            display=display_number(shown) if shown and len(shown) <= 32 else None,
            user=props.get("Name", "")[:64], uid=_small_int(props.get("User", "")),
            active=props.get("Active") == "yes", seat=props.get("Seat", "")[:32],
            type=props.get("Type", "")[:32], kind=props.get("Class", "")[:32],
            state=props.get("State", "")[:32], remote=props.get("Remote") == "yes"))
    return sessions


# --- the choice -----------------------------------------------------------------------------


def candidates(servers: list[XServer], sessions: list[LoginSession],
               allowed: frozenset[int] | None = None) -> list[Candidate]:
    """The displays to try, best first (the module docstring says in which order). Raises
    :class:`NoDisplay` when the session in front of the user is one the agent cannot share."""
    by_number = {s.number: s for s in servers}
    live = [s for s in sessions if s.state != "closing"]

    def usable(number: int | None) -> bool:
        return number is not None and (allowed is None or number in allowed) \
            and not (number in by_number and by_number[number].wayland)

    for session in live:
        if not (session.active and session.seat == "seat0" and not session.remote):
            continue
        if session.type == "x11" and usable(session.display):
            return [Candidate(session.display, f"the active {session.describe()}",
                              by_number.get(session.display), session, only=True)]
        if session.type in ("wayland", "mir"):
            raise NoDisplay(f"the active {session.describe()} is a Wayland session, which the "
                            "agent cannot share yet")

    # A display's own session (not the active one) still tells whose files may hold its cookie.
    session_of = {}
    for session in sorted(live, key=lambda s: not s.active):
        if session.display is not None:
            session_of.setdefault(session.display, session)
    chosen: list[Candidate] = []

    def add(number: int, why: str) -> None:
        if usable(number) and all(c.number != number for c in chosen):
            chosen.append(Candidate(number, why, by_number.get(number), session_of.get(number)))

    for session in sorted(live, key=lambda s: (not s.active, s.display or 0)):
        if session.kind == "greeter" and session.display is not None:
            add(session.display, f"the login screen ({session.describe()})")
    ordered = sorted(servers, key=lambda s: s.number)
    for server in ordered:
        if server.parent in DISPLAY_MANAGERS:
            add(server.number, f"the login screen ({server.parent}'s X server)")
    for server in ordered:
        add(server.number, f"X server :{server.number}" + (f" ({server.name})" if server.name else ""))
    return chosen


# --- getting in -----------------------------------------------------------------------------


def read_owned(path: Path, owners: set[int] | None, limit: int = MAX_FILE) -> bytes | None:
    """A regular file's bytes, when it is not a symlink, belongs to one of ``owners`` (None:
    anyone) and is not bigger than ``limit``; else None. Never blocks on a FIFO."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        if owners is not None and info.st_uid not in owners:
            return None
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) if size <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _unique(entries: Iterable[XauthEntry]) -> list[XauthEntry]:
    seen, out = set(), []
    for entry in entries:
        if entry.data not in seen:
            seen.add(entry.data)
            out.append(entry)
    return out[:COOKIES_PER_FILE]


def server_cookies(entries: list[XauthEntry], number: int) -> list[XauthEntry]:
    """Cookies from an X server's own ``-auth`` file: it accepts every one of them, whatever
    display or host it was written for (a display manager using ``-displayfd`` writes the file
    before it knows the number); those written for this display are tried first."""
    wanted = str(number).encode()
    mit = [e for e in entries if e.name == MIT_COOKIE and e.data]
    return _unique(sorted(mit, key=lambda e: 0 if e.number == wanted else 1 if not e.number else 2))


def user_cookies(entries: list[XauthEntry], number: int, host: bytes) -> list[XauthEntry]:
    """Cookies from a user's Xauthority for this display on this machine: a local or wildcard
    entry for the display (or for any display); this host's name first."""
    wanted = str(number).encode()
    mine = [e for e in entries if e.name == MIT_COOKIE and e.data and e.number in (wanted, b"")
            and e.family in (FAMILY_LOCAL, FAMILY_WILD)]
    return _unique(sorted(mine, key=lambda e: 0 if e.family == FAMILY_LOCAL and e.address == host
                          else 1 if e.family == FAMILY_WILD else 2))


def _home(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_dir or None
    except (KeyError, OverflowError):
        return None


def credentials(candidate: Candidate, run_user: Path = Path("/run/user"),
                home_of: Callable[[int], str | None] = _home,
                ) -> Iterator[tuple[Path | None, XauthEntry | None]]:
    """(file, cookie) pairs to try for a display, in order; (None, None) last: no cookie."""
    server = candidate.server
    if server is not None and server.auth_file:
        # Root's X server may use any file root chose; another user's only a file of theirs.
        owners = None if server.uid == 0 else ({server.uid} if server.uid is not None else set())
        path = Path(server.auth_file)
        raw = read_owned(path, owners)
        for entry in server_cookies(parse_xauthority(raw or b""), candidate.number):
            yield path, entry
    session = candidate.session
    if session is not None and session.uid is not None:
        paths = [run_user / str(session.uid) / "gdm" / "Xauthority"]
        home = home_of(session.uid)
        if home:
            paths.append(Path(home) / ".Xauthority")
        host = socket.gethostname().encode()
        for path in paths:
            raw = read_owned(path, {session.uid})
            for entry in user_cookies(parse_xauthority(raw or b""), candidate.number, host):
                yield path, entry
    yield None, None


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def x_accepts(number: int, cookie: XauthEntry | None, timeout: float = 2.0) -> bool:
    """Whether the X server of display ``number`` lets a client in with ``cookie`` (None: with
    none): the X11 connection setup, up to the first byte of the answer (1 is Success)."""
    name, data = (cookie.name, cookie.data) if cookie is not None else (b"", b"")
    request = struct.pack("<BxHHHHxx", 0x6C, 11, 0, len(name), len(data)) + _pad(name) + _pad(data)
    path = f"/tmp/.X11-unix/X{number}"
    # The abstract socket first, as libxcb does; the file where there is no abstract one.
    for address in ("\0" + path, path):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
                sock.sendall(request)
                return sock.recv(1) == b"\x01"
        except OSError:
            continue
    return False


_FROM_ENVIRONMENT = object()


def discover(*, allowed=_FROM_ENVIRONMENT, runner: Runner = run_command,
             servers: list[XServer] | None = None, sessions: list[LoginSession] | None = None,
             run_user: Path = Path("/run/user"),
             home_of: Callable[[int], str | None] = _home) -> FoundDisplay:
    """The display to share and the cookie that gets in. Raises :class:`NoDisplay`.
    ``allowed`` defaults to ``TESSERA_X_DISPLAYS``; servers and sessions to what runs."""
    if allowed is _FROM_ENVIRONMENT:
        allowed = allowed_displays(os.environ)
    servers = x_servers() if servers is None else servers
    sessions = login_sessions(runner) if sessions is None else sessions
    tried = []
    for candidate in candidates(servers, sessions, allowed):
        for path, cookie in credentials(candidate, run_user, home_of):
            if x_accepts(candidate.number, cookie):
                return FoundDisplay(f":{candidate.number}", path, cookie, candidate.why,
                                    candidate.server.pid if candidate.server else None)
        if candidate.only:
            raise NoDisplay(f"{candidate.why} is on display :{candidate.number}, but no "
                            "Xauthority the agent found lets it in")
        tried.append(f":{candidate.number}")
    if tried:
        raise NoDisplay(f"no X server lets the agent in (tried {', '.join(tried)})")
    among = f" among displays {', '.join(f':{n}' for n in sorted(allowed))}" if allowed is not None else ""
    wayland = [f":{s.number}" for s in servers if s.wayland]
    note = f" (only Xwayland, on {', '.join(wayland)})" if wayland else ""
    raise NoDisplay(f"no X server is running{among}{note}")


def adopt(found: FoundDisplay, private_file: Path,
          environ: MutableMapping[str, str] = os.environ) -> Path:
    """Make the agent's own X connections use ``found``: its cookie goes into
    ``private_file`` (mode 600, replaced atomically; no file at all when the server needs no
    cookie: python-xlib complains about an empty one), and ``XAUTHORITY`` and ``DISPLAY``
    point there. mss (libxcb or libX11) and python-xlib read ``XAUTHORITY`` when they connect,
    and xclip inherits it; so this runs before the desktop is opened, from the thread that
    opens it, while none of the agent's other X clients is connecting."""
    private_file = Path(private_file)
    if found.cookie is None:
        private_file.unlink(missing_ok=True)
    else:
        number = str(display_number(found.display)).encode()
        name, data = found.cookie.name, found.cookie.data
        entries = [XauthEntry(FAMILY_LOCAL, socket.gethostname().encode(), number, name, data),
                   XauthEntry(FAMILY_WILD, b"", number, name, data)]
        temp = private_file.with_name(f".{private_file.name}.{uuid.uuid4().hex}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encode_xauthority(entries))
            os.replace(temp, private_file)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    environ["XAUTHORITY"] = str(private_file)
    environ["DISPLAY"] = found.display
    return private_file
