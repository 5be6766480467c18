"""Keyboard and mouse injection for the Host agent on X11, through the XTEST extension.

``agent.Agent`` calls :class:`X11Input` for every pointer and key message a viewer sends (the
relay has already checked the technician's ``keyboard_mouse`` permission). Keys arrive as X
keysyms (``docs/protocol.md``); :class:`Keymap` turns a keysym into the keycode that types it
under the X server's current keyboard mapping, adding Shift when the keysym is on the shifted
level and the viewer does not hold Shift. A keysym no key produces (a character from another
layout, a dead key) is mapped for the moment onto a spare keycode, as x11vnc does, and those
keycodes are given back when the agent closes.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

NO_SYMBOL = 0
SHIFT_L, SHIFT_R = 0xFFE1, 0xFFE2
SHIFT_KEYSYMS = {SHIFT_L, SHIFT_R}

# X pointer buttons: 1 left, 2 middle, 3 right; the wheel is buttons 4 (up), 5 (down),
# 6 (left) and 7 (right), one press and release per notch.
WHEEL_UP, WHEEL_DOWN, WHEEL_LEFT, WHEEL_RIGHT = 4, 5, 6, 7


@dataclass(frozen=True)
class KeyStroke:
    keycode: int
    needs_shift: bool   # the keysym is on the shifted level of its key
    temporary: bool     # mapped onto a spare keycode for this keysym


class Keymap:
    """The X core keyboard mapping as a keysym lookup.

    ``rows`` is what ``XGetKeyboardMapping`` returns from ``min_keycode``: one list of keysyms
    per keycode. Only the first two levels of the first group are used to type (plain and
    Shift); a keysym found only elsewhere (AltGr, a second layout) goes to a spare keycode,
    which types it whatever the modifiers are.
    """

    def __init__(self, min_keycode: int, rows: list[list[int]]):
        self.min_keycode = min_keycode
        self.rows = [list(r) for r in rows]
        self.width = max((len(r) for r in self.rows), default=2) or 2
        self._lookup: dict[int, tuple[int, int]] = {}
        for offset, row in enumerate(self.rows):
            keycode = min_keycode + offset
            for level in (0, 1):
                if level < len(row) and row[level] != NO_SYMBOL:
                    known = self._lookup.get(row[level])
                    # The plain level wins over the shifted one, then the lowest keycode.
                    if known is None or level < known[1]:
                        self._lookup[row[level]] = (keycode, level)
        self._spare = [self.min_keycode + i for i, row in enumerate(self.rows)
                       if all(k == NO_SYMBOL for k in row)]

    def find(self, keysym: int) -> tuple[int, bool] | None:
        hit = self._lookup.get(keysym)
        if hit is None:
            return None
        return hit[0], hit[1] == 1

    def spare_keycodes(self) -> list[int]:
        """Keycodes with no keysym at all (safe to borrow), lowest first."""
        return list(self._spare)

    def keycode_for_shift(self) -> int | None:
        found = self.find(SHIFT_L) or self.find(SHIFT_R)
        return found[0] if found else None


class SpareKeycodes:
    """Which borrowed keycode types which keysym; the least recently used is borrowed again
    when all are taken (never one that is held down)."""

    def __init__(self, keycodes: list[int]):
        self.free = list(keycodes)
        self.used: OrderedDict[int, int] = OrderedDict()  # keysym -> keycode

    def get(self, keysym: int) -> int | None:
        keycode = self.used.get(keysym)
        if keycode is not None:
            self.used.move_to_end(keysym)
        return keycode

    def borrow(self, keysym: int, held: set[int]) -> int | None:
        if self.free:
            keycode = self.free.pop(0)
        else:
            victim = next((ks for ks, kc in self.used.items() if kc not in held), None)
            if victim is None:
                return None
            keycode = self.used.pop(victim)
        self.used[keysym] = keycode
        return keycode


class InputError(RuntimeError):
    """An input event cannot be injected (no XTEST, the X server went away)."""


class X11Input:
    """Injects pointer and key events on one X display. Thread-safe (one lock): the agent's
    receive thread calls it, and ``release_all`` may come from the connection's teardown.
    python-xlib reads ``$XAUTHORITY`` (``os.environ``) when it connects: with ``display =
    auto`` the agent has set it (``xsession.adopt``) before building this."""

    def __init__(self, display: str):
        from Xlib import X, display as xdisplay, error as xerror
        from Xlib.ext import xtest

        self.X, self._xtest = X, xtest
        self._lock = threading.Lock()
        try:
            self.d = xdisplay.Display(display)
        except (xerror.DisplayError, OSError) as exc:
            raise InputError(f"cannot open X display {display}: {exc}") from None
        if not self.d.has_extension("XTEST"):
            self.d.close()
            raise InputError(f"the X server on {display} has no XTEST extension")
        self.root = self.d.screen().root
        self._keys_down: dict[int, int] = {}   # keysym -> keycode pressed for it
        self._buttons_down: set[int] = set()
        self._shift_down = False
        self._load_keymap()
        self._spares = SpareKeycodes(self.keymap.spare_keycodes())

    # --- keymap --------------------------------------------------------------------------

    def _load_keymap(self) -> None:
        info = self.d.display.info
        count = info.max_keycode - info.min_keycode + 1
        rows = self.d.get_keyboard_mapping(info.min_keycode, count)
        self.keymap = Keymap(info.min_keycode, [list(r) for r in rows])

    def _drain_events(self) -> None:
        # Every client gets MappingNotify when anyone changes the keyboard mapping (a layout
        # switch, or our own borrowing): read them so the lookup follows.
        changed = False
        while self.d.pending_events():
            event = self.d.next_event()
            if event.type == self.X.MappingNotify and event.request in (
                    self.X.MappingKeyboard, self.X.MappingModifier):
                changed = True
        if changed:
            self._load_keymap()

    def _map_spare(self, keysym: int) -> int | None:
        keycode = self._spares.borrow(keysym, set(self._keys_down.values()))
        if keycode is None:
            return None
        width = self.keymap.width
        self.d.change_keyboard_mapping(keycode, [tuple([keysym, keysym] + [NO_SYMBOL] * (width - 2))])
        self.d.sync()
        self._load_keymap()
        return keycode

    def _unmap_spares(self) -> None:
        width = self.keymap.width
        for keycode in self._spares.used.values():
            self.d.change_keyboard_mapping(keycode, [tuple([NO_SYMBOL] * width)])
        self._spares.free.extend(self._spares.used.values())
        self._spares.used.clear()
        self.d.sync()

    # --- events --------------------------------------------------------------------------

    def _fake(self, event_type, detail=0, x=0, y=0) -> None:
        self._xtest.fake_input(self.d, event_type, detail=detail, x=x, y=y)

    def move(self, x: int, y: int) -> None:
        """Absolute pointer position in root-window coordinates."""
        with self._lock:
            self._fake(self.X.MotionNotify, x=int(x), y=int(y))
            self.d.flush()

    def button(self, number: int, pressed: bool) -> None:
        if not 1 <= number <= 15:
            raise ValueError(f"no pointer button {number}")
        with self._lock:
            if pressed:
                self._buttons_down.add(number)
            else:
                self._buttons_down.discard(number)
            self._fake(self.X.ButtonPress if pressed else self.X.ButtonRelease, detail=number)
            self.d.flush()

    def wheel(self, dx: int, dy: int) -> None:
        """Scroll by notches: dy < 0 up, dy > 0 down, dx < 0 left, dx > 0 right."""
        steps = []
        if dy:
            steps += [WHEEL_UP if dy < 0 else WHEEL_DOWN] * min(abs(int(dy)), 50)
        if dx:
            steps += [WHEEL_LEFT if dx < 0 else WHEEL_RIGHT] * min(abs(int(dx)), 50)
        with self._lock:
            for number in steps:
                self._fake(self.X.ButtonPress, detail=number)
                self._fake(self.X.ButtonRelease, detail=number)
            self.d.flush()

    def key(self, keysym: int, pressed: bool) -> bool:
        """Press or release the key for ``keysym``; False when no keycode could be found or
        borrowed for it (the event is dropped, the rest of the session goes on)."""
        with self._lock:
            self._drain_events()
            if not pressed:
                keycode = self._keys_down.pop(keysym, None)
                if keycode is None:
                    return False  # a release for a press we never made (or already undid)
                self._fake(self.X.KeyRelease, detail=keycode)
                if keysym in SHIFT_KEYSYMS:
                    self._shift_down = any(k in SHIFT_KEYSYMS for k in self._keys_down)
                self.d.flush()
                return True
            if keysym in self._keys_down:  # auto-repeat from the viewer: press again
                self._fake(self.X.KeyPress, detail=self._keys_down[keysym])
                self.d.flush()
                return True
            found = self.keymap.find(keysym)
            spare = self._spares.get(keysym)
            if found is None and spare is None:
                spare = self._map_spare(keysym)
            if spare is not None:
                keycode, needs_shift = spare, False
            elif found is not None:
                keycode, needs_shift = found
            else:
                return False
            shift = self.keymap.keycode_for_shift() if needs_shift and not self._shift_down else None
            if shift is not None:
                self._fake(self.X.KeyPress, detail=shift)
            self._fake(self.X.KeyPress, detail=keycode)
            if shift is not None:
                self._fake(self.X.KeyRelease, detail=shift)
            self._keys_down[keysym] = keycode
            if keysym in SHIFT_KEYSYMS:
                self._shift_down = True
            self.d.flush()
            return True

    def release_all(self) -> None:
        """Let go of every key and button a viewer left down (its connection ended)."""
        with self._lock:
            for keycode in self._keys_down.values():
                self._fake(self.X.KeyRelease, detail=keycode)
            for number in self._buttons_down:
                self._fake(self.X.ButtonRelease, detail=number)
            self._keys_down.clear()
            self._buttons_down.clear()
            self._shift_down = False
            self.d.flush()

    def close(self) -> None:
        try:
            self.release_all()
            with self._lock:
                self._unmap_spares()
        finally:
            self.d.close()
