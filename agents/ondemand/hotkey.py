"""Ctrl+Shift+X anywhere on the X display: the OnDemand agent's "end the session now" key.

``agents.ondemand.agent`` starts a :class:`HotkeyGrab` while it is connected; pressing the
combination calls its callback (which closes the relay connection with 4013 at once, without
asking). The grab is a passive key grab on the root window (``XGrabKey``), on a python-xlib
display connection of its own served by a thread of its own: whatever window has the focus,
the X server hands the key press to this client instead. A grab matches the modifier state
exactly, so the combination is grabbed again with each mix of the locking modifiers (Caps
Lock, Num Lock, Scroll Lock, wherever the keyboard's modifier map puts the last two) that
could be on when the person presses it.
"""
from __future__ import annotations

import itertools
import logging
import select
import threading
from typing import Callable

log = logging.getLogger("tessera.ondemand")

POLL = 0.5  # seconds between looks at the stop flag while no event arrives


class HotkeyUnavailable(Exception):
    """The combination cannot be grabbed: no such key, or another client holds it."""


def locking_masks(modifier_map, keycodes_of: Callable[[str], set[int]]) -> list[int]:
    """Every combination of the locking modifiers' masks (0 first): Caps Lock is ``LockMask``;
    Num Lock and Scroll Lock are whichever ``Mod1``..``Mod5`` the modifier map gives their keys.
    ``modifier_map`` is ``get_modifier_mapping()``'s 8 lists of keycodes."""
    from Xlib import X

    masks = {X.LockMask}
    for name in ("Num_Lock", "Scroll_Lock"):
        codes = keycodes_of(name)
        for index, keycodes in enumerate(modifier_map):
            if index >= 3 and codes & {code for code in keycodes if code}:
                masks.add(1 << index)
    found = sorted(masks)
    return sorted({sum(combo) for n in range(len(found) + 1)
                   for combo in itertools.combinations(found, n)})


class HotkeyGrab:
    """Grab ``key`` with ``modifiers`` (default Ctrl+Shift+X) on ``display``'s root window and
    call ``on_press`` from the grab's thread each time it is pressed."""

    def __init__(self, display: str, on_press: Callable[[], None], key: str = "x",
                 modifiers: tuple[str, ...] = ("ControlMask", "ShiftMask")):
        from Xlib import X, XK
        from Xlib import display as xdisplay
        from Xlib import error

        self.on_press = on_press
        self._stop = threading.Event()
        self.d = xdisplay.Display(display)
        try:
            self.root = self.d.screen().root
            self.keycode = self.d.keysym_to_keycode(XK.string_to_keysym(key))
            if not self.keycode:
                raise HotkeyUnavailable(f"the keyboard has no {key!r} key")
            self.modifiers = 0
            for name in modifiers:
                self.modifiers |= getattr(X, name)

            def keycodes_of(name: str) -> set[int]:
                keysym = XK.string_to_keysym(name)
                return {code for code, _ in self.d.keysym_to_keycodes(keysym)} if keysym else set()

            self.variants = locking_masks(self.d.get_modifier_mapping(), keycodes_of)
            refused = error.CatchError(error.BadAccess)
            for extra in self.variants:
                self.root.grab_key(self.keycode, self.modifiers | extra, False,
                                   X.GrabModeAsync, X.GrabModeAsync, onerror=refused)
            self.d.sync()
            if refused.get_error() is not None:
                raise HotkeyUnavailable("another program already uses this key combination")
        except BaseException:
            self.d.close()
            raise
        self.thread = threading.Thread(target=self._serve, name="hotkey", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from Xlib import X

        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([self.d.fileno()], [], [], POLL)
                if not readable and not self.d.pending_events():
                    continue
                while self.d.pending_events() and not self._stop.is_set():
                    event = self.d.next_event()
                    if event.type == X.KeyPress and event.detail == self.keycode \
                            and event.state & self.modifiers == self.modifiers:
                        try:
                            self.on_press()
                        except Exception:  # noqa: BLE001 - the key must keep working
                            log.exception("the hotkey's action failed")
        except Exception:  # noqa: BLE001 - the X server went away
            if not self._stop.is_set():
                log.warning("the Ctrl+Shift+X grab ended: the X display went away")
        finally:
            try:
                for extra in self.variants:
                    self.root.ungrab_key(self.keycode, self.modifiers | extra)
                self.d.sync()
            except Exception:  # noqa: BLE001 - the display may be gone already
                pass
            try:
                self.d.close()
            except Exception:  # noqa: BLE001 - likewise
                pass

    def close(self) -> None:
        """Release the grab (from any thread but the grab's own)."""
        self._stop.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=POLL * 4)
