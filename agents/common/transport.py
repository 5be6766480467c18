"""How an agent reaches the relay: a message transport it is given, and the reconnect backoff.

The Host agent (``agents.host.agent``) never opens a socket itself; it asks a
:class:`Transport` for a :class:`Connection` to the relay. The default is
:class:`WebsocketTransport` (binary websocket messages, ``Authorization: Bearer <token>``,
TCP_NODELAY, pings, a maximum message size); tests inject their own transport, or the default
one pointed at a real server on a loopback port. Message formats are ``docs/protocol.md``'s
(``agents.common.protocol``); this module only moves bytes.
"""
from __future__ import annotations

import inspect
import random
import socket
import threading
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

# Larger than any message the relay sends an agent (input, clipboard, control); the relay's
# own limit on what agents send is in docs/protocol.md.
MAX_INBOUND = 4 * 1024 * 1024


class TransportClosed(Exception):
    """The connection ended. ``code`` is the websocket close code (None when the connection
    was never opened or dropped without a close frame); ``reason`` the peer's text.
    ``status`` is the HTTP status when the relay refused the upgrade itself."""

    def __init__(self, code: int | None, reason: str = "", status: int | None = None):
        self.code, self.reason, self.status = code, reason, status
        super().__init__(f"connection closed (code {code}, status {status}): {reason}")


class Connection(Protocol):
    def send(self, data: bytes) -> None: ...
    def recv(self, timeout: float | None = None) -> bytes | None:
        """The next binary message, None on timeout; raises :class:`TransportClosed`."""
    def close(self, code: int = 1000, reason: str = "") -> None: ...


class Transport(Protocol):
    def connect(self, url: str, token: str) -> Connection:
        """Open a connection; raises :class:`TransportClosed` when that is not possible."""


class WebsocketConnection:
    """One websocket (``websockets``' threaded client): ``send`` may be called from the
    capture thread while another thread waits in ``recv``; the library serialises writes."""

    def __init__(self, ws):
        self._ws = ws
        self._send_lock = threading.Lock()

    def send(self, data: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            with self._send_lock:
                self._ws.send(bytes(data) if not isinstance(data, bytes) else data)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    def recv(self, timeout: float | None = None) -> bytes | None:
        from websockets.exceptions import ConnectionClosed

        try:
            message = self._ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except ConnectionClosed as exc:
            raise _closed(exc) from None
        if isinstance(message, str):
            # Text frames are not part of the protocol: answer as docs/protocol.md says.
            self.close(1003, "text messages are not part of the protocol")
            raise TransportClosed(1003, "the relay sent a text message")
        return message

    def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            self._ws.close(code, reason)
        except Exception:  # noqa: BLE001 - closing a broken socket is best effort
            pass


def _closed(exc) -> TransportClosed:
    received = exc.rcvd
    if received is not None:
        return TransportClosed(received.code, received.reason)
    return TransportClosed(None, "the connection dropped without a close frame")


class WebsocketTransport:
    def __init__(self, *, open_timeout: float = 10.0, ping_interval: float = 25.0,
                 max_size: int = MAX_INBOUND, ssl_context=None):
        self.open_timeout, self.ping_interval = open_timeout, ping_interval
        self.max_size, self.ssl_context = max_size, ssl_context

    def connect(self, url: str, token: str) -> WebsocketConnection:
        from websockets.exceptions import InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        try:
            sock = socket.create_connection((parts.hostname, port), timeout=self.open_timeout)
        except OSError as exc:
            raise TransportClosed(None, f"cannot reach {parts.hostname}:{port}: {exc}") from None
        # Small input and frame messages must not wait for Nagle.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl = self.ssl_context
        if parts.scheme == "wss" and ssl is None:
            import ssl as ssl_module

            ssl = ssl_module.create_default_context()
        # websockets 17 warns about calling connect() outside a ``with`` unless asked for the
        # plain connection explicitly; older versions have no such flag.
        extra = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
        try:
            ws = connect(url, sock=sock, ssl=ssl if parts.scheme == "wss" else None,
                         additional_headers={"Authorization": f"Bearer {token}"},
                         compression=None,  # frames are zstd-compressed already
                         open_timeout=self.open_timeout, ping_interval=self.ping_interval,
                         ping_timeout=self.ping_interval, close_timeout=5,
                         max_size=self.max_size, proxy=None,
                         user_agent_header="tessera-agent", **extra)
        except InvalidStatus as exc:
            sock.close()
            status = exc.response.status_code
            body = exc.response.body.decode("utf-8", "replace")[:300] if exc.response.body else ""
            raise TransportClosed(None, body or f"HTTP {status}", status=status) from None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            sock.close()
            raise TransportClosed(None, f"websocket handshake failed: {exc}") from None
        return WebsocketConnection(ws)


@dataclass
class Backoff:
    """Jittered exponential backoff between ``first`` and ``cap`` seconds: each failure
    doubles the ceiling, and the delay is drawn from the upper half of it, so a relay restart
    does not get every agent back in the same second, yet no agent waits longer than ``cap``."""

    first: float = 1.0
    cap: float = 30.0
    rng: random.Random | None = None
    failures: int = 0

    def next_delay(self) -> float:
        rng = self.rng or random
        ceiling = min(self.cap, self.first * (2 ** min(self.failures, 32)))
        self.failures += 1
        return max(self.first, rng.uniform(ceiling / 2, ceiling))

    def slow_delay(self) -> float:
        """For waiting on a person (a pending device): near the cap, still jittered."""
        rng = self.rng or random
        return rng.uniform(self.cap * 0.75, self.cap)

    def reset(self) -> None:
        self.failures = 0
