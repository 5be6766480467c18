"""Who is at this machine: the OS, the desktop session on the agent's X display, its user and
whether it is locked.

``agent.Agent`` reports these in ``HELLO`` and, when they change, ``STATUS``
(``docs/protocol.md``); ``power.PowerActions`` uses the session to lock it or log it out;
``xsession`` asks logind which display is the one in front of the user.
The session comes from systemd-logind (``loginctl``), the usual source on Linux desktops; an X
server that belongs to no logind session (Xvfb, a kiosk started by hand) counts as the session
of the user who owns its socket, never locked.
"""
from __future__ import annotations

import os
import platform
import pwd
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

Runner = Callable[[list[str]], subprocess.CompletedProcess]


def run_command(args: list[str], timeout: float = 10.0) -> subprocess.CompletedProcess:
    """The default runner: no shell, output captured, a timeout (a hung tool must not hang
    the agent)."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return subprocess.CompletedProcess(args, 127, "", f"{args[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"{args[0]}: timed out after {timeout:g} s")


def os_description(os_release: Path = Path("/etc/os-release")) -> str:
    """``PRETTY_NAME`` from os-release (e.g. "Debian GNU/Linux 12 (bookworm)"), else the
    kernel's name and release."""
    try:
        for line in os_release.read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                value = line.split("=", 1)[1].strip().strip('"').strip("'")
                if value:
                    return value[:200]
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}".strip()[:200]


def hostname() -> str:
    return socket.gethostname()[:255] or "localhost"


def display_number(display: str) -> int | None:
    """``":1"``, ``":1.0"``, ``"unix:1"`` -> 1; None for a remote or odd display name."""
    match = re.fullmatch(r"(?:unix)?:(\d{1,5})(?:\.\d{1,5})?", display.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class DesktopSession:
    session_id: str | None   # the logind session, None when the display has none
    user: str
    locked: bool


def _parse_properties(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


# A session id as logind makes them ("3", "c2"): anything else in loginctl's listing is not
# passed on as an argument (it could start with "-").
_SESSION_ID = re.compile(r"[A-Za-z0-9_.]{1,64}")


def logind_sessions(runner: Runner = run_command,
                    properties: tuple[str, ...] = ("Display", "Name", "LockedHint", "State"),
                    ) -> Iterator[tuple[str, dict[str, str]]]:
    """Each logind session as (its id, the asked ``loginctl show-session`` properties), one
    ``show-session`` at a time; nothing when logind cannot be asked (no systemd)."""
    listing = runner(["loginctl", "list-sessions", "--no-legend", "--no-pager"])
    if listing.returncode != 0:
        return
    asked = [arg for name in properties for arg in ("-p", name)]
    for line in listing.stdout.splitlines():
        fields = line.split()
        if not fields or not _SESSION_ID.fullmatch(fields[0]):
            continue
        shown = runner(["loginctl", "show-session", fields[0], "--no-pager", *asked])
        if shown.returncode == 0:
            yield fields[0], _parse_properties(shown.stdout)


def logind_session(display: str, runner: Runner = run_command) -> DesktopSession | None:
    """The logind session whose X display is ``display``, or None."""
    wanted = display_number(display)
    for session_id, props in logind_sessions(runner):
        if props.get("Display") and display_number(props["Display"]) == wanted \
                and props.get("State") != "closing":
            return DesktopSession(session_id, props.get("Name", ""), props.get("LockedHint") == "yes")
    return None


def socket_owner(display: str, socket_dir: Path = Path("/tmp/.X11-unix")) -> str:
    number = display_number(display)
    if number is None:
        return ""
    try:
        return pwd.getpwuid(os.stat(socket_dir / f"X{number}").st_uid).pw_name
    except (OSError, KeyError):
        return ""


def current_session(display: str, runner: Runner = run_command) -> DesktopSession:
    found = logind_session(display, runner)
    if found is not None:
        return found
    return DesktopSession(None, socket_owner(display), False)
