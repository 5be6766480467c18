"""Ctrl+Shift+X on a real X server (agents/ondemand/hotkey.py): the grab on the root window
catches the combination whatever window has the focus and with Caps Lock or Num Lock on, lets
other keys through to the focused window, and says so when another program holds the
combination already. Keys are typed with xdotool (XTEST), as a person's keyboard would."""
from __future__ import annotations

import shutil
import threading

import pytest

from agents.ondemand.hotkey import HotkeyGrab, HotkeyUnavailable, locking_masks
from tests.relay_harness import wait_for

pytestmark = pytest.mark.skipif(shutil.which("xdotool") is None,
                                reason="xdotool is not installed (scripts/install-system-deps)")


class Presses:
    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.count += 1


def key(xvfb, *keys: str) -> None:
    xvfb.run("xdotool", "key", *keys)


def sync_with_x(xvfb) -> None:
    """A round trip after the keys: xdotool's XTEST events are processed by then."""
    xvfb.run("xdotool", "getmouselocation")


def test_the_combination_is_caught_with_any_lock_state_and_other_keys_pass(xvfb):
    from Xlib import X
    from Xlib import display as xdisplay

    presses = Presses()
    grab = HotkeyGrab(xvfb.display, presses)
    # A client that would see the keys when nobody grabbed them: a focused window of its own.
    other = xdisplay.Display(xvfb.display)
    window = other.screen().root.create_window(0, 0, 200, 100, 0, other.screen().root_depth,
                                               event_mask=X.KeyPressMask)
    window.map()
    other.sync()
    try:
        xvfb.run("xdotool", "windowfocus", "--sync", str(window.id))
        key(xvfb, "ctrl+shift+x")
        wait_for(lambda: presses.count == 1, 10, message="Ctrl+Shift+X to be caught")

        key(xvfb, "Caps_Lock")            # locking modifiers on: still the same combination
        key(xvfb, "ctrl+shift+x")
        wait_for(lambda: presses.count == 2, 10, message="Ctrl+Shift+X with Caps Lock")
        key(xvfb, "Caps_Lock", "Num_Lock")
        key(xvfb, "ctrl+shift+x")
        wait_for(lambda: presses.count == 3, 10, message="Ctrl+Shift+X with Num Lock")
        key(xvfb, "Num_Lock")

        # Ctrl+X and Shift+X are the focused window's, not the grab's.
        key(xvfb, "ctrl+x", "shift+x")
        sync_with_x(xvfb)
        seen = []

        def drained():
            while other.pending_events():
                event = other.next_event()
                if event.type == X.KeyPress:
                    seen.append(event.state & (X.ControlMask | X.ShiftMask))
            return len(seen) >= 2

        wait_for(drained, 10, message="Ctrl+X and Shift+X to reach the focused window")
        assert X.ControlMask in seen and X.ShiftMask in seen
        assert presses.count == 3
    finally:
        grab.close()
        other.close()
    # Released: the combination reaches windows again, and nothing calls back.
    key(xvfb, "ctrl+shift+x")
    sync_with_x(xvfb)
    assert presses.count == 3


def test_a_combination_another_program_holds_is_reported(xvfb):
    first = HotkeyGrab(xvfb.display, Presses())
    try:
        with pytest.raises(HotkeyUnavailable, match="another program"):
            HotkeyGrab(xvfb.display, Presses())
    finally:
        first.close()
    HotkeyGrab(xvfb.display, Presses()).close()   # free again once released


def test_locking_masks_cover_every_mix_of_caps_num_and_scroll_lock():
    from Xlib import X

    modifier_map = [[50], [66], [37], [64], [77], [], [], [78]]   # Mod2 Num_Lock, Mod5 Scroll_Lock
    codes = {"Num_Lock": {77}, "Scroll_Lock": {78}}
    masks = locking_masks(modifier_map, lambda name: codes.get(name, set()))
    num, scroll = X.Mod2Mask, X.Mod5Mask
    assert masks == sorted({0, X.LockMask, num, scroll, X.LockMask | num, X.LockMask | scroll,
                            num | scroll, X.LockMask | num | scroll})
    assert locking_masks([[], [], [], [], [], [], [], []], lambda name: set()) == [0, X.LockMask]


def test_the_grab_ends_quietly_when_the_x_server_goes_away(tmp_path):
    from tests.x11_harness import start_xvfb

    server = start_xvfb("320x200x24")
    presses = Presses()
    grab = HotkeyGrab(server.display, presses)
    server.stop()
    grab.thread.join(10)
    assert not grab.thread.is_alive()
    grab.close()
    assert presses.count == 0
