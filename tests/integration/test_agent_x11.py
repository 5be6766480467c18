"""The Host agent's X11 parts on a real X server (Xvfb): capture sees exactly what X clients
drew, XTest keys and clicks arrive in real windows, the clipboard works both ways with other
programs, power actions are refused where the display has no desktop session."""
from __future__ import annotations

import queue
import re
import shutil
import subprocess
import threading
import time

import pytest

import relay_ext
from agents.common import protocol as P
from agents.host.capture import DamageWatch, RateGovernor, X11Capture
from agents.host.clipboard import X11Clipboard
from agents.host.desktop import current_session
from agents.host.frames import ScreenEncoder
from agents.host.input import X11Input
from agents.host.power import LOG_OUT, REFUSED, PowerActions


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/install-system-deps)")


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Xev:
    """An xev window at a known place, its output read line by line."""

    def __init__(self, xvfb, x=200, y=150, w=300, h=200):
        need("xev", "xdotool")
        self.geometry = (x, y, w, h)
        self.process = subprocess.Popen(
            ["xev", "-geometry", f"{w}x{h}+{x}+{y}", "-event", "keyboard", "-event", "button",
             "-event", "structure"],
            env=xvfb.env, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.expect(r"MapNotify", timeout=10)

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def expect(self, pattern, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"xev never printed {pattern!r}; it printed:\n{''.join(self.seen[-40:])}")

    def centre(self):
        x, y, w, h = self.geometry
        return x + w // 2, y + h // 2

    def close(self):
        self.process.terminate()
        self.process.wait(5)


@pytest.fixture
def xinput(xvfb):
    injector = X11Input(xvfb.display)
    yield injector
    injector.close()


def test_capture_sees_exactly_the_colour_xsetroot_drew(xvfb):
    need("xsetroot")
    xvfb.run("xsetroot", "-solid", "#336699")
    capture = X11Capture(xvfb.display)
    try:
        [screen] = capture.screens()
        assert (screen.width, screen.height, screen.primary) == (1280, 800, True)
        frame = capture.grab(screen)
        assert frame == bytearray(b"\x99\x66\x33\xff" * (1280 * 800))
        rects = ScreenEncoder(1280, 800).keyframe(frame)
        assert {r.color for r in rects} == {b"\x33\x66\x99\xff"}, "sent as RGBA fills"
        assert all(isinstance(r, P.FillRect) for r in rects)
    finally:
        capture.close()


def test_damage_reports_drawing_and_is_quiet_while_nothing_is_drawn(xvfb):
    need("xsetroot")
    watch, stop = DamageWatch(xvfb.display), threading.Event()
    try:
        watch.wait(0.2, stop)  # whatever was drawn before it was armed
        assert watch.wait(0.3, stop) is False, "nothing drawn: no report"
        threading.Timer(0.2, xvfb.run, ("xsetroot", "-solid", "#224466")).start()
        assert watch.wait(30, stop) is True
        assert watch.wait(0.3, stop) is False, "reported once, then re-armed"
        xvfb.run("xsetroot", "-solid", "#446622")
        assert watch.wait(30, stop) is True, "re-armed: the next drawing is reported too"
        stop.set()
        assert watch.wait(30, stop) is False, "a closing connection does not wait"
    finally:
        watch.close()


def test_the_capture_thread_wakes_on_drawing_instead_of_waiting_out_a_long_idle_interval(xvfb):
    """With a 100 s idle interval the first change after a still spell is looked at as soon as
    X reports drawing (the thread returns long before the interval), at the fast rate."""
    from types import SimpleNamespace

    from agents.host.agent import Connection

    need("xsetroot")
    watch = DamageWatch(xvfb.display)
    conn = SimpleNamespace(governor=RateGovernor(fast_fps=30, idle_fps=0.01, linger=5.0),
                           closed=threading.Event())
    desktop = SimpleNamespace(changes=watch)
    try:
        watch.wait(0.2, conn.closed)
        conn.governor.interval()  # still: the governor is at its idle interval
        waiter = threading.Thread(target=Connection._wait_for_change,
                                  args=(conn, desktop, time.monotonic()))
        waiter.start()
        time.sleep(0.3)
        xvfb.run("xsetroot", "-solid", "#662244")
        waiter.join(30)
        assert not waiter.is_alive(), "the drawing did not wake the capture thread"
        assert conn.governor.interval() == conn.governor.fast
    finally:
        conn.closed.set()
        watch.close()


def test_capture_sends_only_the_tiles_an_xterm_window_covers(xvfb):
    need("xterm", "xsetroot", "xdotool")
    xvfb.run("xsetroot", "-solid", "#000000")
    capture = X11Capture(xvfb.display)
    [screen] = capture.screens()
    encoder = ScreenEncoder(screen.width, screen.height)
    encoder.keyframe(capture.grab(screen))
    term = subprocess.Popen(["xterm", "-geometry", "40x10+300+200", "-bg", "#204060", "-fg", "#ffffff",
                             "-title", "tessera-capture", "-e", "sleep", "60"], env=xvfb.env)
    try:
        window = wait_for(lambda: subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", "tessera-capture"], env=xvfb.env,
            capture_output=True, text=True).stdout.split(), what="the xterm window")[0]
        geometry = xvfb.run("xdotool", "getwindowgeometry", "--shell", window)
        g = dict(line.split("=") for line in geometry.split())
        x, y, w, h = int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"])

        def changed():
            frame = capture.grab(screen)
            return frame if frame[((y + h // 2) * screen.width + x + w - 3) * 4:][:4] == b"\x60\x40\x20\xff" else None

        frame = wait_for(changed, what="the xterm background on screen")
        rects = encoder.diff(frame)
        assert rects, "the new window is sent"
        for r in rects:  # every rectangle sent lies on the window (borders included)
            assert x - 2 <= r.x and r.x + r.width <= x + w + 2
            assert y - 2 <= r.y and r.y + r.height <= y + h + 2
        viewer = bytearray(b"\x00\x00\x00\xff" * (screen.width * screen.height))  # the black keyframe
        P.apply_rects(viewer, screen.width, screen.height, rects)
        assert bytes(viewer) == relay_ext.bgra_to_rgba(bytes(frame)), "the viewer has the exact pixels"
    finally:
        term.terminate()
        term.wait(5)
        capture.close()


def test_typed_keys_arrive_in_an_xev_window_with_shift_added_when_needed(xvfb, xinput):
    xev = Xev(xvfb)
    try:
        xinput.move(*xev.centre())  # no window manager: the keyboard follows the pointer
        for keysym in (0x61, 0x41, 0xFF0D):  # a, A, Return
            assert xinput.key(keysym, True) and xinput.key(keysym, False)
        xev.expect(r"KeyPress event.*")
        xev.expect(r"keysym 0x61, a\)")
        xev.expect(r"keysym 0xffe1, Shift_L\)")  # Shift pressed for the capital
        xev.expect(r"keysym 0x41, A\)")
        xev.expect(r"keysym 0xff0d, Return\)")
    finally:
        xev.close()


def test_a_keysym_no_key_types_is_typed_on_a_borrowed_keycode_given_back_at_close(xvfb):
    injector = X11Input(xvfb.display)
    xev = Xev(xvfb)
    try:
        injector.move(*xev.centre())
        assert injector.keymap.find(0x20AC) is None  # EuroSign: not on a US keyboard
        assert injector.key(0x20AC, True) and injector.key(0x20AC, False)
        xev.expect(r"keycode (\d+) \(keysym 0x20ac, EuroSign\)")
        borrowed = injector._spares.get(0x20AC)
    finally:
        xev.close()
        injector.close()
    fresh = X11Input(xvfb.display)
    try:
        assert fresh.keymap.find(0x20AC) is None
        assert borrowed in fresh.keymap.spare_keycodes()
    finally:
        fresh.close()


def test_keys_typed_into_an_xterm_run_a_command(xvfb, xinput, tmp_path):
    need("xterm", "xdotool")
    marker = tmp_path / "typed"
    term = subprocess.Popen(["xterm", "-geometry", "80x10+0+0", "-title", "tessera-typing",
                             "-e", "bash", "--norc", "--noprofile"], env={**xvfb.env, "PS1": "$ "},
                            cwd=tmp_path)
    try:
        wait_for(lambda: subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "tessera-typing"],
                                        env=xvfb.env, capture_output=True, text=True).stdout.strip(),
                 what="the xterm window")
        time.sleep(0.5)  # bash starting inside it
        xinput.move(200, 60)
        for ch in "touch typed":
            keysym = 0x20 if ch == " " else ord(ch)
            xinput.key(keysym, True)
            xinput.key(keysym, False)
        xinput.key(0xFF0D, True)
        xinput.key(0xFF0D, False)
        wait_for(marker.exists, what="the command typed into the xterm to run")
    finally:
        term.terminate()
        term.wait(5)


def test_pointer_clicks_and_wheel_arrive_where_the_pointer_is(xvfb, xinput):
    xev = Xev(xvfb)
    try:
        cx, cy = xev.centre()
        xinput.move(cx, cy)
        xinput.button(1, True)
        xinput.button(1, False)
        press = xev.expect(r"ButtonPress event")
        xev.expect(r"root 0x[0-9a-f]+, subw 0x[0-9a-f]+, time \d+, \((\d+),(\d+)\), root:\((\d+),(\d+)\)")
        xev.expect(r"state 0x0, button 1,")
        xinput.button(3, True)
        xinput.button(3, False)
        xev.expect(r"button 3,")
        xinput.wheel(0, 2)
        xev.expect(r"button 5,")
        xinput.wheel(-1, 0)
        xev.expect(r"button 6,")
        assert press
    finally:
        xev.close()


def test_pointer_position_lands_on_the_root_coordinates_given(xvfb, xinput):
    from Xlib import display

    xinput.move(123, 456)
    d = display.Display(xvfb.display)
    try:
        reply = d.screen().root.query_pointer()
        assert (reply.root_x, reply.root_y) == (123, 456)
    finally:
        d.close()


def test_clipboard_round_trip_with_other_programs(xvfb):
    need("xclip")
    clipboard = X11Clipboard(xvfb.display)
    seen: queue.Queue[str] = queue.Queue()
    clipboard.watch(seen.put)
    try:
        time.sleep(0.3)
        clipboard.set_text("from the technician: ünïcödé ✓")
        pasted = subprocess.run(["xclip", "-selection", "clipboard", "-out"], env=xvfb.env,
                                capture_output=True, timeout=10)
        assert pasted.stdout.decode("utf-8") == "from the technician: ünïcödé ✓"
        with pytest.raises(queue.Empty):
            seen.get(timeout=0.7)  # the agent's own text is not echoed back

        subprocess.run(["xclip", "-selection", "clipboard", "-in"], input="copied on the host ✓".encode(),
                       env=xvfb.env, timeout=10, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert seen.get(timeout=5) == "copied on the host ✓"

        big = "line of text\n" * 20000  # 260 KB: pasted in pieces (INCR)
        clipboard.set_text(big)
        assert clipboard.get_text() == big
    finally:
        clipboard.close()


def test_log_out_is_refused_on_a_display_no_login_session_owns(xvfb):
    result = PowerActions(xvfb.display).perform(LOG_OUT)
    assert result.status == REFUSED
    assert f"no desktop session on display {xvfb.display}" in result.message


def test_the_user_of_a_bare_x_server_is_the_owner_of_its_socket(xvfb):
    import getpass

    session = current_session(xvfb.display)
    assert session.session_id is None and session.user == getpass.getuser() and not session.locked


def test_cursor_shape_is_read_once_and_again_when_it_changes(xvfb):
    need("xterm", "xdotool")
    from agents.host.agent import PointerReader

    reader = PointerReader(xvfb.display)
    term = None
    try:
        xvfb.run("xdotool", "mousemove", "1000", "700")
        assert reader() == (1000, 700)
        root_cursor = reader.shape()
        assert root_cursor is not None and (root_cursor.width, root_cursor.height) == (16, 16)
        assert root_cursor.hot_x < 16 and root_cursor.hot_y < 16
        assert set(root_cursor.pixels[3::4]) <= {0, 255} and len(root_cursor.pixels) == 16 * 16 * 4
        assert reader.shape() is None, "unchanged: not fetched again"
        assert reader.shape(force=True) == root_cursor

        term = subprocess.Popen(["xterm", "-geometry", "20x5+0+0", "-title", "tessera-cursor"], env=xvfb.env)
        wait_for(lambda: subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "tessera-cursor"],
                                        env=xvfb.env, capture_output=True, text=True).stdout.strip(),
                 what="the xterm window")
        xvfb.run("xdotool", "mousemove", "40", "30")  # over the text: the I-beam
        text_cursor = wait_for(reader.shape, what="the cursor to change over the xterm")
        assert (text_cursor.width, text_cursor.height) != (16, 16) or text_cursor.pixels != root_cursor.pixels
    finally:
        if term is not None:
            term.terminate()
            term.wait(5)
        reader.close()
