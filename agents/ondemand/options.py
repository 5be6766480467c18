"""The OnDemand agent's command line, its ``tessera-ondemand://`` link, and the typed key.

    tessera-ondemand [--server URL] [--key KEY] [--account-name NAME] [--logo URL]
                     [--display :N] [tessera-ondemand://connect?server=...&key=...]

The Linux launcher the link page serves passes ``--server``, ``--key``, ``--account-name`` and
``--logo``; a browser that opens the page's "Already installed? Open it" link passes the link
itself (``server`` URL-encoded, ``key`` 9 digits). Without a key the program asks for it in its
window, checked by :func:`check_key` as the person types it. Everything here is plain parsing,
without Tk, so ``__main__`` and ``windows`` share it and the unit tests drive it directly.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import parse_qs, urlsplit

from agents import agent_version
from agents.host.state import ConfigError, normalise_server

SCHEME = "tessera-ondemand"
LINK_FORM = f"{SCHEME}://connect?server=<Portal address>&key=<9 digits>"
KEY_DIGITS = 9
DEFAULT_NAME = "Remote support"
_SEPARATORS = " -\u00a0\t"   # how keys are written and read out: "123 456 789"
_DISPLAY = re.compile(r"[A-Za-z0-9_.\-]*:\d{1,5}(?:\.\d{1,5})?")


class UsageError(ValueError):
    """The command line, the link or the typed key cannot be used; the message says why."""


@dataclass(frozen=True)
class Options:
    server: str
    key: str | None          # None: ask for it in the window
    display: str
    account_name: str = DEFAULT_NAME
    logo: str | None = None
    verbose: bool = False


def check_key(text: str) -> str:
    """The 9 digits of a typed key (spaces and dashes between them are fine), or
    :class:`UsageError` with a sentence to show under the key field."""
    cleaned = "".join(ch for ch in str(text or "") if ch not in _SEPARATORS)
    if not cleaned:
        raise UsageError("Type the 9-digit session key your technician gave you.")
    if not (cleaned.isascii() and cleaned.isdigit()):
        raise UsageError("The session key has only digits, like 123 456 789.")
    if len(cleaned) != KEY_DIGITS:
        raise UsageError(f"The session key has 9 digits; this has {len(cleaned)}.")
    return cleaned


def parse_link(link: str) -> tuple[str, str | None]:
    """(server, key or None) from ``tessera-ondemand://connect?server=...&key=...``; any other
    scheme, host or path is refused with a sentence saying what is expected."""
    parts = urlsplit(link.strip())
    if parts.scheme.lower() != SCHEME:
        raise UsageError(f"This is not a Tessera OnDemand link: {link[:200]!r}. "
                         f"Expected {LINK_FORM}.")
    if parts.netloc.lower() != "connect" or parts.path not in ("", "/"):
        raise UsageError(f"This Tessera OnDemand link is not understood: {link[:200]!r}. "
                         f"Expected {LINK_FORM}.")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query),
                         max_num_fields=10)
    except ValueError:
        raise UsageError(f"The link's query cannot be read: {link[:200]!r}.") from None
    for name, values in query.items():
        if name in ("server", "key") and len(values) > 1:
            raise UsageError(f"The link gives {name} more than once.")
    if not query.get("server", [""])[0]:
        raise UsageError(f"The link names no server. Expected {LINK_FORM}.")
    try:
        server = normalise_server(query["server"][0])
    except ConfigError as exc:
        raise UsageError(f"The link's server cannot be used: {exc}.") from None
    key = query.get("key", [""])[0]
    return server, check_key(key) if key else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tessera-ondemand",
        description="Tessera OnDemand: let a technician see and control this computer once, "
                    "after you allow it.")
    parser.add_argument("link", nargs="?", metavar="LINK",
                        help=f"a link from the session page ({LINK_FORM})")
    parser.add_argument("--server", help="the Portal's address, e.g. https://support.example.com")
    parser.add_argument("--key", help="the 9-digit session key (asked for in the window when missing)")
    parser.add_argument("--account-name", dest="account_name", help="the support company's name to show")
    parser.add_argument("--logo", help="the address of the company's logo (PNG) to show")
    parser.add_argument("--display", help="the X display to share (default $DISPLAY)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debugging detail")
    parser.add_argument("--version", action="version", version=f"tessera-ondemand {agent_version()}")
    return parser


def parse_args(argv: list[str] | None, environ: Mapping[str, str]) -> Options:
    """Options from the command line (argparse exits with status 2 on unknown options), or
    :class:`UsageError`."""
    args = _parser().parse_args(argv)
    server = key = None
    if args.link:
        server, key = parse_link(args.link)
    if args.server:
        try:
            given = normalise_server(args.server)
        except ConfigError as exc:
            raise UsageError(f"--server: {exc}") from None
        if server is not None and given != server:
            raise UsageError("--server and the link name different servers.")
        server = given
    if args.key is not None:
        given_key = check_key(args.key)
        if key is not None and given_key != key:
            raise UsageError("--key and the link give different keys.")
        key = given_key
    if server is None:
        raise UsageError(f"No server: give --server URL or a link ({LINK_FORM}).")
    display = args.display or environ.get("DISPLAY", "")
    if not display:
        raise UsageError("No X display: start it in your desktop session, or give --display :N.")
    if not _DISPLAY.fullmatch(display):
        raise UsageError(f"--display must look like :0 or :1.0, not {display[:40]!r}.")
    logo = args.logo or None
    if logo is not None and urlsplit(logo).scheme not in ("http", "https"):
        raise UsageError("--logo must be an http:// or https:// address.")
    name = " ".join((args.account_name or "").split())[:100] or DEFAULT_NAME
    return Options(server=server, key=key, display=display, account_name=name, logo=logo,
                   verbose=args.verbose)
