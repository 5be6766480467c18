"""An X server and the real Host agent to drive from outside: Xvfb on a free display (with
several XRandR monitors when asked), what its screen shows now, and a ``tessera-agent``
process enrolled against a running server.

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


def start_xvfb(screen: str = "1280x800x24", monitors=None) -> XServer:
    """``Xvfb :N -screen 0 <screen>`` on a free display; the caller stops it. ``-noreset``:
    without it Xvfb resets (root background and all, and the monitors) whenever its last
    client disconnects, e.g. right after ``xsetroot`` exits.

    ``monitors``: ``(width, height, x, y)`` of each monitor to cut the screen into, the first
    primary; Xvfb has one CRTC, but XRandR 1.5 monitors (``xrandr --setmonitor``) are what
    ``mss``, and so the agent, lists as monitors."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise FileNotFoundError("Xvfb is not installed (Debian: apt install xvfb; scripts/install-system-deps)")
    for _ in range(5):
        number = free_display()
        process = subprocess.Popen([binary, f":{number}", "-screen", "0", screen,
                                    "-noreset", "-nolisten", "tcp"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _x_accepts(Path(f"/tmp/.X11-unix/X{number}"), process):
            server = XServer(f":{number}", process)
            if monitors:
                try:
                    set_monitors(server, monitors)
                except BaseException:
                    server.stop()
                    raise
            return server
        stop_process(process)
    raise RuntimeError("Xvfb did not start on any of five display numbers")


def set_monitors(server: XServer, monitors) -> None:
    """Cut ``server``'s screen into XRandR monitors ``(width, height, x, y)``, the first
    primary, named M1, M2, ... The first takes over the screen's one output (replacing the
    monitor XRandR makes for it), the others have none."""
    if shutil.which("xrandr") is None:
        raise FileNotFoundError("xrandr is not installed (Debian: x11-xserver-utils; scripts/install-system-deps)")
    output = next(line.split()[0] for line in server.run("xrandr", "--query").splitlines()
                  if " connected" in line)
    for i, (width, height, x, y) in enumerate(monitors):
        # Physical size in mm at 96 dpi: xrandr wants one, nothing here reads it.
        geometry = f"{width}/{round(width * 25.4 / 96)}x{height}/{round(height * 25.4 / 96)}+{x}+{y}"
        server.run("xrandr", "--setmonitor", f"{'*' if i == 0 else ''}M{i + 1}", geometry,
                   output if i == 0 else "none")
    listed = server.run("xrandr", "--listmonitors")
    if f"Monitors: {len(monitors)}" not in listed:
        raise RuntimeError(f"xrandr did not set the monitors: {listed}")


def screen_now(display: str) -> bytes:
    """The whole (single-monitor) X screen as RGBA, captured the way the agent captures it."""
    [only] = screens_now(display)
    return only


def screens_now(display: str) -> list[bytes]:
    """What each monitor shows now as RGBA, in the agent's order (its screen ids), captured
    the way the agent captures it."""
    import relay_ext
    from agents.host.capture import X11Capture

    capture = X11Capture(display)
    try:
        return [relay_ext.bgra_to_rgba(bytes(capture.grab(screen))) for screen in capture.screens()]
    finally:
        capture.close()


class FilledWindows:
    """Plain windows filled with one colour each, kept on an X display until :meth:`close`:
    ``areas`` is ``(x, y, width, height, 0xRRGGBB)`` in root coordinates, later ones on top.
    Override-redirect (no window manager places or decorates them) and drawn by the X server
    from their background (nothing to repaint), so what they show is exactly known: distinct
    content per monitor, where ``xsetroot`` can only colour the whole screen."""

    def __init__(self, display: str, areas):
        from Xlib import X
        from Xlib import display as xdisplay

        self.d = xdisplay.Display(display)
        screen = self.d.screen()
        for x, y, width, height, rgb in areas:
            window = screen.root.create_window(
                x, y, width, height, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                background_pixel=rgb, override_redirect=True)  # TrueColor: the pixel is the RGB
            window.map()
        self.d.sync()

    def close(self) -> None:
        self.d.close()


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
    enrolling with ``key`` at ``server.url`` and capturing ``display``; ``extra_args`` go on
    its command line too (``--config FILE``)."""

    def __init__(self, server, key: str, display: str, tmp: Path, extra_args=()):
        self.state_dir = tmp / "agent-state"
        self.log_path = tmp / "agent.log"
        script = Path(sys.executable).parent / "tessera-agent"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "agents.host"]
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command + ["--server", server.url, f"--enroll-key={key}", "--state-dir", str(self.state_dir),
                       "--display", display, "--hardware-id", uuid.uuid4().hex, *extra_args],
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
