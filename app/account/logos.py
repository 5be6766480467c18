"""Checking an uploaded account logo before it is stored.

Called by ``app.account.services.set_logo``. The file's real type comes from its first bytes,
never from its name or the browser's Content-Type. PNG and JPEG dimensions are read from their
headers (no image library needed) and the aspect ratio checked loosely; SVG is rewritten by
``py_svg_hush`` so it can never run script (no ``<script>``, event handlers, ``javascript:``
links or ``<foreignObject>``), and refused when it cannot be parsed. The ``account.logo`` route
serves the result with a sandboxing CSP as a second wall.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from app.errors import ValidationError

MAX_BYTES = 300 * 1024  # "0.3 MB"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class LogoKind:
    name: str
    label: str
    ratio: float  # width / height
    recommended: tuple[int, int]
    min_ratio: float
    max_ratio: float


KINDS = {
    "wide": LogoKind("wide", "Wide logo (4:1)", 4.0, (400, 100), 2.5, 6.5),
    "square": LogoKind("square", "Square logo (1:1)", 1.0, (256, 256), 0.8, 1.25),
}
MIN_SIDE = 16
MAX_SIDE = 4096


@dataclass(frozen=True)
class CheckedLogo:
    data: bytes
    content_type: str
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> str | None:
    """``image/png``, ``image/jpeg``, ``image/svg+xml`` or ``None``, from the content alone."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    # An SVG is XML whose first element is <svg>; prologue, comments and a doctype may precede it.
    head = re.sub(rb"^(<\?xml[^>]*\?>\s*|<!--.*?-->\s*|<!doctype svg[^>\[]*(\[.*?\])?\s*>\s*)*", b"", head,
                  flags=re.S)
    if head.startswith(b"<svg") and head[4:5] in (b" ", b">", b"\t", b"\n", b"\r", b"/"):
        return "image/svg+xml"
    return None


def png_size(data: bytes) -> tuple[int, int]:
    # The IHDR chunk must come first: length(4) "IHDR"(4) width(4) height(4).
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValidationError("The PNG file is damaged (no image header).", field="file")
    return struct.unpack(">II", data[16:24])


# Start-of-frame markers carry the size; C4 (Huffman), C8 (reserved) and CC (arithmetic) do not.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF:
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            break
        i += 2 + length
    raise ValidationError("The JPG file is damaged (no frame header).", field="file")


def _check_dimensions(kind: LogoKind, width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise ValidationError(
            f"The image is {width}x{height} pixels; each side must be between {MIN_SIDE} and "
            f"{MAX_SIDE} pixels (about {kind.recommended[0]}x{kind.recommended[1]} is best).",
            field="file")
    ratio = width / height
    if not kind.min_ratio <= ratio <= kind.max_ratio:
        raise ValidationError(
            f"The image is {width}x{height} pixels, which does not fit a {kind.label.lower()}: "
            f"use an image of about {kind.recommended[0]}x{kind.recommended[1]} pixels.",
            field="file")


def sanitise_svg(data: bytes) -> bytes:
    from py_svg_hush import filter_svg

    # Entity declarations are how XML bombs start; a logo never needs them.
    if b"<!entity" in data.lower():
        raise ValidationError("The SVG file declares XML entities, which logos may not use.", field="file")
    try:
        cleaned = filter_svg(data)
    except ValueError:
        raise ValidationError("The SVG file could not be read as SVG (is it valid XML with the "
                              "SVG namespace?).", field="file") from None
    if sniff(cleaned) != "image/svg+xml":
        raise ValidationError("The file is not an SVG image.", field="file")
    return cleaned


def check_logo(kind_name: str, data: bytes) -> CheckedLogo:
    """Validate (and for SVG, clean) ``data`` as the ``kind_name`` logo, or raise ValidationError."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise ValidationError("Unknown logo: choose the wide or the square logo.", field="kind")
    if not data:
        raise ValidationError("Choose an image file to upload.", field="file")
    if len(data) > MAX_BYTES:
        raise ValidationError(
            f"The file is {len(data) / (1024 * 1024):.2f} MB; logos may be at most 0.3 MB.", field="file")
    content_type = sniff(data)
    if content_type == "image/png":
        width, height = png_size(data)
        _check_dimensions(kind, width, height)
        return CheckedLogo(data, content_type, width, height)
    if content_type == "image/jpeg":
        width, height = jpeg_size(data)
        _check_dimensions(kind, width, height)
        return CheckedLogo(data, content_type, width, height)
    if content_type == "image/svg+xml":
        return CheckedLogo(sanitise_svg(data), content_type)
    raise ValidationError("The file is not a JPG, PNG or SVG image (its content was checked, "
                          "not its name).", field="file")
