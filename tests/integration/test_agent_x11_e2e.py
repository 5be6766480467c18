"""End to end: Xvfb + a real ``tessera-agent`` process + the real server (``tessera run``) + a
programmatic viewer (a signed-in technician's websocket, tests/integration/relay_world.py).

The agent enrols with a deployment package's key, connects to the relay, and the viewer sees
the exact pixels of the X screen after xsetroot changes it; a click and a key the viewer sends
arrive in a real X window (xev); the agent comes back by itself after a server restart; a
revoked device's agent stops and says why.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.common import protocol as p
from tests.fixtures_live import ROOT, _wait_until_up, free_port
from tests.integration.relay_world import RelayServer, wait_for
from tests.integration.test_agent_x11 import Xev
from tests.x11_harness import AgentProcess, enrolment_key, screen_now, stop_process

pytest.importorskip("websockets")


class Server:
    """``tessera run`` on a fixed port and its own database, which can be restarted."""

    def __init__(self, tmp: Path):
        from app import create_app
        from app.config import TestConfig
        from app.extensions import db

        self.tmp = tmp
        self.engine = self.schema = None
        if os.environ.get("TESSERA_TEST_DATABASE") == "postgres":
            from tests.conftest import _postgres_schema_url

            self.engine, self.schema, url = _postgres_schema_url()
        else:
            url = f"sqlite:///{tmp / 'relay.db'}"
        self.app = create_app(TestConfig(SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=str(tmp / "instance")))
        with self.app.app_context():
            db.create_all()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "TESSERA_INSTANCE": str(tmp / "instance"),
                    "TESSERA_DATABASE_URL": url, "TESSERA_BASE_URL": self.url,
                    "TESSERA_RELAY_NODE": "agent-e2e-node",
                    "TESSERA_ARGON2_TIME_COST": "1", "TESSERA_ARGON2_MEMORY_COST": "1024"}
        self.process = None
        self.relay = RelayServer(self.url, self.app, None, tmp / "server.log")

    def start(self) -> None:
        self.log = open(self.tmp / "server.log", "a")
        self.process = subprocess.Popen([sys.executable, "-m", "app", "run", "--port", str(self.port)],
                                        env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.relay.process = self.process
        _wait_until_up(self.url, self.process)

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process)
        self.process = None
        self.log.close()

    def dispose(self) -> None:
        from sqlalchemy import text

        from app.extensions import db

        self.stop()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        if self.engine is not None:
            with self.engine.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            self.engine.dispose()


@pytest.fixture
def world(xvfb, tmp_path):
    if shutil.which("xsetroot") is None:
        pytest.skip("xsetroot not installed (scripts/install-system-deps)")
    server = Server(tmp_path)
    server.start()
    agents = []

    def start_agent(enrolment_state="enrolled"):
        key, package_id = enrolment_key(server.app, account_id, enrolment_state)
        agent = AgentProcess(server, key, xvfb.display, tmp_path)
        agent.package_id = package_id
        agents.append(agent)
        return agent

    account_id, tech, assignment_id = server.relay.account()
    world = type("World", (), {})()
    world.assignment_id = assignment_id
    world.server, world.relay, world.xvfb, world.account_id, world.tech = server, server.relay, xvfb, account_id, tech
    world.start_agent = start_agent
    try:
        yield world
    finally:
        for agent in agents:
            agent.stop()
        server.dispose()


def open_viewer(world, device_id):
    viewer = world.relay.viewer(device_id, world.relay.sign_in(world.tech.username))
    greeting = viewer.start()
    return viewer, greeting


def wait_for_agent(agent, predicate, timeout: float, message: str):
    """``wait_for``; when it gives up, it says what the agent had logged by then and whether it
    still runs (a message built before the wait would show the log from before it)."""
    try:
        return wait_for(predicate, timeout, message=message)
    except AssertionError as late:
        code = agent.process.poll()
        running = "is still running" if code is None else f"exited with {code}"
        raise AssertionError(f"{late} (the agent {running}); its log:\n{agent.output()}") from None


def wait_online(world, device_id, agent):
    wait_for_agent(agent, lambda: world.relay.device_row(device_id).online, 20,
                   "the device to be online")


def viewer_shows(viewer, expected: bytes, timeout=15.0) -> None:
    """Read updates until the viewer's framebuffer of screen 0 is exactly ``expected``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if viewer.frames.get(0) == expected:
            return
        try:
            viewer.recv(timeout=0.5)
        except TimeoutError:
            pass
    frame = viewer.frames.get(0) or b""
    differing = sum(1 for i in range(0, min(len(frame), len(expected)), 4) if frame[i:i + 4] != expected[i:i + 4])
    raise AssertionError(f"the viewer's screen differs from the X screen in {differing} pixels")


