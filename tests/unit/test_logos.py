"""Logo checks: the type comes from the bytes, sizes from the headers, SVG is defused."""
from __future__ import annotations

import struct
import zlib

import pytest

from app.account.logos import MAX_BYTES, check_logo, jpeg_size, png_size, sanitise_svg, sniff
from app.errors import ValidationError


def make_png(width: int, height: int, padding: int = 0) -> bytes:
    """A real, decodable grey PNG (optionally padded with a text chunk to reach a size)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if padding:
        png += chunk(b"tEXt", b"Comment\x00" + b"x" * padding)
    return png + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def make_jpeg(width: int, height: int) -> bytes:
    """A JPEG header sequence: SOI, APP0 (JFIF), a quantisation table, SOF0 with the size, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(64))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + dqt + sof + b"\xff\xd9"


SVG_ATTACK = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 400 100" onload="alert('onload')">
  <script>alert('script')</script>
  <a href="javascript:alert('href')"><rect width="400" height="100" fill="#2f6fde"/></a>
  <a xlink:href="javascript:alert('xlink')"><text x="10" y="60">Acme</text></a>
  <foreignObject width="100" height="100"><div xmlns="http://www.w3.org/1999/xhtml">html</div></foreignObject>
  <circle cx="50" cy="50" r="10" onclick="alert('click')"/>
</svg>"""


def test_sniff_reads_the_content_not_the_name():
    assert sniff(make_png(400, 100)) == "image/png"
    assert sniff(make_jpeg(400, 100)) == "image/jpeg"
    assert sniff(SVG_ATTACK) == "image/svg+xml"
    assert sniff(b"<!-- made by hand -->\n<svg xmlns='http://www.w3.org/2000/svg'/>") == "image/svg+xml"
    assert sniff(b"<html><body>not an image</body></html>") is None
    assert sniff(b"GIF89a....") is None
    assert sniff(b"<svgfoo>") is None


def test_png_and_jpeg_sizes_come_from_their_headers():
    assert png_size(make_png(400, 100)) == (400, 100)
    assert jpeg_size(make_jpeg(256, 240)) == (256, 240)


def test_damaged_headers_are_refused():
    with pytest.raises(ValidationError, match="PNG file is damaged"):
        png_size(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    with pytest.raises(ValidationError, match="JPG file is damaged"):
        jpeg_size(b"\xff\xd8\xff\xd9")


def test_a_wide_png_is_accepted_as_is():
    data = make_png(400, 100)
    logo = check_logo("wide", data)
    assert (logo.content_type, logo.data, logo.width, logo.height) == ("image/png", data, 400, 100)


def test_a_square_jpeg_is_accepted():
    logo = check_logo("square", make_jpeg(256, 256))
    assert logo.content_type == "image/jpeg"


@pytest.mark.parametrize("kind, width, height", [("wide", 256, 256), ("square", 400, 100), ("wide", 8, 2)])
def test_wrong_shape_or_tiny_images_are_refused(kind, width, height):
    with pytest.raises(ValidationError, match=f"{width}x{height} pixels"):
        check_logo(kind, make_png(width, height))


def test_files_over_the_size_limit_are_refused():
    big = make_png(400, 100, padding=int(0.4 * 1024 * 1024))
    assert len(big) > MAX_BYTES
    with pytest.raises(ValidationError, match="at most 0.3 MB"):
        check_logo("wide", big)


def test_html_named_like_a_png_is_refused():
    with pytest.raises(ValidationError, match="not a JPG, PNG or SVG"):
        check_logo("wide", b"<!doctype html><script>alert(1)</script>")


def test_svg_comes_back_without_script_handlers_javascript_links_or_foreign_objects():
    logo = check_logo("wide", SVG_ATTACK)
    cleaned = logo.data.decode()
    assert logo.content_type == "image/svg+xml"
    for bad in ("<script", "alert(", "onload", "onclick", "javascript:", "foreignObject", "<div"):
        assert bad not in cleaned, bad
    # What is harmless survives: the drawing is still a logo.
    assert "<rect" in cleaned and "Acme" in cleaned and 'viewBox="0 0 400 100"' in cleaned


def test_svg_that_cannot_be_parsed_is_refused():
    with pytest.raises(ValidationError, match="could not be read as SVG"):
        sanitise_svg(b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>")


def test_svg_with_entity_declarations_is_refused():
    bomb = (b'<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>')
    with pytest.raises(ValidationError, match="entities"):
        check_logo("square", bomb)


def test_empty_file_and_unknown_kind_are_refused():
    with pytest.raises(ValidationError, match="Choose an image file"):
        check_logo("wide", b"")
    with pytest.raises(ValidationError, match="Unknown logo"):
        check_logo("banner", make_png(400, 100))
