"""An X server and the real Host agent to drive from outside: Xvfb on a free display, what
its screen shows now, and a ``tessera-agent`` process enrolled against a running server.

No pytest here, so ``bench/wire.py`` uses it as the tests do: ``tests/fixtures_live.py`` wraps
:func:`start_xvfb` in the ``xvfb`` fixture, and ``tests/integration/test_agent_x11_e2e.py``
starts :class:`AgentProcess` and compares viewers with :func:`screen_now`.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.relay_harness import ROOT, stop_process, wait_for  # noqa: F401 - stop_process: re-exported


class XServer:
    """A running Xvfb: ``display`` (e.g. ``":7"``), its ``env`` for child processes, and
    ``run(*args)`` for X clients (xsetroot, xdotool, ...)."""

    def __init__(self, display: str, process):
        self.display, self.process = display, process
        self.env = {**os.environ, "DISPLAY": display}

    def run(self, *args: str, timeout: float = 20.0) -> str:
        done = subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"{args[0]} failed: {done.stderr}"
        return done.stdout

    def stop(self) -> None:
        stop_process(self.process)


def free_display() -> int:
    """A display number with neither a lock file nor a socket (several Xvfbs run in parallel
    under pytest-xdist, and other benchmarks may run beside this one)."""
    for number in random.Random().sample(range(20, 600), 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return number
    raise RuntimeError("no free X display number")


def _x_accepts(socket_path: Path, process, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(socket_path))
                return True
            except OSError:
                time.sleep(0.05)
    return False


def start_xvfb(screen: str = "1280x800x24") -> XServer:
    """``Xvfb :N -screen 0 <screen>`` on a free display; the caller stops it. ``-noreset``:
    without it Xvfb resets (root background and all) whenever its last client disconnects,
    e.g. right after ``xsetroot`` exits."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise FileNotFoundError("Xvfb is not installed (Debian: apt install xvfb; scripts/install-system-deps)")
    for _ in range(5):
        number = free_display()
        process = subprocess.Popen([binary, f":{number}", "-screen", "0", screen,
                                    "-noreset", "-nolisten", "tcp"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _x_accepts(Path(f"/tmp/.X11-unix/X{number}"), process):
            return XServer(f":{number}", process)
        stop_process(process)
    raise RuntimeError("Xvfb did not start on any of five display numbers")


def screen_now(display: str) -> bytes:
    """The whole (single-monitor) X screen as RGBA, captured the way the agent captures it."""
    import relay_ext
    from agents.host.capture import X11Capture

    capture = X11Capture(display)
    try:
        [screen] = capture.screens()
        return relay_ext.bgra_to_rgba(bytes(capture.grab(screen)))
    finally:
        capture.close()


def enrolment_key(app, account_id: int, enrolment_state: str = "enrolled") -> tuple[str, int]:
    """A new Linux deployment package of the account in ``app``'s database: (its enrolment
    key, its id). Agents enrolling with it start ``enrolment_state`` (enrolled or pending)."""
    from app.downloads.services import PackageData, create_package
    from app.models import EnrolmentState

    with app.app_context():
        package = create_package(account_id, PackageData(
            name=f"Linux {uuid.uuid4().hex[:6]}", enrolment_state=EnrolmentState(enrolment_state)))
        return package.enrollment_key, package.id


class AgentProcess:
    """``tessera-agent`` (the console script when installed, else ``python -m agents.host``)
    enrolling with ``key`` at ``server.url`` and capturing ``display``."""

    def __init__(self, server, key: str, display: str, tmp: Path):
        self.state_dir = tmp / "agent-state"
        self.log_path = tmp / "agent.log"
        script = Path(sys.executable).parent / "tessera-agent"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "agents.host"]
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command + ["--server", server.url, "--enroll-key", key, "--state-dir", str(self.state_dir),
                       "--display", display, "--hardware-id", uuid.uuid4().hex],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "DISPLAY": display})

    def device_id(self, timeout=90.0) -> int:  # generous: CI machines are shared and loaded
        meta = self.state_dir / "device.json"
        try:
            wait_for(meta.exists, timeout, message="the agent to enrol")
        except AssertionError as missing:  # say what the agent said by then, and whether it runs
            raise AssertionError(f"{missing} (the agent {self._state()}); its log:\n{self.output()}") from None
        return json.loads(meta.read_text())["device_id"]

    def _state(self) -> str:
        code = self.process.poll()
        return "is still running" if code is None else f"exited with {code}"

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, 15)
        self.log.close()


def relay_with_online_agent(stack, workdir: Path, display: str):
    """``tessera run`` in ``workdir``/relay with an account, its technician and a real
    ``tessera-agent`` on ``display`` that has enrolled and is online; everything is stopped by
    ``stack`` (an ExitStack). Returns (server, technician, device id). For the benchmarks."""
    from tests.relay_harness import relay_server_process

    (workdir / "relay").mkdir()
    server = stack.enter_context(relay_server_process(workdir / "relay"))
    account_id, tech, _ = server.account()
    key, _ = enrolment_key(server.app, account_id)
    agent = AgentProcess(server, key, display, workdir)
    stack.callback(agent.stop)
    device_id = agent.device_id()
    try:
        wait_for(lambda: server.device_row(device_id).online, 30, message="the agent to come online")
    except AssertionError as late:
        raise AssertionError(f"{late}; its log:\n{agent.output()[-3000:]}") from None
    return server, tech, device_id
