"""Reading and writing websocket messages for the relay, on top of gevent-websocket.

gevent-websocket 0.10.1 accepts the upgrade and hands the view ``environ["wsgi.websocket"]``;
its own ``receive()`` reads a frame of any announced length into memory before looking at it,
swallows every error into ``None``, accepts unmasked client frames, and unmasks with a Python
loop over every byte (about 7 MB/s). :class:`Channel` reads the same socket itself: the message
size limit is enforced from the frame header, before a payload byte is read; errors become
:class:`Closed` with the close code to report; and unmasking is ``relay_ext.unmask``.
:func:`install_fast_unmask` also points gevent-websocket's own ``Header.unmask_payload`` at it,
for any code that still calls ``WebSocket.receive()``.

Called by ``app.relay.agent`` and ``app.relay.viewer``, one channel per connection: one greenlet
reads (``recv``), another writes (``send``); ``send`` and ``close`` may be called from any
greenlet (a lock keeps frames whole).
"""
from __future__ import annotations

import socket
import struct

import gevent
from gevent.lock import Semaphore

from agents.common.protocol import CloseCode

try:
    from relay_ext import unmask as _unmask
except ImportError:  # relay_ext not importable: the same big-integer XOR in plain Python
    _unmask = None


def _unmask_py(payload, mask) -> bytes:
    n = len(payload)
    if not n:
        return b""
    key = (bytes(mask) * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


unmask = _unmask or _unmask_py

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NO_STATUS = 1005
ABNORMAL = 1006
CLOSE_WRITE_TIMEOUT = 2.0


def install_fast_unmask() -> None:
    """Make gevent-websocket's own frame reader unmask with ``relay_ext`` too."""
    from geventwebsocket.websocket import Header

    if getattr(Header.unmask_payload, "_tessera", False):
        return

    def unmask_payload(self, payload):
        return unmask(payload, self.mask)

    unmask_payload._tessera = True
    Header.unmask_payload = unmask_payload
    Header.mask_payload = unmask_payload


class Closed(Exception):
    """The connection is over. ``code`` is the close code (received, or the one we sent)."""

    def __init__(self, code: int, reason: str = ""):
        super().__init__(f"{code} {reason}".strip())
        self.code = code
        self.reason = reason


def _header(opcode: int, length: int) -> bytes:
    first = 0x80 | opcode
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


class Channel:
    """One websocket connection: whole binary messages in and out, bounded in size."""

    def __init__(self, ws, max_message: int):
        self.max_message = max_message
        self._read = ws.stream.read
        self._sock = ws.handler.socket
        self._ws = ws
        self._lock = Semaphore()
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.bytes_in = 0
        self.bytes_out = 0
        self._reader = None  # the greenlet that reads (closing from another one must wake it)
        self._lingered = False
        # Where the peer's bytes stand for linger(): at a frame boundary after `_skip` more
        # bytes (the rest of a refused frame), or lost (None: a frame broken mid-header).
        self._skip: int | None = 0
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a unix socket in some deployments): nothing to tune
            pass

    # ---------------------------------------------------------------- reading
    def _exactly(self, n: int) -> bytes:
        try:
            data = self._read(n)
        except OSError:
            data = b""
        if len(data) != n:
            raise Closed(self.close_code or ABNORMAL, "the connection dropped")
        return data

    def recv(self) -> bytes:
        """The next binary message. Answers pings, and raises :class:`Closed` when the peer
        closes, breaks the framing (1002), sends text (1003) or too much (1009)."""
        if self.closed:
            raise Closed(self.close_code or ABNORMAL, "already closed")
        self._reader = gevent.getcurrent()
        parts: list[bytes] = []
        total = 0
        started = False
        while True:
            self._skip = None  # until this frame's header is whole
            b0, b1 = self._exactly(2)
            fin, opcode, length = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if b0 & 0x70:
                self._fail(CloseCode.PROTOCOL_ERROR, "reserved bits set")
            if not b1 & 0x80:
                self._fail(CloseCode.PROTOCOL_ERROR, "client frames must be masked")
            if opcode >= 0x8 and (not fin or length > 125):
                self._fail(CloseCode.PROTOCOL_ERROR, "bad control frame")
            if length == 126:
                length = struct.unpack("!H", self._exactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._exactly(8))[0]
            if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                if opcode == OP_CONTINUATION and not started:
                    self._fail(CloseCode.PROTOCOL_ERROR, "continuation without a message")
                if opcode != OP_CONTINUATION and started:
                    self._fail(CloseCode.PROTOCOL_ERROR, "a new message inside a fragmented one")
                if opcode == OP_TEXT:
                    self._fail(CloseCode.UNSUPPORTED_DATA, "text messages are not part of the protocol")
                if total + length > self.max_message:
                    self._skip = 4 + length  # its mask and payload, never read
                    self._fail(CloseCode.TOO_BIG,
                               f"messages are limited to {self.max_message} bytes")
            elif opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                self._fail(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode}")
            mask = self._exactly(4)
            payload = unmask(self._exactly(length), mask) if length else b""
            self._skip = 0
            self.bytes_in += length
            if opcode == OP_PING:
                self._send_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else NO_STATUS
                reason = payload[2:].decode("utf-8", "replace")
                self.close(code if code != NO_STATUS else CloseCode.NORMAL, "")
                # The peer closed first: it sends nothing more and waits for us to drop the
                # connection, so there is nothing to linger for.
                self._lingered = True
                raise Closed(code, reason)
            started = True
            parts.append(payload)
            total += length
            if fin:
                return parts[0] if len(parts) == 1 else b"".join(parts)

    def _fail(self, code: int, reason: str):
        self.close(code, reason)
        raise Closed(code, reason)

    # ---------------------------------------------------------------- writing
    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = _header(opcode, len(payload))
        with self._lock:
            if self.closed:
                raise Closed(self.close_code or ABNORMAL, "already closed")
            try:
                if len(payload) < 16384:
                    self._sock.sendall(header + payload)
                else:  # no copy of a large frame just to prepend a few bytes
                    self._sock.sendall(header)
                    self._sock.sendall(payload)
            except OSError:
                self._abort(ABNORMAL, "the connection dropped")
                raise Closed(ABNORMAL, "the connection dropped") from None
        self.bytes_out += len(payload)

    def send(self, data: bytes) -> None:
        """Send one binary message; raises :class:`Closed` when the connection is gone."""
        self._send_frame(OP_BINARY, data)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "", last_message: bytes = b"") -> None:
        """Send ``last_message`` (an ERROR explaining why) and a close frame, when the socket is
        writable within a couple of seconds, and stop reading: a greenlet blocked in ``recv``
        (another than the caller) wakes up with :class:`Closed`. The reading greenlet should
        call :meth:`linger` before it lets the socket go."""
        if self.closed:
            return
        raw = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
        payload = struct.pack("!H", int(code)) + raw
        closing = _header(OP_CLOSE, len(payload)) + payload
        if last_message:
            closing = _header(OP_BINARY, len(last_message)) + last_message + closing
        # A writer stuck on a peer that reads nothing holds the lock; do not wait for it forever.
        if self._lock.acquire(timeout=CLOSE_WRITE_TIMEOUT):
            try:
                if not self.closed:
                    with gevent.Timeout(CLOSE_WRITE_TIMEOUT, False):
                        self._sock.sendall(closing)
            except OSError:
                pass
            finally:
                self._lock.release()
        reading_elsewhere = self._reader is not None and self._reader is not gevent.getcurrent()
        self._abort(code, reason, how=socket.SHUT_RD if reading_elsewhere else None)

    def linger(self, seconds: float = 2.0, budget: int = 2 * 16 * 1024 * 1024) -> None:
        """After closing: read and drop whatever the peer still sends (the rest of an
        oversized message, say) until it closes too. Closing a socket with unread data makes
        the kernel reset the connection, and the peer would lose our close frame and its code."""
        if self._lingered:
            return
        self._lingered = True
        with gevent.Timeout(seconds, False):
            if self._skip is not None:
                self._until_close_frame(budget)
                return
            while budget > 0:  # the framing is lost: drop bytes until the peer hangs up
                try:
                    data = self._sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                budget -= len(data)

    def _until_close_frame(self, budget: int) -> None:
        """Drop the peer's frames until its close frame, which answers ours: it has read what
        we sent (browsers and websocket clients then wait for us to hang up, so waiting for the
        end of the connection as well would only wait out the timeout)."""
        def drop(n: int) -> bool:
            nonlocal budget
            while n > 0 and budget > 0:
                try:
                    data = self._read(min(n, 65536))
                except OSError:
                    return False
                if not data:
                    return False
                n -= len(data)
                budget -= len(data)
            return n == 0

        if not drop(self._skip):
            return
        while budget > 0:
            try:
                head = self._read(2)
            except OSError:
                return
            if len(head) != 2 or head[0] & 0x0F == OP_CLOSE:
                return
            length = head[1] & 0x7F
            extra = {126: 2, 127: 8}.get(length, 0)
            if extra:
                try:
                    raw = self._read(extra)
                except OSError:
                    return
                if len(raw) != extra:
                    return
                length = int.from_bytes(raw, "big")
            if not drop(length + (4 if head[1] & 0x80 else 0)):
                return

    def _abort(self, code: int, reason: str, how=socket.SHUT_RDWR) -> None:
        if not self.closed:
            self.closed = True
            self.close_code = int(code)
            self.close_reason = reason
        if how is not None:
            try:
                self._sock.shutdown(how)
            except OSError:
                pass
        # gevent-websocket must not try to send its own close frame afterwards.
        self._ws.closed = True
