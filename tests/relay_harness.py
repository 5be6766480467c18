"""A real relay to drive from outside: ``tessera run`` in a subprocess on its own database,
the means to set up accounts, technicians, permissions and devices in that database and to sign
in over HTTP, and programmatic agents and viewers speaking docs/protocol.md over real websockets.

No pytest here, so the benchmarks (``bench/relay.py``, ``bench/slow_viewer.py``,
``bench/idle_agents.py``) use it as the tests do: ``tests/integration/relay_world.py`` wraps
:func:`relay_server_process` in its fixtures, and ``tests/fixtures_live.py`` takes
:func:`free_port` and :func:`wait_until_up` from here.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import text

from agents.common import protocol as p

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process, timeout=30.0):
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tessera run exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the live server did not come up")


PASSWORD = "Correct-Horse-9"


@dataclass
class Technician:
    username: str
    user_id: int
    account_id: int


@dataclass
class EnrolledDevice:
    id: int
    token: str
    hostname: str
    package_id: int


class RelayServer:
    def __init__(self, url: str, app, process, log_path):
        self.url = url
        self.ws_url = url.replace("http://", "ws://")
        self.app = app  # bound to the server's database: set-up and assertions
        self.process = process
        self.log_path = log_path

    # ------------------------------------------------------------------ set-up
    def account(self, permissions=("remote_session", "view_screen", "keyboard_mouse", "clipboard",
                                   "remote_management")) -> tuple[int, Technician, int]:
        """A fresh account, a technician in it, and an active assignment (Everyone x Everything)
        of a device role with ``permissions``. Returns (account id, technician, assignment id)."""
        from app.models import UserType
        from app.users.services import create_account, create_user

        with self.app.app_context():
            account = create_account(f"Relay {uuid.uuid4().hex[:8]}",
                                     f"owner-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
            membership = create_user(account, f"tech-{uuid.uuid4().hex[:8]}@example.com",
                                     PASSWORD, UserType.user, first_name="Tina", last_name="Tech")
            tech = Technician(membership.user.username, membership.user.id, account.id)
            assignment_id = self.grant(account.id, permissions) if permissions else 0
            return account.id, tech, assignment_id

    def grant(self, account_id: int, permissions, client_types=("browser",)) -> int:
        """One more role (used from ``client_types``) + active assignment for everyone on
        everything; its id."""
        from app.assignments.services import AssignmentValues, create_assignment
        from app.models import RoleType
        from app.roles.services import RoleInput, create_role

        with self.app.app_context():
            name = f"Role {uuid.uuid4().hex[:6]}"
            role = create_role(account_id, RoleInput(name, RoleType.device,
                                                     permissions=list(permissions),
                                                     client_types=list(client_types)))
            return create_assignment(account_id, AssignmentValues(
                name=f"Assign {name}", role_id=role.id, everyone=True, everything=True)).id

    def set_assignment_active(self, assignment_id: int, active: bool) -> None:
        from app.extensions import db
        from app.models import Assignment

        with self.app.app_context():
            db.session.get(Assignment, assignment_id).active = active
            db.session.commit()

    def device(self, account_id: int, enrolled: bool = True, hostname: str | None = None) -> EnrolledDevice:
        """A device enrolled through the real enrolment API with a new package's key; Enroll
        by an administrator unless ``enrolled`` is False (it stays pending)."""
        from app.devices.services import enroll_devices
        from app.downloads.services import PackageData, create_package

        hostname = hostname or f"pc-{uuid.uuid4().hex[:6]}"
        with self.app.app_context():
            package = create_package(account_id, PackageData(name=f"Pkg {uuid.uuid4().hex[:6]}"))
            package_id, key = package.id, package.enrollment_key
        answer = requests.post(f"{self.url}/api/v1/agent/enroll", json={
            "enrollment_key": key, "hostname": hostname, "os": "Debian GNU/Linux 12",
            "agent_version": "0.1.0", "hardware_id": uuid.uuid4().hex}, timeout=10)
        assert answer.status_code in (200, 201), answer.text
        body = answer.json()
        if enrolled:
            with self.app.app_context():
                enroll_devices(account_id, [body["device_id"]])
        return EnrolledDevice(body["device_id"], body["device_token"], hostname, package_id)

    def revoke_package(self, account_id: int, package_id: int) -> None:
        from app.downloads.services import revoke_package

        with self.app.app_context():
            revoke_package(account_id, package_id, "revoke")

    def device_row(self, device_id: int):
        from app.extensions import db
        from app.models import Device

        with self.app.app_context():
            device = db.session.get(Device, device_id)
            db.session.expunge(device)
            return device

    def audit(self, account_id: int, action: str) -> list:
        from sqlalchemy import select

        from app.extensions import db
        from app.models import AuditEvent

        with self.app.app_context():
            rows = db.session.scalars(select(AuditEvent).where(
                AuditEvent.account_id == account_id, AuditEvent.action == action)
                .order_by(AuditEvent.id)).all()
            for row in rows:
                db.session.expunge(row)
            return rows

    # ------------------------------------------------------------------ people and agents
    def sign_in(self, username: str) -> requests.Session:
        http = requests.Session()
        page = http.get(f"{self.url}/login", timeout=10).text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        http.post(f"{self.url}/login", data={"csrf_token": token, "username": username}, timeout=10)
        done = http.post(f"{self.url}/login/password",
                         data={"csrf_token": token, "password": PASSWORD}, timeout=30)
        assert done.status_code == 200 and "/login" not in done.url, f"sign-in failed: {done.url}"
        return http

    def agent(self, token: str | None, **kw) -> "FakeAgent":
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return FakeAgent(_connect(f"{self.ws_url}/relay/agent", headers, **kw))

    def viewer(self, device_id: int, http: requests.Session | None, query: str = "",
               headers: dict | None = None, via: str | None = None) -> "Viewer":
        """A viewer of ``device_id`` signed in with ``http``'s cookies; ``via`` is another
        ``ws://host:port`` to connect to instead of the server's (a proxy in front of it)."""
        headers = dict(headers or {})
        if http is not None:
            headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        base = via or self.ws_url
        return Viewer(_connect(f"{base}/relay/devices/{device_id}/view{query}", headers))


