"""The company logo of the OnDemand agent's window (agents/ondemand/logo.py), fetched from a
real HTTP server on a loopback port: PNG and GIF are shown, anything else (SVG, JPEG, huge
images, errors) leaves the window with the name only."""
from __future__ import annotations

import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents.ondemand.logo import MAX_BYTES, fetch_logo, image_size, usable_image


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xc8\x3c\x1e" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


GIF = b"GIF89a" + struct.pack("<HH", 3, 2) + b"\x00\x00\x00;"
FILES = {
    "/logo.png": png(40, 20),
    "/logo.gif": GIF,
    "/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "/logo.jpg": b"\xff\xd8\xff\xe0" + bytes(100),
    "/wide.png": png(5000, 1),
    "/big.png": png(1, 1) + bytes(MAX_BYTES),
}


@pytest.fixture(scope="module")
def site():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = FILES.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_png_and_gif_logos_are_fetched(site):
    assert fetch_logo(f"{site}/logo.png") == FILES["/logo.png"]
    assert fetch_logo(f"{site}/logo.gif") == GIF
    assert image_size(FILES["/logo.png"]) == (40, 20) and image_size(GIF) == (3, 2)


@pytest.mark.parametrize("path", ["/logo.svg", "/logo.jpg", "/wide.png", "/big.png", "/missing.png"])
def test_anything_tk_cannot_show_safely_gives_the_name_only(site, path):
    assert fetch_logo(f"{site}{path}") is None


def test_only_web_addresses_are_fetched_and_unreachable_ones_give_nothing():
    assert fetch_logo("file:///etc/hostname") is None
    assert fetch_logo("http://127.0.0.1:9/logo.png", timeout=5) is None
    assert not usable_image(b"\x89PNG\r\n\x1a\n" + bytes(16))   # no IHDR: no size