def test_viewer_sees_the_exact_x_screen_and_its_click_and_key_arrive_in_an_x_window(world):
    xvfb = world.xvfb
    xvfb.run("xsetroot", "-solid", "#336699")
    agent = world.start_agent()
    device_id = agent.device_id()
    wait_online(world, device_id, agent)
    row = world.relay.device_row(device_id)
    assert row.agent_version and row.os and row.logged_in_user  # reported in HELLO

    viewer, greeting = open_viewer(world, device_id)
    assert greeting["state"].online
    info = viewer.expect(p.ScreenInfo)
    assert [(m.width, m.height, m.primary) for m in info.monitors] == [(1280, 800, True)]
    viewer_shows(viewer, b"\x33\x66\x99\xff" * (1280 * 800))

    xvfb.run("xsetroot", "-solid", "#aa5500")
    viewer_shows(viewer, b"\xaa\x55\x00\xff" * (1280 * 800))

    xev = Xev(xvfb, x=400, y=300, w=240, h=160)
    try:
        viewer_shows(viewer, screen_now(xvfb.display))  # the xev window too, pixel for pixel
        viewer.send(p.Pointer(screen=0, x=520, y=380, buttons=1))
        viewer.send(p.Pointer(screen=0, x=520, y=380, buttons=0))
        xev.expect(r"ButtonPress event", timeout=10)
        xev.expect(r"root:\(520,380\)")  # where the viewer clicked
        xev.expect(r"button 1,")
        viewer.send(p.Key(0x71, True))  # q
        viewer.send(p.Key(0x71, False))
        xev.expect(r"keysym 0x71, q\)", timeout=10)
    finally:
        xev.close()
    viewer.close()


def keys_down(display) -> int:
    """How many keys the X server has down now (XQueryKeymap)."""
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    try:
        return sum(bin(byte).count("1") for byte in d.query_keymap())
    finally:
        d.close()


def test_keys_a_viewer_left_down_are_released_when_it_leaves_or_loses_keyboard_and_mouse(world):
    agent = world.start_agent()
    device_id = agent.device_id()
    wait_online(world, device_id, agent)
    assert keys_down(world.xvfb.display) == 0

    viewer, _ = open_viewer(world, device_id)
    viewer.send(p.Key(0xFFE1, True))  # Shift_L down, and the viewer goes away
    wait_for(lambda: keys_down(world.xvfb.display) == 1, 10, message="Shift to be down on the X server")
    viewer.close()
    wait_for(lambda: keys_down(world.xvfb.display) == 0, 10, message="Shift to be released")

    viewer, _ = open_viewer(world, device_id)
    viewer.send(p.Key(0xFFE3, True))  # Control_L down, then the permission goes
    wait_for(lambda: keys_down(world.xvfb.display) == 1, 10, message="Control to be down on the X server")
    world.relay.grant(world.account_id, ("remote_session", "view_screen"))
    world.relay.set_assignment_active(world.assignment_id, False)
    wait_for(lambda: keys_down(world.xvfb.display) == 0, 10, message="Control to be released")
    viewer.close()


def test_agent_comes_back_by_itself_after_a_server_restart(world):
    world.xvfb.run("xsetroot", "-solid", "#123456")
    agent = world.start_agent()
    device_id = agent.device_id()
    wait_online(world, device_id, agent)

    world.server.stop()
    time.sleep(1.0)
    world.server.start()
    wait_for_agent(agent, lambda: "connected to" in agent.output().split("disconnected", 1)[-1], 40,
                   "the agent to reconnect")
    wait_online(world, device_id, agent)
    viewer, greeting = open_viewer(world, device_id)
    assert greeting["state"].online
    viewer.expect(p.ScreenInfo)
    viewer_shows(viewer, b"\x12\x34\x56\xff" * (1280 * 800))
    assert agent.process.poll() is None
    viewer.close()


def test_pending_device_waits_for_an_administrator_without_going_online(world):
    agent = world.start_agent(enrolment_state="pending")
    device_id = agent.device_id()
    wait_for_agent(agent, lambda: "waits for an administrator to Enroll it" in agent.output(), 20,
                   "the agent to report waiting")
    assert agent.process.poll() is None
    assert not world.relay.device_row(device_id).online


def test_revoked_device_agent_stops_saying_why(world):
    agent = world.start_agent()
    device_id = agent.device_id()
    wait_online(world, device_id, agent)
    world.relay.revoke_package(world.account_id, agent.package_id)
    assert agent.process.wait(30) == 3
    assert "revoked" in agent.output()
    assert (agent.state_dir / "revoked").exists()
    assert not (agent.state_dir / "device-token").exists()
