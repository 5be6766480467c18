"""The Host agent's capture side without an X server: monitors as screens, the adaptive capture
rate, and the screen encoder (diff -> FRAME_UPDATE rectangles -> a viewer's framebuffer is the
captured frame, exactly)."""
from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

import relay_ext
from agents.common import protocol as P
from agents.host.capture import RateGovernor, make_opaque, screens_from_monitors
from agents.host.frames import ScreenEncoder, split_payloads


def test_every_xrandr_monitor_is_its_own_screen_in_server_order():
    monitors = [
        {"left": 0, "top": 0, "width": 3200, "height": 1080},
        {"left": 0, "top": 0, "width": 1920, "height": 1080, "output": "DP-1", "is_primary": False},
        {"left": 1920, "top": 0, "width": 1280, "height": 1024, "output": "HDMI-1", "is_primary": True},
    ]
    screens = screens_from_monitors(monitors)
    assert [(s.index, s.left, s.width, s.name, s.primary) for s in screens] == [
        (0, 0, 1920, "DP-1", False), (1, 1920, 1280, "HDMI-1", True)]


def test_without_a_primary_monitor_the_first_is_primary_and_a_bare_screen_counts():
    screens = screens_from_monitors([{"left": 0, "top": 0, "width": 800, "height": 600}])
    assert len(screens) == 1 and screens[0].primary and screens[0].width == 800
    two = screens_from_monitors([{}, {"left": 0, "top": 0, "width": 10, "height": 10},
                                 {"left": 10, "top": 0, "width": 10, "height": 10}])
    assert [s.primary for s in two] == [True, False]


def test_cursor_pixels_lose_their_premultiplied_alpha():
    from agents.host.agent import unpremultiply_argb

    # opaque red, transparent, half-transparent white (premultiplied: 0x80 in each channel)
    pixels = [0xFFFF0000, 0x00000000, 0x80808080]
    assert unpremultiply_argb(pixels, 3, 1) == bytes([255, 0, 0, 255, 0, 0, 0, 0, 255, 255, 255, 128])


def test_undefined_fourth_byte_is_made_opaque():
    frame = bytearray(b"\x01\x02\x03\x00" * 5)
    assert make_opaque(frame) == bytearray(b"\x01\x02\x03\xff" * 5)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_capture_rate_is_fast_while_changing_and_backs_off_to_idle():
    clock = Clock()
    governor = RateGovernor(fast_fps=30, idle_fps=2, linger=1.0, clock=clock)
    assert governor.interval() == 0.5  # nothing happened yet: idle checks
    governor.changed()
    assert governor.interval() == 1 / 30
    clock.now = 0.9
    assert governor.interval() == 1 / 30  # changes come in bursts: stay fast a moment
    clock.now = 1.5
    steps = [governor.interval() for _ in range(6)]
    assert steps == sorted(steps) and steps[0] == 2 / 30 and steps[-1] == 0.5


def test_viewer_input_wakes_the_capture_at_once():
    clock = Clock()
    governor = RateGovernor(clock=clock)
    clock.now = 100.0
    assert governor.interval() == 0.5
    governor.poke()
    assert governor.interval() == 1 / 30


def test_unchanged_screen_gives_no_rectangles_and_a_changed_pixel_one_small_one():
    width, height = 200, 130
    frame = bytearray(b"\x10\x20\x30\xff" * (width * height))
    encoder = ScreenEncoder(width, height)
    assert len(encoder.keyframe(frame)) == 4 * 3
    assert encoder.diff(bytearray(frame)) == []
    changed = bytearray(frame)
    at = (129 * width + 199) * 4  # the bottom-right pixel: a partial edge tile
    changed[at:at + 4] = b"\x00\x00\xff\xff"
    assert encoder.diff(changed) == [P.FillRect(199, 129, 1, 1, b"\xff\x00\x00\xff")]


def test_a_key_frame_larger_than_one_update_is_split():
    width, height = 256, 256
    frame = bytearray(random.Random(5).randbytes(width * height * 4))  # noise: raw tiles
    rects = ScreenEncoder(width, height).keyframe(make_opaque(frame))
    payloads = split_payloads(rects, budget=70_000)
    assert len(payloads) > 1 and all(len(p) <= 70_000 for p in payloads)
    assert sum(len(P.decode_rects(p)) for p in payloads) == len(rects)


@st.composite
def screens_and_changes(draw):
    width = draw(st.integers(1, 150))
    height = draw(st.integers(1, 100))
    colours = draw(st.lists(st.binary(min_size=3, max_size=3), min_size=1, max_size=6))
    changes = draw(st.lists(st.tuples(st.integers(0, width - 1), st.integers(0, height - 1),
                                      st.integers(1, 40), st.integers(1, 40),
                                      st.integers(0, len(colours) - 1), st.booleans()),
                            max_size=6))
    return width, height, colours, changes


@settings(max_examples=60, deadline=None)
@given(screens_and_changes())
def test_viewer_framebuffer_equals_the_capture_after_every_update(case):
    width, height, colours, changes = case
    frame = bytearray(b"\x00\x00\x00\xff" * (width * height))
    encoder = ScreenEncoder(width, height)
    viewer = bytearray(width * height * 4)
    P.apply_rects(viewer, width, height, encoder.keyframe(bytearray(frame)))
    for x, y, w, h, colour, noisy in changes:
        w, h = min(w, width - x), min(h, height - y)
        for row in range(y, y + h):
            for col in range(x, x + w):
                pixel = colours[(colour + (col * row if noisy else 0)) % len(colours)] + b"\xff"
                frame[(row * width + col) * 4:(row * width + col) * 4 + 4] = pixel
        for payload in split_payloads(encoder.diff(bytearray(frame))):
            P.apply_rects(viewer, width, height, P.decode_rects(payload))
        assert viewer == relay_ext.bgra_to_rgba(bytes(frame))
