"""Keysym -> keycode mapping of the Host agent's XTest input (agents/host/input.py): plain and
shifted levels, spare keycodes borrowed for keysyms no key types."""
from __future__ import annotations

from agents.host.input import NO_SYMBOL, SHIFT_L, Keymap, SpareKeycodes

XK_a, XK_A, XK_1, XK_exclam, XK_Return, XK_EuroSign, XK_space = 0x61, 0x41, 0x31, 0x21, 0xFF0D, 0x20AC, 0x20
XK_e_acute = 0xE9

# A small US-like core mapping starting at keycode 8: (keycode - 8) indexes the rows.
ROWS = [[NO_SYMBOL] * 4 for _ in range(40)]
ROWS[10 - 8] = [XK_1, XK_exclam, XK_1, XK_exclam]
ROWS[36 - 8] = [XK_Return, NO_SYMBOL, XK_Return, NO_SYMBOL]
ROWS[38 - 8] = [XK_a, XK_A, XK_a, XK_A]
ROWS[39 - 8] = [XK_space, NO_SYMBOL, NO_SYMBOL, NO_SYMBOL]
ROWS[40 - 8] = [SHIFT_L, NO_SYMBOL, SHIFT_L, NO_SYMBOL]
ROWS[20 - 8] = [NO_SYMBOL, NO_SYMBOL, XK_e_acute, NO_SYMBOL]  # only in the second group


def keymap() -> Keymap:
    return Keymap(8, ROWS)


def test_plain_keysym_is_typed_with_its_key_and_no_shift():
    assert keymap().find(XK_a) == (38, False)
    assert keymap().find(XK_Return) == (36, False)


def test_shifted_keysym_asks_for_shift_on_the_same_key():
    assert keymap().find(XK_A) == (38, True)
    assert keymap().find(XK_exclam) == (10, True)


def test_keysyms_no_key_types_on_the_first_two_levels_are_not_found():
    km = keymap()
    assert km.find(XK_EuroSign) is None
    assert km.find(XK_e_acute) is None, "second-group keysyms go to a spare keycode instead"


def test_plain_level_wins_when_a_keysym_is_on_several_keys():
    rows = [list(r) for r in ROWS]
    rows[15 - 8] = [XK_A, NO_SYMBOL, NO_SYMBOL, NO_SYMBOL]
    assert Keymap(8, rows).find(XK_A) == (15, False)


def test_spare_keycodes_are_the_rows_without_any_keysym():
    spare = keymap().spare_keycodes()
    assert 38 not in spare and 10 not in spare and 20 not in spare
    assert spare[0] == 8 and spare == sorted(spare)


def test_shift_key_is_found_for_adding_shift():
    assert keymap().keycode_for_shift() == 40


def test_borrowed_keycodes_are_reused_for_the_same_keysym():
    spares = SpareKeycodes([200, 201])
    assert spares.borrow(XK_EuroSign, held=set()) == 200
    assert spares.get(XK_EuroSign) == 200
    assert spares.borrow(XK_e_acute, held=set()) == 201


def test_when_all_are_borrowed_the_least_recently_used_not_held_key_is_taken_back():
    spares = SpareKeycodes([200, 201])
    spares.borrow(0x1000001, held=set())
    spares.borrow(0x1000002, held=set())
    spares.get(0x1000001)  # used again: now 0x1000002 is the oldest
    assert spares.borrow(0x1000003, held=set()) == 201
    assert spares.get(0x1000002) is None
    # Both borrowed keys held down: nothing can be taken back.
    assert spares.borrow(0x1000004, held={200, 201}) is None