def _connect(url: str, headers: dict, max_size=None):
    from websockets.sync.client import connect

    return connect(url, additional_headers=headers, max_size=max_size, open_timeout=10,
                   close_timeout=5, compression=None, legacy=True)


def send_expecting_close(ws, data, timeout: float = 5.0) -> int:
    """Send ``data`` that the relay refuses part-way (it closes before reading it all); the
    close code it sent."""
    from websockets.exceptions import ConnectionClosed

    try:
        ws.send(data)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006
    return close_code(ws, timeout)


def close_code(ws, timeout: float = 5.0) -> int:
    """Read until the relay closes the connection; its close code."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006
    except TimeoutError:
        pass
    raise AssertionError(f"the connection was still open after {timeout}s")


class _Peer:
    def __init__(self, ws):
        self.ws = ws
        self.decompressor = p.StreamDecompressor()

    def send(self, msg) -> None:
        self.ws.send(msg if isinstance(msg, (bytes, bytearray)) else msg.encode())

    def recv(self, timeout: float = 5.0):
        return p.decode(self.ws.recv(timeout=timeout), self.decompressor)

    def expect(self, kind, timeout: float = 5.0, skip=(p.Ping, p.Pong, p.Status, p.Cursor)):
        """The next message of type ``kind``, skipping pings; anything else fails the test."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if isinstance(msg, kind):
                return msg
            if not isinstance(msg, skip):
                raise AssertionError(f"expected {kind.__name__}, got {msg!r}"[:300])

    def quiet(self, seconds: float, kinds=None) -> list:
        """Everything received during ``seconds`` (of ``kinds`` when given)."""
        out = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                msg = self.recv(left)
            except TimeoutError:
                return out
            if kinds is None or isinstance(msg, kinds):
                out.append(msg)

    def sync(self) -> None:
        """Wait until the relay has handled everything sent so far (it answers in order)."""
        nonce = int(time.monotonic() * 1e6)
        self.send(p.Ping(nonce))
        while self.expect(p.Pong).nonce != nonce:
            pass

    def close(self) -> None:
        self.ws.close()

    @property
    def close_code(self) -> int:
        return close_code(self.ws)


