"""What the relay benchmarks share: a real ``tessera run`` (through ``tests/relay_harness.py``)
with a technician signed in and a device enrolled, a websockify subprocess as the peer, and
process figures read from ``/proc`` (resident memory, CPU time, open file limit), and
:class:`RawWebsocket`, a client cheap enough not to be what a throughput figure measures.

Called by ``bench/relay.py``, ``bench/slow_viewer.py`` and ``bench/idle_agents.py`` (run as
scripts, so they import it as ``live`` with ``bench/`` on ``sys.path``). Importing it puts the
repository on ``sys.path`` (through ``common``).
"""
from __future__ import annotations

import argparse
import base64
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import common  # noqa: F401  (the repository on sys.path, a throw-away secret key)

from tests.relay_harness import RelayServer, free_port, relay_server_process, stop_process

TICKS = os.sysconf("SC_CLK_TCK")


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", action="store_true", help="JSON output (the only kind)")
    return parser


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def raise_open_files() -> tuple[int, int]:
    """Raise this process's open-file limit to its hard limit; (soft, hard) afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def open_files_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise RuntimeError(f"no open-file limit for process {pid}")


@dataclass
class Stage:
    """A running relay with what a viewer needs: a device, a signed-in technician."""

    server: RelayServer
    account_id: int
    device_id: int
    token: str
    http: object  # the technician's signed-in requests.Session

    @property
    def pid(self) -> int:
        return self.server.process.pid

    @property
    def cookie(self) -> str:
        """The technician's session as a Cookie header value."""
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def agent(self):
        """A programmatic agent (tests/relay_harness.FakeAgent) of the device, no size limit."""
        return self.server.agent(self.token, max_size=None)

    def viewer(self, query: str = "", via: str | None = None):
        return self.server.viewer(self.device_id, self.http, query, via=via)


@contextmanager
def relay_stage(**extra_env):
    """``tessera run`` on a scratch SQLite database, an account with a technician allowed to
    view, one enrolled device; everything removed afterwards."""
    workdir = tempfile.mkdtemp(prefix="tessera-bench-")
    try:
        with relay_server_process(Path(workdir), popen_kw={"preexec_fn": raise_open_files},
                                  **extra_env) as server:
            account_id, tech, _ = server.account()
            device = server.device(account_id)
            yield Stage(server, account_id, device.id, device.token, server.sign_in(tech.username))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def listening(port: int) -> bool:
    """Whether a socket listens on TCP ``port`` (from /proc/net/tcp, without connecting)."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


@contextmanager
def websockify(target_port: int):
    """websockify (the proxy noVNC uses) forwarding one websocket connection to
    127.0.0.1:``target_port`` in its own process (``--run-once``: no fork per connection, so
    its memory and CPU are this process's); yields (websocket URL, pid)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "websockify", "--run-once",
                                f"127.0.0.1:{port}", f"127.0.0.1:{target_port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not listening(port):  # not by connecting: that would use up its one connection
            if process.poll() is not None:
                raise RuntimeError(f"websockify exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("websockify did not start listening")
            time.sleep(0.1)
        yield f"ws://127.0.0.1:{port}/", process.pid
    finally:
        stop_process(process, 5)


class RawWebsocket:
    """A websocket client that costs next to nothing, so that a throughput benchmark measures
    the proxy and not its clients: whole binary messages out (masked with an all-zero key,
    which RFC 6455 framing allows; the server still unmasks every byte), messages in read
    straight into one reusable buffer. No fragmentation, no extensions; used by
    ``bench/relay.py`` for the agent, the viewer and websockify's client alike."""

    def __init__(self, url: str, headers: dict | None = None, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
                 f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the websocket handshake")
            answer += chunk
        head, self._pending = answer.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"no websocket upgrade: {head[:200]!r}")
        self.buffer = bytearray(1 << 20)

    def send(self, data: bytes) -> None:
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x82, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x82, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x82, 0x80 | 127, n)
        head += bytes(4)  # the mask key
        if n < 16384:
            self.sock.sendall(head + data)
        else:
            self.sock.sendall(head)
            self.sock.sendall(data)

    def _read_into(self, view: memoryview) -> None:
        filled = 0
        if self._pending:
            filled = min(len(self._pending), len(view))
            view[:filled] = self._pending[:filled]
            self._pending = self._pending[filled:]
        while filled < len(view):
            n = self.sock.recv_into(view[filled:])
            if not n:
                raise ConnectionError("the connection closed")
            filled += n

    def recv(self) -> memoryview:
        """The next data message's payload, valid until the next call; a close frame raises
        ConnectionError, a ping is answered."""
        head = memoryview(bytearray(10))
        while True:
            self._read_into(head[:2])
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                self._read_into(head[2:4])
                n = struct.unpack_from("!H", head, 2)[0]
            elif n == 127:
                self._read_into(head[2:10])
                n = struct.unpack_from("!Q", head, 2)[0]
            if n > len(self.buffer):
                self.buffer = bytearray(n)
            payload = memoryview(self.buffer)[:n]
            self._read_into(payload)
            if opcode == 0x8:
                raise ConnectionError(f"closed by the server: {bytes(payload[:2]).hex()}")
            if opcode == 0x9:
                self.sock.sendall(struct.pack("!BB", 0x8A, 0x80 | n) + bytes(4) + payload)
            elif opcode != 0xA:
                return payload

    def close(self) -> None:
        self.sock.close()
