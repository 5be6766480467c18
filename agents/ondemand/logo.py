"""The support company's logo for the OnDemand agent's window (``--logo URL``).

The Portal serves an account's logo publicly (``/account/<id>/logo/square``) as PNG, JPEG or
SVG; Tk shows PNG and GIF by itself (``PhotoImage``), so only those are used and anything else
leaves the window with the company's name only. The bytes are checked before Tk sees them: a
size limit, the format's signature and, for PNG, the dimensions in its header, so a huge or
odd file never reaches the decoder. ``windows.App`` calls :func:`fetch_logo` on a thread of
its own: a slow server never holds up the key or the connection.
"""
from __future__ import annotations

import logging
import struct
import urllib.request
from urllib.parse import urlsplit

from agents import agent_version

log = logging.getLogger("tessera.ondemand")

MAX_BYTES = 2 * 1024 * 1024
MAX_SIDE = 4096
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURES = (b"GIF87a", b"GIF89a")


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or GIF from its header; None for anything else."""
    if data.startswith(PNG_SIGNATURE) and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if data[:6] in GIF_SIGNATURES and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def usable_image(data: bytes) -> bool:
    size = image_size(data)
    return size is not None and 0 < size[0] <= MAX_SIDE and 0 < size[1] <= MAX_SIDE


def fetch_logo(url: str, timeout: float = 10.0) -> bytes | None:
    """The logo's bytes when ``url`` gives a PNG or GIF Tk can show, else None (logged)."""
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    request = urllib.request.Request(url, headers={
        "Accept": "image/png, image/gif", "User-Agent": f"tessera-ondemand/{agent_version()}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:
        log.info("the logo at %s cannot be fetched (%s): showing the name only", url, exc)
        return None
    if len(data) > MAX_BYTES or not usable_image(data):
        log.info("the logo at %s is not a PNG or GIF this window can show: showing the name only", url)
        return None
    return data