class FakeAgent(_Peer):
    """An agent driven by the test: it keeps its own RGBA framebuffer per screen, so what the
    viewer ends up with can be compared with what the agent "showed"."""

    def __init__(self, ws):
        super().__init__(ws)
        self.compressor = p.StreamCompressor()
        self.seq = 0
        self.screens: dict[int, tuple[int, int]] = {}
        self.frames: dict[int, bytearray] = {}

    def expect(self, kind, timeout: float = 5.0,
               skip=(p.Ping, p.Pong, p.Ack, p.Session, p.RequestKeyframe)):
        return super().expect(kind, timeout, skip)

    def acked(self, seq: int, timeout: float = 5.0) -> None:
        """Wait for the relay's ACK of update ``seq``."""
        deadline = time.monotonic() + timeout
        while self.expect(p.Ack, max(0.01, deadline - time.monotonic())).seq != seq:
            pass

    def hello(self, hostname="pc-1", user="ann", os_name="Debian GNU/Linux 12", **kw) -> None:
        self.send(p.Hello(agent_version="0.1.0", os=os_name, hostname=hostname, user=user, **kw))

    def screen_info(self, *sizes) -> None:
        sizes = sizes or ((160, 100),)
        monitors, x = [], 0
        for i, (w, h) in enumerate(sizes):
            monitors.append(p.Monitor(i, x, 0, w, h, primary=i == 0))
            self.screens[i] = (w, h)
            self.frames[i] = bytearray(w * h * 4)
            x += w
        self.send(p.ScreenInfo(tuple(monitors)))

    def update(self, rects, screen=0, keyframe=False, compress=True) -> int:
        w, h = self.screens[screen]
        p.apply_rects(self.frames[screen], w, h, rects)
        self.seq += 1
        update = p.FrameUpdate(screen, self.seq, tuple(rects), keyframe)
        self.send(update.encode(self.compressor if compress else None))
        return self.seq

    def keyframe(self, screen=0, seed=1) -> int:
        w, h = self.screens[screen]
        return self.update([p.RawRect(0, 0, w, h, noise(w * h * 4, seed))], screen, keyframe=True)


class Viewer(_Peer):
    """A viewer that paints what it receives and (unless told not to) acks every frame."""

    def __init__(self, ws):
        super().__init__(ws)
        self.auto_ack = True
        self.screens: dict[int, tuple[int, int]] = {}
        self.frames: dict[int, bytearray] = {}
        self.updates: list[p.FrameUpdate] = []

    def recv(self, timeout: float = 5.0):
        msg = super().recv(timeout)
        if isinstance(msg, p.ScreenInfo):
            for m in msg.monitors:
                if self.screens.get(m.id) != (m.width, m.height):
                    self.screens[m.id] = (m.width, m.height)
                    self.frames[m.id] = bytearray(m.width * m.height * 4)
        elif isinstance(msg, p.FrameUpdate):
            w, h = self.screens[msg.screen]
            p.apply_rects(self.frames[msg.screen], w, h, msg.rects)
            self.updates.append(msg)
            if self.auto_ack:
                self.send(p.Ack(msg.seq))
        return msg

    def expect(self, kind, timeout: float = 5.0,
               skip=(p.Ping, p.Pong, p.Status, p.Cursor, p.ScreenInfo)):
        return super().expect(kind, timeout, skip)

    def start(self) -> dict:
        """Read the greeting: WELCOME, PERMISSIONS, DEVICE_STATE (and, when the device is
        online, its SCREEN_INFO). Returns them by name."""
        got = {"welcome": self.expect(p.Welcome), "permissions": self.expect(p.Permissions),
               "state": self.expect(p.DeviceState)}
        return got


def noise(size: int, seed: int) -> bytes:
    import hashlib

    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def wait_for(predicate, timeout: float = 5.0, every: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{message}: not true within {timeout}s")


@contextmanager
def relay_server_process(workdir: Path, popen_kw: dict | None = None, **extra_env):
    """``tessera run`` on a free port with a database of its own (a SQLite file in ``workdir``,
    or a fresh PostgreSQL schema with TESSERA_TEST_DATABASE=postgres); yields a
    :class:`RelayServer` and stops the server afterwards. ``extra_env`` adds TESSERA_* settings,
    ``popen_kw`` more arguments for ``subprocess.Popen`` (a ``preexec_fn`` raising limits)."""
    from app import create_app
    from app.config import TestConfig
    from app.extensions import db

    workdir = Path(workdir)
    engine = schema = None
    if os.environ.get("TESSERA_TEST_DATABASE") == "postgres":
        from tests.conftest import _postgres_schema_url

        engine, schema, url = _postgres_schema_url()
    else:
        url = f"sqlite:///{workdir / 'relay.db'}"
    app = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=str(workdir / "instance")))
    with app.app_context():
        db.create_all()
    port = free_port()
    env = {**os.environ,
           "TESSERA_INSTANCE": str(workdir / "instance"),
           "TESSERA_DATABASE_URL": url,
           "TESSERA_BASE_URL": f"http://127.0.0.1:{port}",
           "TESSERA_RELAY_NODE": "relay-test-node",
           "TESSERA_ARGON2_TIME_COST": "1",
           "TESSERA_ARGON2_MEMORY_COST": "1024",
           **extra_env}
    log_path = workdir / "server.log"
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "app", "run", "--port", str(port)],
                               env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               **(popen_kw or {}))
    server_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server_url, process)
        yield RelayServer(server_url, app, process, log_path)
    finally:
        stop_process(process)
        log.close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if engine is not None:
            with engine.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()


def stop_process(process, timeout: float = 10.0) -> None:
    """Terminate ``process`` and reap it, killing it when it does not stop in ``timeout``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
