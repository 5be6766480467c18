"""What the public link page of an OnDemand session hands out (spec D1): the platforms and which
one the visitor's browser runs on, the QR code of the link, the ``tessera-ondemand://`` address
that opens an agent already installed, and the Linux launcher script.

Called by ``app.ondemand.views``; free of Flask's request (the view passes the User-Agent, the
Portal's address and the agent wheel's values).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from app.models.ondemand import OnDemandSession

URL_SCHEME = "tessera-ondemand"


@dataclass(frozen=True)
class Platform:
    slug: str
    label: str
    available: bool


PLATFORMS = (
    Platform("linux", "Linux", True),
    Platform("windows", "Windows", False),
    Platform("macos", "macOS", False),
)
BY_SLUG = {p.slug: p for p in PLATFORMS}

# Order matters: Android says "Linux", iPads and iPhones say "Mac OS X", ChromeOS says "X11".
_MOBILE = re.compile(r"Android|iPhone|iPad|iPod|Mobile", re.I)
_RULES = (
    (re.compile(r"Windows", re.I), "windows"),
    (re.compile(r"Macintosh|Mac OS X", re.I), "macos"),
    (re.compile(r"Linux|X11|CrOS|FreeBSD|OpenBSD", re.I), "linux"),
)


def detect_platform(user_agent: str) -> str | None:
    """``linux``, ``windows`` or ``macos`` from a User-Agent header, or None for a phone, a
    tablet or anything unknown (the page then offers every platform alike)."""
    text = user_agent or ""
    if _MOBILE.search(text):
        return None
    for pattern, slug in _RULES:
        if pattern.search(text):
            return slug
    return None


def open_url(portal_url: str, key: str) -> str:
    """``tessera-ondemand://connect?server=<Portal URL>&key=<9 digits>``: the address the
    installed agent registers (docs/ondemand.md)."""
    return f"{URL_SCHEME}://connect?" + urlencode({"server": portal_url.rstrip("/"), "key": key},
                                                    quote_via=quote)


def qr_data_uri(text: str) -> str:
    """A QR code of ``text`` as an SVG ``data:`` URI (the page's CSP allows ``img-src data:``)."""
    import segno

    return segno.make(text, error="m", micro=False).svg_data_uri(scale=4, border=2, dark="#111",
                                                                  light="#fff")


def launcher_filename(row: OnDemandSession) -> str:
    return f"tessera-ondemand-{row.key}.sh"


def _comment(text: str) -> str:
    """Text safe inside a shell comment: one line, printable."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]


def linux_launcher(row: OnDemandSession, *, portal_url: str, account_name: str, logo_url: str = "",
                   wheel_url: str = "", wheel_file: str = "", wheel_sha256: str = "",
                   agent_pip_spec: str = "") -> str:
    """The bash launcher for Linux (``templates/ondemand/launcher-linux.sh``): installs the
    agent this Portal serves into a per-user virtual environment, registers the
    ``tessera-ondemand://`` handler and starts ``tessera-ondemand`` with the session's key.
    Every value is shell-quoted; the agent comes as for the Host agent's installer (the
    Portal's wheel and its SHA-256, or ``agent_pip_spec``)."""
    from flask import render_template

    if not agent_pip_spec and not (wheel_url and wheel_file and wheel_sha256):
        raise ValueError("the launcher needs the agent wheel's address and checksum, or a pip spec")
    q = shlex.quote
    return render_template(
        "ondemand/launcher-linux.sh",
        account_comment=_comment(account_name),
        key_comment=row.grouped_key,
        expires_comment=row.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        filename=launcher_filename(row),
        portal_url=q(portal_url.rstrip("/")),
        session_key=q(row.key),
        account_name=q(account_name),
        logo_url=q(logo_url),
        agent_pip_spec=q(agent_pip_spec),
        agent_wheel_url=q(wheel_url),
        agent_wheel_file=q(wheel_file),
        agent_wheel_sha256=q(wheel_sha256),
    )
