"""Encoding and decoding of every relay message (protocol version 1).

``docs/protocol.md`` is the specification; this module is its one implementation, imported by
the Host agent (``agents/host``), the relay hub (``app/relay``) and the tests. It is pure
Python (``zstandard`` aside) and knows nothing of Flask.

Use ``msg.encode()`` to build a message and ``decode(data)`` to parse one. Anything wrong with
the bytes raises ``ProtocolError`` carrying the close code to send, never another exception.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Iterable, Protocol as _Protocol, Union

import relay_ext

PROTOCOL_VERSION = 1

MAX_AGENT_MESSAGE = 16 * 1024 * 1024
MAX_VIEWER_MESSAGE = 64 * 1024
MAX_RAW_UPDATE = 64 * 1024 * 1024
MAX_SCREENS = 16
MAX_SCREEN_SIDE = 16384
MAX_CURSOR_SIDE = 256
MAX_CLIPBOARD = 60_000
MAX_TEXT = 1024
ALL_SCREENS = 0xFF
TILE = 64
ZSTD_MAX_WINDOW = 8 * 1024 * 1024

PING_EVERY = 25.0
IDLE_TIMEOUT = 75.0

# The order of app.models.roles.DEVICE_PERMISSIONS (a test keeps them equal).
PERMISSION_BITS = (
    "remote_session", "view_screen", "keyboard_mouse", "lock_input", "blank_screen", "clipboard",
    "execute_command", "file_transfer", "chat", "remote_management", "tunnel",
)


class MsgType(IntEnum):
    HELLO = 0x01
    STATUS = 0x02
    SCREEN_INFO = 0x03
    FRAME_UPDATE = 0x04
    ACK = 0x05
    CURSOR = 0x06
    POINTER = 0x07
    KEY = 0x08
    CLIPBOARD = 0x09
    POWER = 0x0A
    POWER_RESULT = 0x0B
    PING = 0x0C
    PONG = 0x0D
    SESSION = 0x0E
    REQUEST_KEYFRAME = 0x0F
    SELECT_SCREEN = 0x10
    WELCOME = 0x11
    PERMISSIONS = 0x12
    DEVICE_STATE = 0x13
    CONFIRM_REQUEST = 0x14
    CONFIRM_ANSWER = 0x15
    CONFIRM_STATE = 0x16
    CONFIRM_CANCEL = 0x17
    CONSENT_REQUEST = 0x18  # R→A, OnDemand agents only
    CONSENT = 0x19          # A→R, OnDemand agents only
    ERROR = 0x7F


class Encoding(IntEnum):
    RAW = 0
    FILL = 1
    PALETTE = 2
    COPY = 3


class PowerAction(IntEnum):
    LOGOUT = 1
    LOCK = 2
    RESTART = 3
    SHUTDOWN = 4
    CTRL_ALT_DEL = 5


class PowerStatus(IntEnum):
    DONE = 0
    REFUSED = 1
    FAILED = 2


class SessionEvent(IntEnum):
    JOINED = 1
    LEFT = 2
    CHANGED = 3


class Answer(IntEnum):
    """What the person at the host answered a ``CONFIRM_REQUEST``."""

    DENY = 0
    ALLOW = 1
    UNANSWERED = 2  # nobody answered in time, or the prompt could not be shown


class ConfirmOutcome(IntEnum):
    WAITING = 1
    ALLOWED = 2
    DENIED = 3
    NO_ANSWER = 4


class ConfirmVia(IntEnum):
    NONE = 0
    HOST = 1
    EMAIL = 2


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    POLICY = 1008
    TOO_BIG = 1009
    SERVER_ERROR = 1011
    UNAUTHENTICATED = 4001
    UNSUPPORTED_VERSION = 4002
    DEVICE_PENDING = 4003
    DEVICE_REVOKED = 4004
    UNKNOWN_TYPE = 4005
    MALFORMED = 4006
    UNEXPECTED = 4007
    REPLACED = 4008
    NOT_PERMITTED = 4009
    PERMISSION_WITHDRAWN = 4010
    IDLE = 4011
    ACCESS_DENIED = 4012
    ENDED_BY_HOST = 4013    # the person at the computer ended the OnDemand session
    REJECTED = 4014         # the technician rejected the waiting OnDemand session; key void
    EXPIRED = 4015          # the OnDemand key expired, or the session waited too long
    AGENT_GONE = 4016       # the OnDemand agent's connection ended: the session is over


# Which side may send which message (docs/protocol.md, "Messages").
FROM_AGENT = frozenset({
    MsgType.HELLO, MsgType.STATUS, MsgType.SCREEN_INFO, MsgType.FRAME_UPDATE, MsgType.CURSOR,
    MsgType.CLIPBOARD, MsgType.POWER_RESULT, MsgType.PING, MsgType.PONG, MsgType.ERROR,
    MsgType.CONFIRM_ANSWER, MsgType.CONSENT,
})
FROM_VIEWER = frozenset({
    MsgType.ACK, MsgType.POINTER, MsgType.KEY, MsgType.CLIPBOARD, MsgType.POWER, MsgType.PING,
    MsgType.PONG, MsgType.SELECT_SCREEN, MsgType.ERROR,
})


class ProtocolError(Exception):
    """Bad bytes or a rule broken; ``close_code`` is the websocket close code to send."""

    def __init__(self, close_code: int, message: str):
        super().__init__(message)
        self.close_code = int(close_code)
        self.message = message


def _malformed(message: str) -> ProtocolError:
    return ProtocolError(CloseCode.MALFORMED, message)


def permission_mask(keys: Iterable[str]) -> int:
    """Permission keys -> the u32 bit mask of the protocol (unknown keys are ignored)."""
    mask = 0
    for key in keys:
        if key in PERMISSION_BITS:
            mask |= 1 << PERMISSION_BITS.index(key)
    return mask


def permission_keys(mask: int) -> frozenset[str]:
    return frozenset(key for bit, key in enumerate(PERMISSION_BITS) if mask >> bit & 1)


# --- a small reader over one message -------------------------------------------------------


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: memoryview, pos: int = 0):
        self.buf = buf
        self.pos = pos

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise _malformed("message is truncated")
        view = self.buf[self.pos:end]
        self.pos = end
        return view

    def unpack(self, st: struct.Struct) -> tuple:
        if self.pos + st.size > len(self.buf):
            raise _malformed("message is truncated")
        values = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return values

    def u8(self) -> int:
        return self.unpack(_U8)[0]

    def u16(self) -> int:
        return self.unpack(_U16)[0]

    def u32(self) -> int:
        return self.unpack(_U32)[0]

    def text(self, length: int, limit: int, what: str) -> str:
        if length > limit:
            raise _malformed(f"{what} is longer than {limit} bytes")
        try:
            return bytes(self.take(length)).decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed(f"{what} is not UTF-8") from None

    def str8(self, what: str) -> str:
        return self.text(self.u8(), 255, what)

    def str16(self, what: str, limit: int = MAX_TEXT) -> str:
        return self.text(self.u16(), limit, what)

    def rest(self) -> memoryview:
        return self.take(len(self.buf) - self.pos)

    def end(self) -> None:
        if self.pos != len(self.buf):
            raise _malformed("unexpected bytes after the message")


_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def _str8(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"{what} is longer than 255 bytes of UTF-8")
    return _U8.pack(len(raw)) + raw


def _str16(value: str, what: str, limit: int = MAX_TEXT) -> bytes:
    raw = value.encode("utf-8")
    if len(raw) > limit:
        raise ValueError(f"{what} is longer than {limit} bytes of UTF-8")
    return _U16.pack(len(raw)) + raw


def clip_str8(value: str) -> str:
    """Cut a string to at most 255 bytes of UTF-8 without splitting a character."""
    return value.encode("utf-8")[:255].decode("utf-8", "ignore")


def _flags(value: int, allowed: int, what: str) -> int:
    if value & ~allowed:
        raise _malformed(f"undefined {what} flag bits {value & ~allowed:#x}")
    return value


# --- messages ------------------------------------------------------------------------------

LOCKED = 0x01


@dataclass(frozen=True)
class Hello:
    agent_version: str
    os: str
    hostname: str
    user: str = ""
    locked: bool = False
    version: int = PROTOCOL_VERSION

    TYPE = MsgType.HELLO
    _HEAD = struct.Struct("<BHB")

    def encode(self) -> bytes:
        return (self._HEAD.pack(self.TYPE, self.version, LOCKED if self.locked else 0)
                + _str8(self.agent_version, "agent version") + _str8(self.os, "os")
                + _str8(self.hostname, "hostname") + _str8(self.user, "user"))

    @classmethod
    def _decode(cls, r: _Reader) -> "Hello":
        version = r.u16()
        flags = _flags(r.u8(), LOCKED, "hello")
        return cls(agent_version=r.str8("agent version"), os=r.str8("os"),
                   hostname=r.str8("hostname"), user=r.str8("user"),
                   locked=bool(flags & LOCKED), version=version)


@dataclass(frozen=True)
class Status:
    user: str = ""
    locked: bool = False

    TYPE = MsgType.STATUS

    def encode(self) -> bytes:
        return bytes((self.TYPE, LOCKED if self.locked else 0)) + _str8(self.user, "user")

    @classmethod
    def _decode(cls, r: _Reader) -> "Status":
        flags = _flags(r.u8(), LOCKED, "status")
        return cls(user=r.str8("user"), locked=bool(flags & LOCKED))


@dataclass(frozen=True)
class Monitor:
    id: int
    x: int
    y: int
    width: int
    height: int
    primary: bool = False


@dataclass(frozen=True)
class ScreenInfo:
    monitors: tuple[Monitor, ...]

    TYPE = MsgType.SCREEN_INFO
    _MON = struct.Struct("<BBiiHH")

    def __post_init__(self):
        object.__setattr__(self, "monitors", tuple(self.monitors))

    def encode(self) -> bytes:
        _check_monitors(self.monitors, ValueError)
        parts = [bytes((self.TYPE, len(self.monitors)))]
        for m in self.monitors:
            parts.append(self._MON.pack(m.id, 1 if m.primary else 0, m.x, m.y, m.width, m.height))
        return b"".join(parts)

    @classmethod
    def _decode(cls, r: _Reader) -> "ScreenInfo":
        count = r.u8()
        monitors = []
        for _ in range(count):
            mid, flags, x, y, w, h = r.unpack(cls._MON)
            _flags(flags, 1, "monitor")
            monitors.append(Monitor(mid, x, y, w, h, bool(flags & 1)))
        _check_monitors(monitors, _malformed)
        return cls(tuple(monitors))

    def by_id(self, screen: int) -> Monitor | None:
        for m in self.monitors:
            if m.id == screen:
                return m
        return None

    @property
    def primary(self) -> Monitor:
        return next(m for m in self.monitors if m.primary)


def _check_monitors(monitors, error) -> None:
    if not 1 <= len(monitors) <= MAX_SCREENS:
        raise error(f"a device has 1 to {MAX_SCREENS} monitors, not {len(monitors)}")
    ids = [m.id for m in monitors]
    if len(set(ids)) != len(ids):
        raise error("monitor ids repeat")
    if sum(1 for m in monitors if m.primary) != 1:
        raise error("exactly one monitor is primary")
    for m in monitors:
        if m.id == ALL_SCREENS:
            raise error("monitor id 255 is reserved")
        if not (1 <= m.width <= MAX_SCREEN_SIDE and 1 <= m.height <= MAX_SCREEN_SIDE):
            raise error(f"monitor {m.id} is {m.width}x{m.height}, outside 1..{MAX_SCREEN_SIDE}")
        if not (-2**31 <= m.x < 2**31 and -2**31 <= m.y < 2**31):
            raise error(f"monitor {m.id} position is out of range")


# Rectangles of a frame update -------------------------------------------------------------

_RECT = struct.Struct("<HHHHB")


@dataclass(frozen=True)
class RawRect:
    x: int
    y: int
    width: int
    height: int
    pixels: bytes  # RGBA, width*height*4

    encoding = Encoding.RAW


@dataclass(frozen=True)
class FillRect:
    x: int
    y: int
    width: int
    height: int
    color: bytes  # one RGBA pixel

    encoding = Encoding.FILL


@dataclass(frozen=True)
class PaletteRect:
    x: int
    y: int
    width: int
    height: int
    palette: bytes  # n*4 bytes RGBA, 1 <= n <= 256
    indices: bytes  # packed, see palette_bits()

    encoding = Encoding.PALETTE


@dataclass(frozen=True)
class CopyRect:
    x: int
    y: int
    width: int
    height: int
    src_x: int
    src_y: int

    encoding = Encoding.COPY


Rect = Union[RawRect, FillRect, PaletteRect, CopyRect]


def palette_bits(colours: int) -> int:
    """Bits per packed index for a palette of this many colours."""
    if colours <= 2:
        return 1
    if colours <= 4:
        return 2
    if colours <= 16:
        return 4
    return 8


def packed_size(pixels: int, bits: int) -> int:
    """Bytes of packed indices for this many pixels (one bit stream, padded at the end)."""
    return (pixels * bits + 7) // 8


def pack_indices(indices: Iterable[int], width: int, height: int, bits: int) -> bytes:
    """Pack one palette index per pixel (row-major) MSB first as one continuous bit stream,
    padded with zero bits to a whole byte at the end (what relay_ext.palette produces)."""
    indices = list(indices)
    if len(indices) != width * height:
        raise ValueError("one index per pixel")
    if bits == 8:
        return bytes(indices)
    per_byte = 8 // bits
    out = bytearray(packed_size(len(indices), bits))
    for i, value in enumerate(indices):
        out[i // per_byte] |= value << (8 - bits * (i % per_byte + 1))
    return bytes(out)


def unpack_indices(packed: bytes, width: int, height: int, bits: int) -> list[int]:
    count = width * height
    if bits == 8:
        return list(packed[:count])
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    return [packed[i // per_byte] >> (8 - bits * (i % per_byte + 1)) & mask for i in range(count)]


def encode_rects(rects: Iterable[Rect]) -> bytes:
    """The rectangle bytes of a frame update (the part that may be compressed)."""
    rects = list(rects)
    if len(rects) > 0xFFFF:
        raise ValueError("at most 65535 rectangles per update")
    parts = [_U16.pack(len(rects))]
    for rect in rects:
        if rect.width < 1 or rect.height < 1:
            raise ValueError("rectangles are at least 1x1")
        parts.append(_RECT.pack(rect.x, rect.y, rect.width, rect.height, rect.encoding))
        if isinstance(rect, RawRect):
            if len(rect.pixels) != rect.width * rect.height * 4:
                raise ValueError("raw rectangle pixels must be width*height*4 bytes")
            parts.append(rect.pixels)
        elif isinstance(rect, FillRect):
            if len(rect.color) != 4:
                raise ValueError("fill colour is 4 bytes of RGBA")
            parts.append(rect.color)
        elif isinstance(rect, PaletteRect):
            n = len(rect.palette) // 4
            if len(rect.palette) % 4 or not 1 <= n <= 256:
                raise ValueError("a palette has 1 to 256 RGBA colours")
            bits = palette_bits(n)
            if len(rect.indices) != packed_size(rect.width * rect.height, bits):
                raise ValueError("packed indices have the wrong length")
            parts.append(bytes((n - 1,)))
            parts.append(rect.palette)
            parts.append(rect.indices)
        elif isinstance(rect, CopyRect):
            parts.append(struct.pack("<HH", rect.src_x, rect.src_y))
        else:
            raise TypeError(f"not a rectangle: {rect!r}")
    return b"".join(parts)


def decode_rects(payload) -> list[Rect]:
    """Parse rectangle bytes. Bounds against a screen are checked by ``check_bounds``."""
    r = _Reader(memoryview(payload))
    count = r.u16()
    rects: list[Rect] = []
    for _ in range(count):
        x, y, w, h, encoding = r.unpack(_RECT)
        if w < 1 or h < 1:
            raise _malformed("a rectangle is empty")
        if encoding == Encoding.RAW:
            rects.append(RawRect(x, y, w, h, bytes(r.take(w * h * 4))))
        elif encoding == Encoding.FILL:
            rects.append(FillRect(x, y, w, h, bytes(r.take(4))))
        elif encoding == Encoding.PALETTE:
            n = r.u8() + 1
            palette = bytes(r.take(n * 4))
            bits = palette_bits(n)
            indices = bytes(r.take(packed_size(w * h, bits)))
            rect = PaletteRect(x, y, w, h, palette, indices)
            if n < (1 << bits):
                rect_pixels(rect)  # raises for an index beyond the palette
            rects.append(rect)
        elif encoding == Encoding.COPY:
            sx, sy = struct.unpack("<HH", r.take(4))
            rects.append(CopyRect(x, y, w, h, sx, sy))
        else:
            raise _malformed(f"unknown rectangle encoding {encoding}")
    r.end()
    return rects


def check_bounds(rects: Iterable[Rect], width: int, height: int) -> None:
    """Every rectangle (and copy source) lies inside a width x height screen."""
    for rect in rects:
        if rect.x + rect.width > width or rect.y + rect.height > height:
            raise _malformed(f"a rectangle at {rect.x},{rect.y} size {rect.width}x{rect.height} "
                             f"leaves the {width}x{height} screen")
        if isinstance(rect, CopyRect) and (rect.src_x + rect.width > width
                                           or rect.src_y + rect.height > height):
            raise _malformed("a copy source leaves the screen")


def rect_pixels(rect: Rect) -> bytes:
    """RGBA pixels of a RAW, FILL or PALETTE rectangle (COPY has none of its own)."""
    if isinstance(rect, RawRect):
        return rect.pixels
    if isinstance(rect, FillRect):
        return rect.color * (rect.width * rect.height)
    if isinstance(rect, PaletteRect):
        try:
            return relay_ext.expand_palette(rect.palette, rect.indices, rect.width * rect.height)
        except ValueError:
            raise _malformed("a palette index is beyond the palette") from None
    raise TypeError("a copy rectangle has no pixels of its own")


def apply_rects(framebuffer: bytearray, width: int, height: int, rects: Iterable[Rect]) -> None:
    """Paint rectangles into an RGBA framebuffer of width x height, in order (the reference
    decoder; the relay uses relay_ext's faster one when present)."""
    stride = width * 4
    fb = memoryview(framebuffer)
    for rect in rects:
        if rect.x + rect.width > width or rect.y + rect.height > height:
            raise _malformed("a rectangle leaves the screen")
        row_len = rect.width * 4
        if isinstance(rect, CopyRect):
            if rect.src_x + rect.width > width or rect.src_y + rect.height > height:
                raise _malformed("a copy source leaves the screen")
            rows = [bytes(fb[(rect.src_y + j) * stride + rect.src_x * 4:
                             (rect.src_y + j) * stride + rect.src_x * 4 + row_len])
                    for j in range(rect.height)]
        elif isinstance(rect, FillRect):
            rows = [rect.color * rect.width] * rect.height
        else:
            pixels = rect_pixels(rect)
            rows = [pixels[j * row_len:(j + 1) * row_len] for j in range(rect.height)]
        for j, row in enumerate(rows):
            start = (rect.y + j) * stride + rect.x * 4
            fb[start:start + row_len] = row


class Compressor(_Protocol):
    def compress(self, data: bytes) -> bytes: ...


class Decompressor(_Protocol):
    def decompress(self, data: bytes, raw_len: int) -> bytes: ...


class StreamCompressor:
    """One zstd stream for one direction of one connection: each call returns a flushed block
    that the peer can decode at once, compressed against everything sent before."""

    def __init__(self, level: int = 3):
        import zstandard

        if not 1 <= level <= 19:
            raise ValueError("zstd level 1..19 keeps the window within 8 MiB")
        self._flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        self._obj = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._obj.compress(data) + self._obj.flush(self._flush)


class StreamDecompressor:
    """The receiving end of a ``StreamCompressor``. Refuses to produce more than the declared
    length: the input is fed in small slices so a decompression bomb is caught early."""

    FEED = 1024

    def __init__(self):
        import zstandard

        self._error = zstandard.ZstdError
        self._obj = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
        self._broken = False

    def decompress(self, data: bytes, raw_len: int) -> bytes:
        if self._broken:
            raise _malformed("the compressed stream is already broken")
        out = bytearray()
        view = memoryview(data)
        try:
            for start in range(0, len(view), self.FEED):
                out += self._obj.decompress(view[start:start + self.FEED])
                if len(out) > raw_len:
                    raise _malformed("the update decompresses to more than its declared length")
        except self._error as err:
            self._broken = True
            raise _malformed(f"the compressed update is corrupt ({err})") from None
        except ProtocolError:
            self._broken = True
            raise
        except Exception as err:  # zstandard raises plain errors for some misuse
            self._broken = True
            raise _malformed(f"the compressed update is corrupt ({err})") from None
        if len(out) != raw_len:
            self._broken = True
            raise _malformed("the update decompresses to less than its declared length")
        return bytes(out)


ZSTD = 0x01
KEYFRAME = 0x02


@dataclass(frozen=True)
class FrameUpdate:
    screen: int
    seq: int
    rects: tuple[Rect, ...] = ()
    keyframe: bool = False
    # The uncompressed rectangle bytes as received; lets the relay forward an update without
    # encoding it again. Not part of equality.
    payload: bytes | None = field(default=None, compare=False, repr=False)

    TYPE = MsgType.FRAME_UPDATE
    _HEAD = struct.Struct("<BBBI")

    def __post_init__(self):
        object.__setattr__(self, "rects", tuple(self.rects))

    def encode(self, compressor: Compressor | None = None) -> bytes:
        payload = self.payload if self.payload is not None else encode_rects(self.rects)
        return encode_frame_update(self.screen, self.seq, payload, self.keyframe, compressor)

    @classmethod
    def _decode(cls, r: _Reader, decompressor: Decompressor | None) -> "FrameUpdate":
        flags, screen, seq = r.unpack(struct.Struct("<BBI"))
        _flags(flags, ZSTD | KEYFRAME, "frame update")
        if flags & ZSTD:
            raw_len = r.u32()
            if raw_len > MAX_RAW_UPDATE:
                raise _malformed("an update may not exceed 64 MiB uncompressed")
            if decompressor is None:
                raise _malformed("a compressed update where none is expected")
            payload = decompressor.decompress(bytes(r.rest()), raw_len)
        else:
            payload = bytes(r.rest())
        return cls(screen, seq, tuple(decode_rects(payload)), bool(flags & KEYFRAME), payload)


def encode_frame_update(screen: int, seq: int, payload: bytes, keyframe: bool = False,
                        compressor: Compressor | None = None) -> bytes:
    """A FRAME_UPDATE around already encoded rectangle bytes (compressed when a compressor of
    this connection is given)."""
    flags = KEYFRAME if keyframe else 0
    if compressor is None:
        return FrameUpdate._HEAD.pack(MsgType.FRAME_UPDATE, flags, screen, seq & 0xFFFFFFFF) + payload
    if len(payload) > MAX_RAW_UPDATE:
        raise ValueError("an update may not exceed 64 MiB uncompressed")
    return (FrameUpdate._HEAD.pack(MsgType.FRAME_UPDATE, flags | ZSTD, screen, seq & 0xFFFFFFFF)
            + _U32.pack(len(payload)) + compressor.compress(payload))


@dataclass(frozen=True)
class Ack:
    seq: int

    TYPE = MsgType.ACK

    def encode(self) -> bytes:
        return bytes((self.TYPE,)) + _U32.pack(self.seq & 0xFFFFFFFF)

    @classmethod
    def _decode(cls, r: _Reader) -> "Ack":
        return cls(r.u32())


VISIBLE = 0x01
HAS_SHAPE = 0x02


@dataclass(frozen=True)
class CursorShape:
    hot_x: int
    hot_y: int
    width: int
    height: int
    pixels: bytes  # RGBA


@dataclass(frozen=True)
class Cursor:
    x: int
    y: int
    visible: bool = True
    shape: CursorShape | None = None

    TYPE = MsgType.CURSOR
    _POS = struct.Struct("<BBii")
    _SHAPE = struct.Struct("<HHHH")

    def encode(self) -> bytes:
        flags = (VISIBLE if self.visible else 0) | (HAS_SHAPE if self.shape else 0)
        out = self._POS.pack(self.TYPE, flags, self.x, self.y)
        if self.shape:
            s = self.shape
            _check_cursor(s, ValueError)
            out += self._SHAPE.pack(s.hot_x, s.hot_y, s.width, s.height) + s.pixels
        return out

    @classmethod
    def _decode(cls, r: _Reader) -> "Cursor":
        flags, x, y = r.unpack(struct.Struct("<Bii"))
        _flags(flags, VISIBLE | HAS_SHAPE, "cursor")
        shape = None
        if flags & HAS_SHAPE:
            hx, hy, w, h = r.unpack(cls._SHAPE)
            if not (1 <= w <= MAX_CURSOR_SIDE and 1 <= h <= MAX_CURSOR_SIDE):
                raise _malformed("a cursor is 1..256 pixels on each side")
            shape = CursorShape(hx, hy, w, h, bytes(r.take(w * h * 4)))
            _check_cursor(shape, _malformed)
        return cls(x, y, bool(flags & VISIBLE), shape)


def _check_cursor(s: CursorShape, error) -> None:
    if not (1 <= s.width <= MAX_CURSOR_SIDE and 1 <= s.height <= MAX_CURSOR_SIDE):
        raise error("a cursor is 1..256 pixels on each side")
    if s.hot_x >= s.width or s.hot_y >= s.height:
        raise error("the cursor hotspot lies outside its image")
    if len(s.pixels) != s.width * s.height * 4:
        raise error("cursor pixels must be width*height*4 bytes")


@dataclass(frozen=True)
class Pointer:
    screen: int
    x: int
    y: int
    buttons: int = 0
    wheel_x: int = 0
    wheel_y: int = 0

    TYPE = MsgType.POINTER
    _S = struct.Struct("<BBHHBhh")

    def encode(self) -> bytes:
        return self._S.pack(self.TYPE, self.screen, self.x, self.y, self.buttons,
                            self.wheel_x, self.wheel_y)

    @classmethod
    def _decode(cls, r: _Reader) -> "Pointer":
        screen, x, y, buttons, wx, wy = r.unpack(struct.Struct("<BHHBhh"))
        _flags(buttons, 0x1F, "button")
        return cls(screen, x, y, buttons, wx, wy)


@dataclass(frozen=True)
class Key:
    keysym: int
    down: bool

    TYPE = MsgType.KEY

    def encode(self) -> bytes:
        return struct.pack("<BBI", self.TYPE, 1 if self.down else 0, self.keysym)

    @classmethod
    def _decode(cls, r: _Reader) -> "Key":
        down, keysym = r.unpack(struct.Struct("<BI"))
        if down > 1:
            raise _malformed("a key is down (1) or up (0)")
        return cls(keysym, bool(down))


@dataclass(frozen=True)
class Clipboard:
    text: str

    TYPE = MsgType.CLIPBOARD

    def encode(self) -> bytes:
        raw = self.text.encode("utf-8")
        if len(raw) > MAX_CLIPBOARD:
            raise ValueError(f"clipboard text is limited to {MAX_CLIPBOARD} bytes of UTF-8")
        return bytes((self.TYPE,)) + _U32.pack(len(raw)) + raw

    @classmethod
    def _decode(cls, r: _Reader) -> "Clipboard":
        return cls(r.text(r.u32(), MAX_CLIPBOARD, "clipboard text"))


def _power_action(value: int) -> PowerAction:
    try:
        return PowerAction(value)
    except ValueError:
        raise _malformed(f"unknown power action {value}") from None


@dataclass(frozen=True)
class Power:
    action: PowerAction

    TYPE = MsgType.POWER

    def encode(self) -> bytes:
        return bytes((self.TYPE, PowerAction(self.action)))

    @classmethod
    def _decode(cls, r: _Reader) -> "Power":
        return cls(_power_action(r.u8()))


@dataclass(frozen=True)
class PowerResult:
    action: PowerAction
    status: PowerStatus
    message: str = ""

    TYPE = MsgType.POWER_RESULT

    def encode(self) -> bytes:
        return bytes((self.TYPE, PowerAction(self.action), PowerStatus(self.status))) + _str16(
            self.message, "power result message")

    @classmethod
    def _decode(cls, r: _Reader) -> "PowerResult":
        action = _power_action(r.u8())
        try:
            status = PowerStatus(r.u8())
        except ValueError:
            raise _malformed("unknown power result status") from None
        return cls(action, status, r.str16("power result message"))


@dataclass(frozen=True)
class Ping:
    nonce: int = 0

    TYPE = MsgType.PING

    def encode(self) -> bytes:
        return bytes((self.TYPE,)) + _U64.pack(self.nonce)

    @classmethod
    def _decode(cls, r: _Reader):
        return cls(r.unpack(_U64)[0])


@dataclass(frozen=True)
class Pong:
    nonce: int = 0

    TYPE = MsgType.PONG

    def encode(self) -> bytes:
        return bytes((self.TYPE,)) + _U64.pack(self.nonce)

    @classmethod
    def _decode(cls, r: _Reader):
        return cls(r.unpack(_U64)[0])


@dataclass(frozen=True)
class Session:
    event: SessionEvent
    viewer: int
    viewers: int
    permissions: int
    technician: str

    TYPE = MsgType.SESSION
    _S = struct.Struct("<BBIHI")

    def encode(self) -> bytes:
        return self._S.pack(self.TYPE, SessionEvent(self.event), self.viewer, self.viewers,
                            self.permissions) + _str8(self.technician, "technician")

    @classmethod
    def _decode(cls, r: _Reader) -> "Session":
        event, viewer, viewers, permissions = r.unpack(struct.Struct("<BIHI"))
        try:
            event = SessionEvent(event)
        except ValueError:
            raise _malformed("unknown session event") from None
        return cls(event, viewer, viewers, permissions, r.str8("technician"))


@dataclass(frozen=True)
class RequestKeyframe:
    screen: int = ALL_SCREENS

    TYPE = MsgType.REQUEST_KEYFRAME

    def encode(self) -> bytes:
        return bytes((self.TYPE, self.screen))

    @classmethod
    def _decode(cls, r: _Reader):
        return cls(r.u8())


@dataclass(frozen=True)
class SelectScreen:
    screen: int

    TYPE = MsgType.SELECT_SCREEN

    def encode(self) -> bytes:
        return bytes((self.TYPE, self.screen))

    @classmethod
    def _decode(cls, r: _Reader):
        return cls(r.u8())


@dataclass(frozen=True)
class Welcome:
    viewer: int
    device: int
    version: int = PROTOCOL_VERSION

    TYPE = MsgType.WELCOME

    def encode(self) -> bytes:
        return struct.pack("<BHII", self.TYPE, self.version, self.viewer, self.device)

    @classmethod
    def _decode(cls, r: _Reader):
        version, viewer, device = r.unpack(struct.Struct("<HII"))
        return cls(viewer, device, version)


@dataclass(frozen=True)
class Permissions:
    mask: int

    TYPE = MsgType.PERMISSIONS

    def encode(self) -> bytes:
        return bytes((self.TYPE,)) + _U32.pack(self.mask)

    @classmethod
    def _decode(cls, r: _Reader):
        return cls(r.u32())

    @property
    def keys(self) -> frozenset[str]:
        return permission_keys(self.mask)


@dataclass(frozen=True)
class DeviceState:
    online: bool

    TYPE = MsgType.DEVICE_STATE

    def encode(self) -> bytes:
        return bytes((self.TYPE, 1 if self.online else 0))

    @classmethod
    def _decode(cls, r: _Reader):
        value = r.u8()
        if value > 1:
            raise _malformed("device state is 0 or 1")
        return cls(bool(value))


def _enum(kind, value: int, what: str):
    try:
        return kind(value)
    except ValueError:
        raise _malformed(f"unknown {what} {value}") from None


@dataclass(frozen=True)
class ConfirmRequest:
    """Ask the person at the host whether ``technician`` may start a session."""

    request: int
    timeout: int
    technician: str

    TYPE = MsgType.CONFIRM_REQUEST
    _S = struct.Struct("<BIH")

    def encode(self) -> bytes:
        return self._S.pack(self.TYPE, self.request, self.timeout) + _str8(self.technician, "technician")

    @classmethod
    def _decode(cls, r: _Reader) -> "ConfirmRequest":
        request, timeout = r.unpack(struct.Struct("<IH"))
        if timeout == 0:
            raise _malformed("a confirmation needs a timeout of at least one second")
        return cls(request, timeout, r.str8("technician"))


@dataclass(frozen=True)
class ConfirmAnswer:
    request: int
    answer: Answer

    TYPE = MsgType.CONFIRM_ANSWER
    _S = struct.Struct("<BIB")

    def encode(self) -> bytes:
        return self._S.pack(self.TYPE, self.request, Answer(self.answer))

    @classmethod
    def _decode(cls, r: _Reader) -> "ConfirmAnswer":
        request, answer = r.unpack(struct.Struct("<IB"))
        return cls(request, _enum(Answer, answer, "confirmation answer"))


@dataclass(frozen=True)
class ConfirmState:
    """Where the viewer's confirmation stands, with a sentence to show."""

    state: ConfirmOutcome
    via: ConfirmVia = ConfirmVia.NONE
    text: str = ""

    TYPE = MsgType.CONFIRM_STATE

    def encode(self) -> bytes:
        return (bytes((self.TYPE, ConfirmOutcome(self.state), ConfirmVia(self.via)))
                + _str16(self.text, "confirmation text"))

    @classmethod
    def _decode(cls, r: _Reader) -> "ConfirmState":
        state = _enum(ConfirmOutcome, r.u8(), "confirmation state")
        via = _enum(ConfirmVia, r.u8(), "confirmation channel")
        return cls(state, via, r.str16("confirmation text"))


@dataclass(frozen=True)
class ConsentRequest:
    """OnDemand: the technician pressed Start. Ask the person at the computer which of
    ``permissions`` (a mask of what the technician may use) they allow; nothing of the screen
    is sent before the answer."""

    permissions: int
    timeout: int
    technician: str

    TYPE = MsgType.CONSENT_REQUEST
    _S = struct.Struct("<BIH")

    def encode(self) -> bytes:
        return self._S.pack(self.TYPE, self.permissions, self.timeout) + _str8(self.technician, "technician")

    @classmethod
    def _decode(cls, r: _Reader) -> "ConsentRequest":
        permissions, timeout = r.unpack(struct.Struct("<IH"))
        if timeout == 0:
            raise _malformed("a consent request needs a timeout of at least one second")
        return cls(permissions, timeout, r.str8("technician"))


@dataclass(frozen=True)
class Consent:
    """OnDemand: what the person at the computer allowed (0: declined, or no answer in time).
    A bit the request did not ask for is malformed."""

    permissions: int

    TYPE = MsgType.CONSENT
    _S = struct.Struct("<BI")

    def encode(self) -> bytes:
        return self._S.pack(self.TYPE, self.permissions)

    @classmethod
    def _decode(cls, r: _Reader) -> "Consent":
        return cls(r.u32())


@dataclass(frozen=True)
class ConfirmCancel:
    """The question ``request`` was settled without this agent's answer (an emailed answer,
    the relay's deadline, the technician leaving): close its prompt, send no answer."""

    request: int

    TYPE = MsgType.CONFIRM_CANCEL
    _S = struct.Struct("<BI")

    def encode(self) -> bytes:
        return self._S.pack(self.TYPE, self.request)

    @classmethod
    def _decode(cls, r: _Reader) -> "ConfirmCancel":
        return cls(r.u32())


@dataclass(frozen=True)
class Error:
    code: int
    message: str = ""

    TYPE = MsgType.ERROR

    def encode(self) -> bytes:
        return bytes((self.TYPE,)) + _U16.pack(self.code) + _str16(
            self.message.encode("utf-8")[:MAX_TEXT].decode("utf-8", "ignore"), "error message")

    @classmethod
    def _decode(cls, r: _Reader):
        return cls(r.u16(), r.str16("error message"))


Message = Union[Hello, Status, ScreenInfo, FrameUpdate, Ack, Cursor, Pointer, Key, Clipboard,
                Power, PowerResult, Ping, Pong, Session, RequestKeyframe, SelectScreen, Welcome,
                Permissions, DeviceState, ConfirmRequest, ConfirmAnswer, ConfirmState,
                ConfirmCancel, ConsentRequest, Consent, Error]

_DECODERS = {cls.TYPE: cls for cls in (
    Hello, Status, ScreenInfo, FrameUpdate, Ack, Cursor, Pointer, Key, Clipboard, Power,
    PowerResult, Ping, Pong, Session, RequestKeyframe, SelectScreen, Welcome, Permissions,
    DeviceState, ConfirmRequest, ConfirmAnswer, ConfirmState, ConfirmCancel, ConsentRequest, Consent,
    Error)}


def message_type(data) -> MsgType:
    """The type of a message without decoding the rest (4005 when unknown, 4006 when empty)."""
    if not data:
        raise _malformed("an empty message")
    try:
        return MsgType(data[0])
    except ValueError:
        raise ProtocolError(CloseCode.UNKNOWN_TYPE, f"unknown message type {data[0]:#04x}") from None


def decode(data, decompressor: Decompressor | None = None) -> Message:
    """Parse one binary message. ``decompressor`` is the connection's zstd stream, needed for
    compressed frame updates. Raises ``ProtocolError`` for anything wrong with the bytes."""
    if isinstance(data, str):
        raise ProtocolError(CloseCode.UNSUPPORTED_DATA, "text messages are not part of the protocol")
    kind = message_type(data)
    r = _Reader(memoryview(data), 1)
    try:
        if kind is MsgType.FRAME_UPDATE:
            msg = FrameUpdate._decode(r, decompressor)
        else:
            msg = _DECODERS[kind]._decode(r)
        r.end()
    except ProtocolError:
        raise
    except (ValueError, struct.error, OverflowError, IndexError, TypeError) as err:
        # Belt and braces: every path above raises ProtocolError itself.
        raise _malformed(f"malformed {kind.name}: {err}") from None
    return msg
