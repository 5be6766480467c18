"""Benchmark: the bytes a viewer receives from Tessera next to x11vnc's, watching the same X
screen at the same time through the same kind of byte-counting TCP proxy. Prints one JSON
document (progress goes to stderr).

Run: ``.venv/bin/python bench/wire.py [--quick] [--input vnc|xdotool]`` (Xvfb, xterm, xdotool,
less and x11vnc from ``scripts/install-system-deps``). ``wire(args)`` returns the section for a
caller that gathers every benchmark; ``--quick`` shortens every phase
(tests/integration/test_bench_wire.py).

The world, every part real and started here (and stopped, whatever happens):

* Xvfb 1280x800x24 on a free display, a solid root colour, no window manager; a 90x40 xterm
  (core ``fixed`` font, as xterm starts) running bash, and a 60x14 xterm showing text beside it.
* Tessera: ``tessera run`` on a scratch database (``tests/relay_harness.py``), a real
  ``tessera-agent`` enrolled with a package key and capturing the display
  (``tests/x11_harness.py``), and a signed-in technician's viewer on the relay's websocket with
  its default zstd compression. The viewer decodes every message with
  ``agents.common.protocol``, paints each FRAME_UPDATE into its framebuffer and ACKs it once
  painted, so flow control (2 updates in flight) works as for a browser.
* x11vnc (Debian's, ``-localhost -nopw -forever -shared``, otherwise its defaults) on the same
  display, and a minimal RFB 3.8 client (:class:`RfbViewer`) that negotiates what noVNC does:
  32 bpp true colour, the encodings noVNC lists (CopyRect, Tight, TightPNG, ZRLE, Hextile, RRE,
  Raw; compression level 2, DesktopSize, LastRect, ExtendedDesktopSize, DesktopName, the cursor
  pseudo-encodings, Fence, ContinuousUpdates, xvp, ExtendedClipboard, QEMU key events) except
  the two that allow loss: no JPEG quality level and no JPEG encoding (21), so Tight stays
  lossless. Like noVNC it asks for the next incremental update as soon as it has read one.
  It parses every message to find its end (Tight fill / copy / palette / gradient, compact
  lengths, data under 12 bytes sent as is, ...) without inflating the zlib data.

Each viewer connects through its own :class:`CountingProxy`; the bytes are what the proxy
forwarded to the viewer (TCP payload: websocket framing and message headers included on one
side, RFB headers on the other). Frames are FRAME_UPDATEs for Tessera and FramebufferUpdates
with at least one real (not pseudo-encoding) rectangle for x11vnc. Counting starts once both
have their first full frame (reported as ``initial``); between phases the bench waits until
neither proxy has forwarded anything for a while. The phases:

* ``typing``: about 200 characters typed into the big xterm at a human pace (65 ms a key),
  three comment lines at the bash prompt;
* ``scroll_pages``: ``less`` on a text file, Space every 0.6 s: six pages of 39 new lines;
* ``scroll_lines``: ``less`` again, ``j`` every 50 ms: 80 lines, one at a time;
* ``output_lines``: a script prints a line every 50 ms at the bottom of the terminal, 80 lines,
  while nobody types;
* ``window_move``: the small xterm is moved 20 px at a time (xdotool windowmove, every 40 ms)
  across the big one, 32 steps.

The keys are sent by the VNC viewer (RFB KeyEvents, ``--input vnc``, the default) as a
technician at noVNC types them: x11vnc watches the X protocol for scrolling (``-scrollcopyrect``,
XRECORD) only after input from its own viewers, and then sends CopyRects. That is its best case;
Tessera finds copies in the pixels and does not care where the keys come from. ``--input
xdotool`` types on the X server instead (a user at the machine). There is no window manager, so
x11vnc's wireframe moves (triggered by its viewers dragging a title bar) do not apply: the
window is moved by xdotool in both modes. The command lines that set a phase up (``less
pages.txt`` ...) are typed before it starts and counted in no phase.

At the end, on a still screen, Tessera's framebuffer must equal the X screen exactly
(``lossless``); on x11vnc's side no Tight JPEG rectangle may have been sent.
Target: over the phases, Tessera's bytes <= 0.5x x11vnc's with no fewer frames, lossless
(``total.met``; each phase says ``met`` for itself too). Frames are counted twice: ``frames``,
every update with a rectangle, and ``shown_frames``, the frames a 60 Hz display can show
(an update arriving less than 1/60 s after the last one shown lands in the same display
refresh, as in a browser painting on animation frames). The target uses the latter, because
x11vnc sends a scrolled line as two updates a moment apart (the CopyRect, then the line) where
Tessera sends one.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import common  # noqa: F401  (the repository on sys.path, a throw-away secret key)

from agents.common import protocol as p  # noqa: E402
from agents.host.frames import rect_size  # noqa: E402
from tests.relay_harness import RelayServer, free_port, wait_for  # noqa: E402
from tests.x11_harness import (  # noqa: E402
    XServer, relay_with_online_agent, screen_now, start_xvfb, stop_process,
)

SCREEN = "1280x800x24"
TARGET_RATIO = 0.5
QUIET = 1.2          # seconds without a byte on either proxy: the screen is still
SETTLE_LIMIT = 45.0  # ... and how long to wait for that at most
ROWS = 40            # the big xterm's rows: one page


def log(message: str) -> None:
    print(f"wire: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the proxy

class CountingProxy:
    """A TCP proxy on 127.0.0.1 to ``127.0.0.1:target`` that counts the bytes it forwards:
    ``down`` to the viewer, ``up`` from it; ``last`` is when it last forwarded anything."""

    def __init__(self, target: int):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = self.up = 0
        self.last = time.monotonic()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sockets.append(s)
            for src, dst, down in ((client, upstream, False), (upstream, client, True)):
                pump = threading.Thread(target=self._pump, args=(src, dst, down), daemon=True)
                self._threads.append(pump)
                pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        while True:
            try:
                data = src.recv(262144)
            except OSError:
                data = b""
            if not data:
                break
            if down:
                self.down += len(data)
            else:
                self.up += len(data)
            self.last = time.monotonic()
            try:
                dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for thread in self._threads:
            thread.join(5)


# ---------------------------------------------------------------------------- Tessera's viewer

class _Metered:
    """A websocket that keeps the last message it received (for its size and flags)."""

    def __init__(self, ws):
        self.ws = ws
        self.last = b""

    def recv(self, timeout=None):
        self.last = self.ws.recv(timeout=timeout)
        return self.last

    def send(self, data) -> None:
        self.ws.send(data)

    def close(self) -> None:
        self.ws.close()


ENCODING_NAMES = {p.RawRect: "raw", p.FillRect: "fill", p.PaletteRect: "palette", p.CopyRect: "copy"}


class Display60:
    """A 60 Hz display: an update shows as a new frame only when at least 1/60 s has passed
    since the last frame shown; one arriving sooner lands in the same refresh."""

    REFRESH = 1 / 60

    def __init__(self):
        self.last = -1.0

    def shows(self, now: float) -> bool:
        if now - self.last >= self.REFRESH:
            self.last = now
            return True
        return False


class TesseraWatcher(threading.Thread):
    """Reads a relay viewer (``tests/relay_harness.Viewer``: paints and ACKs every update) and
    counts what arrives by kind: websocket headers, update headers, zstd bodies and what they
    held uncompressed, rectangles by encoding, cursor and other messages."""

    def __init__(self, viewer):
        super().__init__(daemon=True)
        self.viewer = viewer
        self.stats: Counter = Counter()
        self.display = Display60()
        self.lock = threading.Lock()
        self.stopping = False
        self.error: BaseException | None = None

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        metered = self.viewer.ws
        while not self.stopping:
            try:
                msg = self.viewer.recv(0.25)
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                if not self.stopping:
                    self.error = closed
                return
            except BaseException as error:  # reported by the main thread
                self.error = error
                return
            self._count(msg, metered.last)
            self.viewer.updates.clear()  # painted already; keep no history

    def _count(self, msg, data: bytes) -> None:
        size = len(data)
        with self.lock:
            s = self.stats
            s["ws_headers"] += 2 if size < 126 else 4 if size < 65536 else 10
            if isinstance(msg, p.FrameUpdate):
                head = 11 if data[1] & p.ZSTD else 7  # type, flags, screen, seq (, raw_len)
                s["frames"] += 1
                s["shown_frames"] += self.display.shows(time.monotonic())
                s["keyframes"] += msg.keyframe
                s["update_headers"] += head
                s["update_bodies"] += size - head
                s["uncompressed"] += len(msg.payload)
                for rect in msg.rects:
                    name = ENCODING_NAMES[type(rect)]
                    s[f"rects.{name}"] += 1
                    s[f"rect_bytes.{name}"] += rect_size(rect)
            elif isinstance(msg, p.Cursor):
                s["cursor_messages"] += size
            else:
                s["other_messages"] += size

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.stats)

    def stop(self) -> None:
        self.stopping = True
        self.join(5)


# ---------------------------------------------------------------------------- x11vnc's viewer

# RFB encodings (RFC 6143 and the community registry), as noVNC names them.
RAW, COPYRECT, RRE, HEXTILE, TIGHT, ZRLE, JPEG = 0, 1, 2, 5, 7, 16, 21
TIGHT_PNG = -260
COMPRESS_LEVEL_0, QUALITY_LEVEL_0 = -256, -32
DESKTOP_SIZE, LAST_RECT, CURSOR = -223, -224, -239
QEMU_EXTENDED_KEY, DESKTOP_NAME, EXTENDED_DESKTOP_SIZE = -258, -307, -308
XVP, FENCE, CONTINUOUS_UPDATES = -309, -312, -313
EXTENDED_CLIPBOARD = 0xC0A1E5CE - (1 << 32)
VMWARE_CURSOR = 0x574D5664
REAL = {RAW: "raw", COPYRECT: "copyrect", RRE: "rre", HEXTILE: "hextile", TIGHT: "tight",
        ZRLE: "zrle", TIGHT_PNG: "tightpng"}
PSEUDO = {DESKTOP_SIZE: "desktop_size", LAST_RECT: "last_rect", CURSOR: "cursor",
          QEMU_EXTENDED_KEY: "qemu_extended_key", DESKTOP_NAME: "desktop_name",
          EXTENDED_DESKTOP_SIZE: "extended_desktop_size", VMWARE_CURSOR: "vmware_cursor"}

# noVNC's list in its order (core/rfb.js _sendEncodings, depth 24, compression level 2),
# without QUALITY_LEVEL_0 + 6 and JPEG: those are the lossy ones.
NOVNC_ENCODINGS = (COPYRECT, TIGHT, TIGHT_PNG, ZRLE, HEXTILE, RRE, RAW,
                   COMPRESS_LEVEL_0 + 2, DESKTOP_SIZE, LAST_RECT, QEMU_EXTENDED_KEY,
                   EXTENDED_DESKTOP_SIZE, XVP, FENCE, CONTINUOUS_UPDATES, DESKTOP_NAME,
                   EXTENDED_CLIPBOARD, VMWARE_CURSOR, CURSOR)
TIGHT_MIN_TO_COMPRESS = 12


class RfbError(Exception):
    pass


class _Wire:
    """Exact reads from a socket, counting what was consumed."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.consumed = 0

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise ConnectionError("the VNC server closed the connection")
            self.buf += chunk

    def read(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.consumed += n
        return out

    def skip(self, n: int) -> None:
        self.consumed += n
        have = min(n, len(self.buf))
        del self.buf[:have]
        n -= have
        while n > 0:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("the VNC server closed the connection")
            n -= len(chunk)

    def u8(self) -> int:
        return self.read(1)[0]

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(">" + fmt, self.read(struct.calcsize(">" + fmt)))


class RfbViewer(threading.Thread):
    """A minimal RFB 3.8 viewer (no authentication) that asks for what noVNC asks for and
    finds the end of every message it gets, counting FramebufferUpdates, rectangles by
    encoding (Tight by its compression and filter) and the bytes of each."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wire = _Wire(self.sock)
        self.stats: Counter = Counter()
        self.display = Display60()
        self.lock = threading.Lock()
        self.sending = threading.Lock()  # the reader asks for updates while keys are typed
        self.continuous = False
        self.stopping = False
        self.error: BaseException | None = None
        self.width = self.height = 0
        self.name = ""

    # ------------------------------------------------------------------ the start
    def handshake(self) -> None:
        w = self.wire
        version = w.read(12)
        if not version.startswith(b"RFB 003."):
            raise RfbError(f"not an RFB server: {version!r}")
        self.sock.sendall(b"RFB 003.008\n")
        count = w.u8()
        if count == 0:
            (length,) = w.unpack("I")
            raise RfbError(f"refused: {w.read(length).decode(errors='replace')}")
        if 1 not in w.read(count):
            raise RfbError("the server wants authentication (start x11vnc with -nopw)")
        self.sock.sendall(b"\x01")
        (result,) = w.unpack("I")
        if result != 0:
            raise RfbError("security handshake failed")
        self.sock.sendall(b"\x01")  # ClientInit: shared
        self.width, self.height = w.unpack("HH")
        w.read(16)  # the server's pixel format: we set ours
        (length,) = w.unpack("I")
        self.name = w.read(length).decode(errors="replace")
        # SetPixelFormat as noVNC: 32 bpp, depth 24, little endian, true colour, RGB shifts 0/8/16.
        self.sock.sendall(struct.pack(">B3xBBBBHHHBBB3x", 0, 32, 24, 0, 1, 255, 255, 255, 0, 8, 16))
        self.sock.sendall(struct.pack(">BxH", 2, len(NOVNC_ENCODINGS))
                          + b"".join(struct.pack(">i", e) for e in NOVNC_ENCODINGS))
        self._request(incremental=False)
        self.sock.settimeout(None)

    def _send(self, data: bytes) -> None:
        with self.sending:
            self.sock.sendall(data)

    def _request(self, incremental: bool) -> None:
        self._send(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.width, self.height))

    def key(self, keysym: int, down: bool) -> None:
        self._send(struct.pack(">BBxxI", 4, int(down), keysym))

    # ------------------------------------------------------------------ the stream
    def run(self) -> None:
        try:
            while True:
                self._message()
        except (OSError, ConnectionError) as error:
            if not self.stopping:
                self.error = error
        except BaseException as error:  # reported by the main thread
            self.error = error

    def stop(self) -> None:
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.ident is not None:
            self.join(5)
        self.sock.close()

    def _count(self, **amounts) -> None:
        with self.lock:
            for key, value in amounts.items():
                self.stats[key.replace("__", ".")] += value

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.stats)

    def _message(self) -> None:
        w = self.wire
        kind = w.u8()
        start = w.consumed - 1
        if kind == 0:
            self._update()
            return
        if kind == 1:  # SetColourMapEntries
            w.read(1)
            _, n = w.unpack("HH")
            w.skip(n * 6)
        elif kind == 2:  # Bell
            pass
        elif kind == 3:  # ServerCutText (a negative length: extended clipboard)
            w.read(3)
            (length,) = w.unpack("i")
            w.skip(abs(length))
        elif kind == 150:  # EndOfContinuousUpdates: noVNC switches them on the first time
            if not self.continuous:
                self.continuous = True
                self._send(struct.pack(">BBHHHH", 150, 1, 0, 0, self.width, self.height))
        elif kind == 248:  # ServerFence: answered as noVNC does
            w.read(3)
            (flags,) = w.unpack("I")
            payload = w.read(w.u8())
            if flags & (1 << 31):
                flags &= 0b111
                self._send(struct.pack(">B3xIB", 248, flags, len(payload)) + payload)
        elif kind == 250:  # xvp
            w.read(3)
        else:
            raise RfbError(f"unknown server message type {kind}")
        self._count(other_messages=w.consumed - start)

    def _update(self) -> None:
        w = self.wire
        start = w.consumed - 1
        w.read(1)
        (count,) = w.unpack("H")
        real = done = 0
        while count == 0xFFFF or done < count:
            x, y, width, height, encoding = w.unpack("HHHHi")
            done += 1
            if encoding == LAST_RECT:
                break
            before = w.consumed
            name = self._rect(x, y, width, height, encoding)
            if encoding in REAL:
                real += 1
                self._count(**{f"rects__{name}": 1, f"rect_bytes__{name}": w.consumed - before})
            else:
                self._count(**{f"pseudo__{name}": w.consumed - before + 12})
        size = w.consumed - start
        self._count(updates=1, update_bytes=size, frames=int(real > 0), real_rects=real,
                    shown_frames=int(real > 0 and self.display.shows(time.monotonic())))
        if not self.continuous:
            self._request(incremental=True)

    def _rect(self, x: int, y: int, w_: int, h: int, encoding: int) -> str:
        w = self.wire
        if encoding == RAW:
            w.skip(w_ * h * 4)
        elif encoding == COPYRECT:
            w.read(4)
        elif encoding == RRE:
            (n,) = w.unpack("I")
            w.skip(4 + n * 12)
        elif encoding == HEXTILE:
            self._hextile(w_, h)
        elif encoding in (TIGHT, TIGHT_PNG):
            return self._tight(w_, h, "tight" if encoding == TIGHT else "tightpng")
        elif encoding == ZRLE:
            (n,) = w.unpack("I")
            w.skip(n)
        elif encoding == CURSOR:
            w.skip(w_ * h * 4 + (w_ + 7) // 8 * h)
        elif encoding == VMWARE_CURSOR:
            kind = w.u8()
            w.read(1)
            w.skip(w_ * h * 4 * (2 if kind == 0 else 1))
        elif encoding == DESKTOP_SIZE:
            self.width, self.height = w_, h
        elif encoding == EXTENDED_DESKTOP_SIZE:
            screens = w.u8()
            w.skip(3 + 16 * screens)
            if y == 0:
                self.width, self.height = w_, h
        elif encoding == DESKTOP_NAME:
            (n,) = w.unpack("I")
            w.skip(n)
        elif encoding == QEMU_EXTENDED_KEY:
            pass
        else:
            raise RfbError(f"a rectangle in encoding {encoding}, which was not asked for")
        return REAL.get(encoding) or PSEUDO[encoding]

    def _hextile(self, width: int, height: int) -> None:
        w = self.wire
        for ty in range(0, height, 16):
            for tx in range(0, width, 16):
                tw, th = min(16, width - tx), min(16, height - ty)
                sub = w.u8()
                if sub & 1:
                    w.skip(tw * th * 4)
                    continue
                w.skip(4 * bool(sub & 2) + 4 * bool(sub & 4))
                if sub & 8:
                    w.skip(w.u8() * (6 if sub & 16 else 2))

    def _compact_length(self) -> int:
        b = self.wire.u8()
        length = b & 0x7F
        if b & 0x80:
            b = self.wire.u8()
            length |= (b & 0x7F) << 7
            if b & 0x80:
                length |= self.wire.u8() << 14
        return length

    def _tight(self, width: int, height: int, family: str) -> str:
        """One Tight rectangle; its kind: fill, jpeg, png, or basic copy/palette/gradient.
        Pixels are 3 bytes (TPIXEL: 32 bpp, depth 24)."""
        w = self.wire
        ctl = w.u8() >> 4
        if ctl == 0x8:
            w.read(3)
            return f"{family}_fill"
        if ctl in (0x9, 0xA):
            w.skip(self._compact_length())
            return f"{family}_{'jpeg' if ctl == 0x9 else 'png'}"
        if ctl & 0x8:
            raise RfbError(f"bad Tight compression control {ctl:#x}")
        filter_id = w.u8() if ctl & 0x4 else 0
        if filter_id == 0:
            kind, size = "copy", width * height * 3
        elif filter_id == 1:
            colours = w.u8() + 1
            w.skip(colours * 3)
            kind = "mono" if colours <= 2 else "palette"
            size = (width + 7) // 8 * height if colours <= 2 else width * height
        elif filter_id == 2:
            kind, size = "gradient", width * height * 3
        else:
            raise RfbError(f"bad Tight filter {filter_id}")
        w.skip(size if size < TIGHT_MIN_TO_COMPRESS else self._compact_length())
        return f"{family}_{kind}"


def start_x11vnc(display: str, port: int, log_path: Path) -> subprocess.Popen:
    """Debian's x11vnc on ``display``, listening on 127.0.0.1:``port``; returns once it
    listens (it prints ``PORT=<n>`` then)."""
    log_file = open(log_path, "w")
    process = subprocess.Popen(["x11vnc", "-display", display, "-rfbport", str(port), "-localhost",
                                "-nopw", "-forever", "-shared"],
                               stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log_file.close()
    try:
        wait_for(lambda: process.poll() is not None or f"PORT={port}" in log_path.read_text(errors="replace"),
                 30, message="x11vnc to listen")
        if process.poll() is not None:
            raise RuntimeError(f"x11vnc exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
    except BaseException:
        stop_process(process)
        raise
    return process


# ---------------------------------------------------------------------------- the desktop

WORDS = ("the", "screen", "relay", "agent", "viewer", "frame", "update", "tile", "window",
         "text", "scroll", "page", "line", "byte", "server", "client", "session", "key",
         "pointer", "colour", "palette", "zstd", "stream", "network", "remote", "support",
         "technician", "ticket", "printer", "driver", "install", "restart", "service", "log",
         "error", "warning", "disk", "memory", "user", "password", "reset", "folder", "file",
         "backup", "mail", "calendar", "meeting", "report", "invoice", "order", "shipping")


def text_lines(count: int, seed: int = 11) -> list[str]:
    """Lines of word salad 30-88 characters long, with numbers and punctuation, like a log or
    a document in a terminal."""
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        words, length = [f"{n + 1:4d}"], rng.randint(30, 88)
        while sum(len(w) + 1 for w in words) < length:
            word = rng.choice(WORDS)
            roll = rng.random()
            word = word.capitalize() if roll < 0.1 else f"{word}," if roll < 0.2 else \
                f"{rng.randint(0, 9999)}" if roll < 0.3 else word
            words.append(word)
        lines.append(" ".join(words)[:88])
    return lines


TYPED = ("# a technician answers a ticket in a shell at a steady pace, about fifteen keys\n"
         "# a second: short words, numbers like 42 and 3.14, dots, commas (and brackets),\n"
         "# then a pause while the user reads it.\n")
QUICK_TYPED = "# a quick check, typed.\n"
RETURN = 0xFF0D


def keysym(ch: str) -> int:
    return RETURN if ch == "\n" else ord(ch) if " " <= ch <= "~" else 0x01000000 + ord(ch)


class XdotoolKeys:
    """Keys typed on the X server itself (XTEST, as a local user would)."""

    name = "xdotool"

    def __init__(self, xserver: XServer):
        self.x = xserver

    def type(self, text: str, delay: float) -> None:
        for ch in text:
            self.x.run("xdotool", "key", f"0x{keysym(ch):x}")
            time.sleep(delay)


class VncKeys:
    """Keys sent by the VNC viewer (RFB KeyEvents), as a technician at noVNC types: x11vnc
    watches the X protocol for scrolling only after input from its viewers."""

    name = "x11vnc viewer"

    def __init__(self, rfb: "RfbViewer"):
        self.rfb = rfb

    def type(self, text: str, delay: float) -> None:
        for ch in text:
            self.rfb.key(keysym(ch), True)
            self.rfb.key(keysym(ch), False)
            time.sleep(delay)


class Desktop:
    """The X session the viewers watch: the windows, the text and the script they show, and
    the actions of the phases."""

    def __init__(self, xserver: XServer, workdir: Path, quick: bool):
        self.x, self.dir, self.quick = xserver, workdir, quick
        self.keys = XdotoolKeys(xserver)
        self.processes: list[subprocess.Popen] = []
        self.pages, self.lines, self.output_lines, self.steps = (1, 10, 10, 8) if quick else (6, 2 * ROWS, 2 * ROWS, 32)
        text = iter(text_lines(ROWS * (self.pages + 2) + self.lines + self.output_lines + ROWS))

        def write(name: str, count: int) -> None:
            (workdir / name).write_text("".join(next(text) + "\n" for _ in range(count)))

        write("pages.txt", ROWS * (self.pages + 1))
        write("lines.txt", ROWS + self.lines)
        write("output.txt", self.output_lines)
        write("other.txt", ROWS)
        # Output with nobody typing: a line every 50 ms, then a marker.
        (workdir / "output.sh").write_text(
            'while IFS= read -r line; do\n  printf "%s\\n" "$line"\n  sleep 0.05\ndone < output.txt\n'
            ': > "$1"\n')

    def start(self) -> None:
        x = self.x
        x.run("xsetroot", "-solid", "#3a6ea5")
        env = {**x.env, "PS1": "$ ", "HISTFILE": "/dev/null", "LESS": "", "LESSHISTFILE": "-"}
        self.processes.append(subprocess.Popen(
            ["xterm", "-geometry", f"90x{ROWS}+10+10", "-title", "wire-main",
             "-e", "bash", "--norc", "--noprofile"], env=env, cwd=self.dir,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.processes.append(subprocess.Popen(
            ["xterm", "-geometry", "60x14+700+430", "-title", "wire-other",
             "-e", "sh", "-c", "cat other.txt; exec cat"], env=env, cwd=self.dir,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.main = self._window("wire-main")
        self.other = self._window("wire-other")
        # The pointer rests in the big xterm (focus follows it without a window manager),
        # away from where the small one passes.
        x.run("xdotool", "mousemove", "200", "60")
        # bash is up once it runs a command typed into it (then the screen is cleared).
        for _ in range(3):
            self.type(": > ready; clear\n", 0.005)
            try:
                wait_for((self.dir / "ready").exists, 10, every=0.1, message="bash to start in the xterm")
                return
            except AssertionError:
                continue
        raise RuntimeError("bash in the xterm does not answer typed keys")

    def _window(self, title: str) -> str:
        out = self.x.run("xdotool", "search", "--sync", "--onlyvisible", "--name", title, timeout=20)
        return out.split()[0]

    def type(self, text: str, delay: float = 0.065) -> None:
        self.keys.type(text, delay)

    def until(self, marker: str, timeout: float = 120) -> None:
        wait_for((self.dir / marker).exists, timeout, every=0.1, message=f"{marker} to appear")

    def move_other(self) -> None:
        for i in range(1, self.steps + 1):
            self.x.run("xdotool", "windowmove", self.other, str(700 - i * 20), "430")
            time.sleep(0.04)

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process, 5)


# ---------------------------------------------------------------------------- the run

class Side:
    """One viewer and its proxy."""

    def __init__(self, name: str, proxy: CountingProxy, client):
        self.name, self.proxy, self.client = name, proxy, client

    def snapshot(self) -> Counter:
        counts = self.client.snapshot()
        counts["bytes"], counts["sent"] = self.proxy.down, self.proxy.up
        return counts

    def check(self) -> None:
        if self.client.error is not None:
            raise RuntimeError(f"the {self.name} viewer failed: {self.client.error!r}") from self.client.error


def settle(sides: list[Side], quiet: float = QUIET, limit: float = SETTLE_LIMIT) -> None:
    """Wait until neither proxy has forwarded a byte for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    time.sleep(quiet / 2)
    while True:
        for side in sides:
            side.check()
        idle = time.monotonic() - max(side.proxy.last for side in sides)
        if idle >= quiet:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the viewers still received bytes after {limit:.0f} s")
        time.sleep(max(0.05, quiet - idle))


def _side_figures(delta: Counter, count: int | None, kind: str) -> dict:
    out = {"bytes": delta["bytes"], "frames": delta["frames"], "shown_frames": delta["shown_frames"],
           "sent": delta["sent"]}
    if count:
        out["bytes_per_unit"] = round(delta["bytes"] / count, 1)
    if kind == "tessera":
        out["detail"] = {
            "websocket_headers": delta["ws_headers"], "update_headers": delta["update_headers"],
            "update_bodies": delta["update_bodies"], "uncompressed_rect_bytes": delta["uncompressed"],
            "cursor_messages": delta["cursor_messages"], "other_messages": delta["other_messages"],
            "rects": {k.split(".", 1)[1]: v for k, v in sorted(delta.items()) if k.startswith("rects.")},
        }
    else:
        out["detail"] = {
            "updates": delta["updates"], "real_rects": delta["real_rects"],
            "rects": {k.split(".", 1)[1]: v for k, v in sorted(delta.items()) if k.startswith("rects.")},
            "rect_bytes": {k.split(".", 1)[1]: v for k, v in sorted(delta.items())
                           if k.startswith("rect_bytes.")},
            "pseudo_rect_bytes": {k.split(".", 1)[1]: v for k, v in sorted(delta.items())
                                  if k.startswith("pseudo.")},
            "other_messages": delta["other_messages"],
        }
    return out


def _compare(before: list[Counter], after: list[Counter], count: int | None = None,
             unit: str | None = None) -> dict:
    """Both sides' figures between two snapshots, and Tessera's over x11vnc's."""
    tessera, vnc = (after[i] - before[i] for i in range(2))
    out = {"unit": unit, "count": count} if unit else {}
    out["tessera"] = _side_figures(tessera, count, "tessera")
    out["x11vnc"] = _side_figures(vnc, count, "x11vnc")
    out.update(_ratios(out["tessera"], out["x11vnc"]))
    return out


def _ratios(tessera: dict, vnc: dict) -> dict:
    """Bytes and frames, Tessera's over x11vnc's. ``met`` counts the frames a 60 Hz display
    shows (see :class:`Display60`)."""
    ratio = tessera["bytes"] / vnc["bytes"] if vnc["bytes"] else None
    return {"ratio_bytes": round(ratio, 3) if ratio is not None else None,
            "ratio_frames": round(tessera["frames"] / vnc["frames"], 3) if vnc["frames"] else None,
            "ratio_shown_frames": (round(tessera["shown_frames"] / vnc["shown_frames"], 3)
                                   if vnc["shown_frames"] else None),
            "met": bool(ratio is not None and ratio <= TARGET_RATIO
                        and tessera["shown_frames"] >= vnc["shown_frames"])}


def _differing_pixels(a: bytes, b: bytes) -> int:
    if len(a) != len(b):
        return max(len(a), len(b)) // 4
    import numpy as np

    return int(np.count_nonzero(np.frombuffer(a, dtype=np.uint32) != np.frombuffer(b, dtype=np.uint32)))


class World:
    """Everything :func:`wire` starts, each part stopped by ``stack`` whatever happens."""

    def __init__(self, stack: ExitStack, workdir: Path, quick: bool):
        self.x = start_xvfb(SCREEN)
        stack.callback(self.x.stop)
        self.desktop = Desktop(self.x, workdir, quick)
        stack.callback(self.desktop.stop)
        self.desktop.start()
        log(f"Xvfb {self.x.display}, xterms up")

        server, tech, device_id = relay_with_online_agent(stack, workdir, self.x.display)
        log(f"tessera run at {server.url}, agent online as device {device_id}")

        vnc_port = free_port()
        stack.callback(stop_process, start_x11vnc(self.x.display, vnc_port, workdir / "x11vnc.log"))
        log(f"x11vnc on port {vnc_port}")

        tessera_proxy = CountingProxy(int(server.url.rsplit(":", 1)[1]))
        stack.callback(tessera_proxy.close)
        vnc_proxy = CountingProxy(vnc_port)
        stack.callback(vnc_proxy.close)

        # The technician's viewer, connected through the proxy instead of straight to the relay.
        through = RelayServer(f"http://127.0.0.1:{tessera_proxy.port}", server.app, server.process,
                              server.log_path)
        self.viewer = through.viewer(device_id, server.sign_in(tech.username))
        self.viewer.ws = _Metered(self.viewer.ws)
        stack.callback(self.viewer.close)
        self.viewer.start()
        self.watcher = TesseraWatcher(self.viewer)
        self.watcher.start()
        stack.callback(self.watcher.stop)
        self.rfb = RfbViewer(vnc_proxy.port)
        stack.callback(self.rfb.stop)
        self.rfb.handshake()
        self.rfb.start()
        self.sides = [Side("tessera", tessera_proxy, self.watcher), Side("x11vnc", vnc_proxy, self.rfb)]

    def first_frames(self) -> bool:
        for side in self.sides:
            side.check()
        return bool(self.watcher.snapshot()["keyframes"] and self.rfb.snapshot()["frames"])

    def snapshot(self) -> list[Counter]:
        return [side.snapshot() for side in self.sides]

    def lossless(self, timeout: float = 5.0) -> int:
        """Pixels where Tessera's viewer differs from the (still) X screen: 0 when lossless.
        The viewer may still be painting what it last received: it gets ``timeout`` to agree."""
        deadline = time.monotonic() + timeout
        while True:
            differing = _differing_pixels(bytes(self.viewer.frames.get(0) or b""), screen_now(self.x.display))
            if differing == 0 or time.monotonic() > deadline:
                return differing
            time.sleep(0.2)


class Phases:
    """Runs actions on the desktop and measures both sides over each: ``results`` by name."""

    def __init__(self, world: World):
        self.world = world
        self.mark = world.snapshot()
        self.results: dict[str, dict] = {}

    def between(self, action) -> None:
        """Set the next phase up (counted in no phase)."""
        action()
        settle(self.world.sides)
        self.mark = self.world.snapshot()

    def run(self, name: str, action, count: int, unit: str) -> None:
        began = time.monotonic()
        action()
        acted = time.monotonic() - began
        settle(self.world.sides)
        now = self.world.snapshot()
        result = self.results[name] = {**_compare(self.mark, now, count, unit), "seconds": round(acted, 1)}
        self.mark = now
        log(f"{name}: tessera {result['tessera']['bytes']} B / {result['tessera']['frames']} frames, "
            f"x11vnc {result['x11vnc']['bytes']} B / {result['x11vnc']['frames']} frames")

    def total(self) -> dict:
        sums = {side: {key: sum(r[side][key] for r in self.results.values())
                       for key in ("bytes", "frames", "shown_frames")}
                for side in ("tessera", "x11vnc")}
        return {**sums, **_ratios(sums["tessera"], sums["x11vnc"])}


def run_phases(world: World, quick: bool) -> Phases:
    desktop, phases = world.desktop, Phases(world)

    def page_down() -> None:
        for _ in range(desktop.pages):
            desktop.type(" ", 0.6)

    typed = QUICK_TYPED if quick else TYPED
    phases.run("typing", lambda: desktop.type(typed), len(typed), "typed character")
    phases.between(lambda: desktop.type("less pages.txt\n", 0.01))
    phases.run("scroll_pages", page_down, desktop.pages, f"page ({ROWS - 1} lines, Space in less)")
    phases.between(lambda: desktop.type("qless lines.txt\n", 0.01))
    phases.run("scroll_lines", lambda: desktop.type("j" * desktop.lines, 0.05), desktop.lines,
               "line (j in less)")
    # The prompt at the bottom first, so that the output scrolls the terminal.
    phases.between(lambda: desktop.type(f"qseq {ROWS + 5}\nsh output.sh output.done", 0.01))
    phases.run("output_lines", lambda: (desktop.type("\n", 0), desktop.until("output.done")),
               desktop.output_lines, "line (printed, nobody typing)")
    phases.run("window_move", desktop.move_other, desktop.steps, "20 px step")
    return phases


def wire(args) -> dict:
    """Start the world, run the phases; the benchmark's section (see the module docstring)."""
    for tool in ("Xvfb", "xterm", "xdotool", "xsetroot", "x11vnc", "less"):
        if shutil.which(tool) is None:
            raise SystemExit(f"wire: {tool} is not installed (scripts/install-system-deps)")
    quick = bool(getattr(args, "quick", False))
    started = time.monotonic()
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-wire-")))
        world = World(stack, workdir, quick)
        wait_for(world.first_frames, 60, message="both viewers to get their first full frame")
        settle(world.sides)
        initial = _compare([Counter(), Counter()], world.snapshot())
        log(f"initial frames: tessera {initial['tessera']['bytes']} B, x11vnc {initial['x11vnc']['bytes']} B")
        if getattr(args, "input", "vnc") == "vnc":
            world.desktop.keys = VncKeys(world.rfb)
        phases = run_phases(world, quick)

        differing = world.lossless()
        total = phases.total()
        total["met"] = total["met"] and differing == 0
        total["target"] = (f"tessera bytes <= {TARGET_RATIO}x x11vnc's at no fewer frames (as a 60 Hz "
                           "display shows them), lossless")
        rfb = world.rfb
        return {
            "initial": initial,
            "phases": phases.results,
            "total": total,
            "lossless": {"tessera_equals_x_screen": differing == 0, "differing_pixels": differing,
                         "x11vnc_jpeg_rects": sum(v for k, v in rfb.snapshot().items()
                                                  if k.startswith("rects.") and k.endswith("_jpeg"))},
            "setup": {
                "screen": SCREEN, "quick": quick, "keys_typed_by": world.desktop.keys.name,
                "x11vnc": _x11vnc_version(), "x11vnc_desktop": f"{rfb.width}x{rfb.height} {rfb.name!r}",
                "rfb_encodings": list(NOVNC_ENCODINGS), "tessera_compression": "zstd (the default)",
                "relay_ext": _relay_ext(), "python": platform.python_version(),
            },
            "seconds": round(time.monotonic() - started, 1),
        }


def _x11vnc_version() -> str:
    done = subprocess.run(["x11vnc", "-version"], capture_output=True, text=True, timeout=10)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"


def _relay_ext() -> str:
    import relay_ext

    return relay_ext.IMPLEMENTATION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shortened sequence (the smoke test)")
    parser.add_argument("--input", choices=("vnc", "xdotool"), default="vnc",
                        help="who types: the VNC viewer (default: x11vnc's scroll detection "
                             "follows its viewers' keys) or xdotool on the X server")
    args = parser.parse_args()
    print(json.dumps({"benchmark": "wire", **wire(args)}, indent=2))


if __name__ == "__main__":
    main()
