"""Screen capture for the Host agent on X11: what each monitor shows, and when to look again.

``agent.Agent``'s capture thread owns one :class:`X11Capture` (``mss`` with XShm, falling back
to XGetImage where the X server has no MIT-SHM) and one :class:`RateGovernor`; it grabs every
screen, diffs it against the previous grab with ``relay_ext.changed_tiles`` and sends only what
changed (``agent.FrameEncoder``). Every XRandR monitor is its own screen, numbered from 0 in
the order the X server lists them; when there are no monitors (a bare X screen), the whole root
window is screen 0.

Frames are 32-bit BGRA with a stride of ``width * 4``, as ``relay_ext`` expects. The X server
leaves the fourth byte of a depth-24 pixel undefined (Xvfb: 0); it is set to 255 here so that
equal screens are equal bytes and the viewer gets opaque pixels.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

OPAQUE_ROW_CACHE: dict[int, bytes] = {}


@dataclass(frozen=True)
class Screen:
    index: int
    left: int       # position in the X root window (pointer events are relative to it)
    top: int
    width: int
    height: int
    name: str
    primary: bool


def screens_from_monitors(monitors: list[dict]) -> list[Screen]:
    """``mss``' monitor list (entry 0 is the bounding box of all of them) as screens."""
    real = monitors[1:] or monitors[:1]
    screens = []
    for i, mon in enumerate(real):
        screens.append(Screen(
            index=i, left=int(mon["left"]), top=int(mon["top"]),
            width=int(mon["width"]), height=int(mon["height"]),
            name=str(mon.get("output") or mon.get("name") or f"screen {i + 1}"),
            primary=bool(mon.get("is_primary", False)),
        ))
    if screens and not any(s.primary for s in screens):
        first = screens[0]
        screens[0] = Screen(first.index, first.left, first.top, first.width, first.height,
                            first.name, True)
    return screens


def make_opaque(frame: bytearray) -> bytearray:
    """Set every pixel's fourth byte to 255 in place (one C-level slice assignment)."""
    count = len(frame) // 4
    ones = OPAQUE_ROW_CACHE.get(count)
    if ones is None:
        if len(OPAQUE_ROW_CACHE) >= 8:  # resolution changes must not grow it forever
            OPAQUE_ROW_CACHE.clear()
        ones = OPAQUE_ROW_CACHE[count] = b"\xff" * count
    frame[3::4] = ones
    return frame


class X11Capture:
    """Grabs X11 monitors through ``mss``. Not thread-safe: one capture thread uses it.

    mss connects through libxcb (or libX11), which takes the cookie from ``$XAUTHORITY`` when
    it connects, here and when :meth:`open` reconnects; with ``display = auto`` the agent has
    set it (``xsession.adopt``) before building this."""

    def __init__(self, display: str):
        self.display = display
        self._mss = None
        self._screens: list[Screen] = []
        self.open()

    def open(self) -> None:
        import mss

        self.close()
        self._mss = mss.MSS(display=self.display)
        self._screens = screens_from_monitors(self._mss.monitors)

    def screens(self) -> list[Screen]:
        return list(self._screens)

    def refresh(self) -> bool:
        """Read the monitor layout again; True when it changed. ``mss`` caches the layout of
        its first look, so its backend is asked directly (one XRandR round trip on the open
        connection); a backend without that method is reopened instead."""
        before = self._screens
        query = getattr(getattr(self._mss, "_impl", None), "monitors", None)
        if callable(query):
            monitors = query()
            self._screens = screens_from_monitors(monitors)
            if self._screens != before:
                self.open()  # mss' own cache must follow too
        else:
            self.open()
        return self._screens != before

    def grab(self, screen: Screen) -> bytearray:
        shot = self._mss.grab({"left": screen.left, "top": screen.top,
                               "width": screen.width, "height": screen.height})
        frame = shot.raw
        if len(frame) != screen.width * screen.height * 4:
            # Some backends pad rows; repack to the width*4 stride relay_ext expects.
            frame = bytearray(shot.bgra)
        return make_opaque(frame)

    def close(self) -> None:
        if self._mss is not None:
            self._mss.close()
            self._mss = None


class RateGovernor:
    """How long the capture thread sleeps before the next look.

    Up to ``fast_fps`` while the screen changes (and for ``linger`` seconds after the last
    change, since changes come in bursts: typing, scrolling, a window drag), then backing off
    step by step to ``idle_fps`` checks. Input from a viewer wakes it to the fast rate at once:
    a key or a click is the best sign that the screen is about to change.
    """

    def __init__(self, fast_fps: float = 30.0, idle_fps: float = 2.0, linger: float = 1.0,
                 clock=time.monotonic):
        self.fast, self.idle, self.linger, self.clock = 1.0 / fast_fps, 1.0 / idle_fps, linger, clock
        self._last_activity = -1e9
        self._interval = self.idle

    def changed(self) -> None:
        self._last_activity = self.clock()
        self._interval = self.fast

    def poke(self) -> None:
        """A viewer sent input: look again soon."""
        self.changed()

    def interval(self) -> float:
        if self.clock() - self._last_activity < self.linger:
            self._interval = self.fast
        else:
            # Double towards idle rather than jump: a pause in typing should not cost 500 ms.
            self._interval = min(self.idle, self._interval * 2)
        return self._interval


class DamageUnavailable(RuntimeError):
    """The X server has no DAMAGE extension: the agent polls at the governor's rate instead."""


class DamageWatch:
    """Tells the capture thread that the screen changed, so it need not poll to find out.

    A DAMAGE object on the root window reports "something was drawn" (level NonEmpty: one
    event, then silence until it is subtracted). While the screen is still, the capture thread
    waits here instead of grabbing at the idle rate, and the first change after a pause is
    captured at once instead of up to one idle interval later. Its own X connection, used only
    by the capture thread."""

    SLICE = 0.1  # the longest a closing connection waits for the capture thread

    def __init__(self, display: str):
        from Xlib import display as xdisplay
        from Xlib.ext import damage

        self._damage = damage
        self.d = xdisplay.Display(display)
        try:
            if not self.d.has_extension(damage.extname):
                raise DamageUnavailable(f"the X server on {display} has no DAMAGE extension")
            self.d.damage_query_version()
            self.notify = self.d.extension_event.DamageNotify
            self.handle = self.d.screen().root.damage_create(damage.DamageReportNonEmpty)
            self.d.sync()
        except BaseException:
            self.d.close()
            raise

    def _drain(self) -> bool:
        damaged = False
        while self.d.pending_events():
            if self.d.next_event().type == self.notify:
                damaged = True
        if damaged:
            self.d.damage_subtract(self.handle)  # re-arm: the next drawing reports again
            self.d.flush()
        return damaged

    def wait(self, timeout: float, stop) -> bool:
        """Up to ``timeout`` seconds (in slices, returning early once ``stop`` is set) until
        something is drawn; True when it was."""
        import select

        deadline = time.monotonic() + timeout
        while not stop.is_set():
            if self._drain():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([self.d.fileno()], [], [], min(left, self.SLICE))
        return False

    def close(self) -> None:
        try:
            self.d.damage_destroy(self.handle)
            self.d.flush()
        finally:
            self.d.close()
