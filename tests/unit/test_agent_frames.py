"""The Host agent's screen encoder with scroll and move detection: what scrolled or moved is
sent as ``COPY`` rectangles followed by only what they did not cover, and a viewer that applies
the rectangles in order has the captured frame exactly, on both relay_ext implementations.

The frames are small desktops drawn here: a gradient wallpaper, a text window whose lines
scroll, a noisy "photo" window that moves, a caret that types.
"""
from __future__ import annotations

import random
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import relay_ext
from agents.common import protocol as P
from agents.host import frames as frames_module
from agents.host.frames import ScreenEncoder, merge_touching, split_payloads

IMPLEMENTATIONS = ["cython", "python"]
LINE = 9  # pixels per text line


@contextmanager
def implementation(name: str):
    """The encoder on one relay_ext implementation (the real module, compiled or the twin)."""
    saved = frames_module.relay_ext
    frames_module.relay_ext = relay_ext.implementations()[name]
    try:
        yield
    finally:
        frames_module.relay_ext = saved


class Desktop:
    """A wallpaper with a text window (lines of few-colour 'glyphs') and a photo window."""

    def __init__(self, width=320, height=200, seed=1, text=(16, 12, 200, 150), photo=(150, 40)):
        self.width, self.height = width, height
        self.rng = random.Random(seed)
        self.wallpaper = [b"".join(bytes((40 + y % 200, 80 + (x * 7 + y) % 90, 160 - y % 150, 255))
                                   for x in range(width)) for y in range(height)]
        self.text_at = text  # x, y, w, h
        self.lines = [self._line() for _ in range(200)]
        self.first = 0
        self.photo = [self.rng.randbytes(photo[0] * 4) for _ in range(photo[1])]
        self.photo_at = [width - photo[0] - 10, 30]
        self.caret = 0

    def _line(self) -> list[bytes]:
        ink, link, paper = bytes((20, 20, 20, 255)), bytes((200, 80, 20, 255)), bytes((255,) * 4)
        colour = link if self.rng.random() < 0.2 else ink
        width = self.text_at[2] - 8
        used = self.rng.randint(width // 3, width)
        rows = []
        for r in range(LINE):
            if r in (0, LINE - 1):
                rows.append(paper * width)
                continue
            pixels = [colour if self.rng.random() < 0.35 else paper for _ in range(used)]
            rows.append(b"".join(pixels) + paper * (width - used))
        return rows

    def frame(self) -> bytearray:
        width = self.width
        out = bytearray(b"".join(self.wallpaper))

        def put(x, y, row: bytes):
            if not 0 <= y < self.height:
                return
            x0, x1 = max(x, 0), min(x + len(row) // 4, width)
            if x0 < x1:
                out[(y * width + x0) * 4:(y * width + x1) * 4] = row[(x0 - x) * 4:(x1 - x) * 4]

        tx, ty, tw, th = self.text_at
        paper = bytes((255,) * 4)
        for r in range(th):
            put(tx, ty + r, paper * tw)
        visible = th // LINE
        for i, line in enumerate(self.lines[self.first:self.first + visible]):
            for r, row in enumerate(line):
                put(tx + 4, ty + i * LINE + r, row)
        for r in range(LINE):  # the caret, on the last line
            put(tx + 4 + self.caret, ty + (visible - 1) * LINE + r, bytes((0, 0, 0, 255)) * 2)
        px, py = self.photo_at
        for r, row in enumerate(self.photo):
            put(px, py + r, row)
        return out


def play(encoder: ScreenEncoder, desktop: Desktop, steps, budget=frames_module.UPDATE_BUDGET):
    """Key frame, then one update per step; the viewer (RGBA) must equal each frame exactly.
    Returns the updates' rectangles."""
    width, height = desktop.width, desktop.height
    viewer = bytearray(width * height * 4)
    P.apply_rects(viewer, width, height, encoder.keyframe(desktop.frame()))
    updates = []
    for step in steps:
        step(desktop)
        frame = desktop.frame()
        rects = encoder.diff(frame)
        for payload in split_payloads(rects, budget):
            P.apply_rects(viewer, width, height, P.decode_rects(payload))
        assert viewer == relay_ext.bgra_to_rgba(bytes(frame))
        updates.append(rects)
    return updates


def scroll(lines: int):
    def step(d: Desktop):
        d.first = max(0, d.first + lines)
    return step


def move(dx: int, dy: int):
    def step(d: Desktop):
        d.photo_at[0] += dx
        d.photo_at[1] += dy
    return step


def type_one(d: Desktop):
    d.caret += 3


def copies_of(rects):
    return [r for r in rects if isinstance(r, P.CopyRect)]


def pixels_sent(rects) -> int:
    return sum(r.width * r.height for r in rects if not isinstance(r, P.CopyRect))


def wire_size(updates) -> int:
    compressor = relay_ext.FrameCompressor(3)
    return sum(len(compressor.compress(p)) for rects in updates for p in split_payloads(rects))


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@pytest.mark.parametrize("lines", [3, -2])
def test_scrolled_text_is_one_copy_and_only_the_lines_scrolled_in(name, lines):
    with implementation(name):
        desktop = Desktop(photo=(40, 30))
        desktop.first = 20
        [rects] = play(ScreenEncoder(desktop.width, desktop.height), desktop, [scroll(lines)])
    [copy] = copies_of(rects)
    assert rects[0] is copy  # copies come first: the rest is drawn over them
    assert (copy.src_x, copy.src_y - copy.y) == (copy.x, lines * LINE)
    tx, ty, tw, th = desktop.text_at
    assert copy.width >= tw - 8 and copy.height >= th - 2 * abs(lines) * LINE
    # What is still sent is the new lines (and their tile-edge neighbours), not the window.
    assert pixels_sent(rects) <= abs(lines) * LINE * tw * 1.5


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@pytest.mark.parametrize("offset", [(-24, 6), (30, -17), (0, 11), (13, 0)])
def test_moved_window_is_copied_whole(name, offset):
    with implementation(name):
        desktop = Desktop()
        [rects] = play(ScreenEncoder(desktop.width, desktop.height), desktop, [move(*offset)])
    copies = copies_of(rects)
    assert copies and (copies[0].x - copies[0].src_x, copies[0].y - copies[0].src_y) == offset
    px, py = desktop.photo_at
    x0, x1, y0, y1 = px, min(px + 150, desktop.width), max(py, 0), py + 40  # what is on screen
    covered = sum(max(0, min(c.x + c.width, x1) - max(c.x, x0))
                  * max(0, min(c.y + c.height, y1) - max(c.y, y0)) for c in copies)
    assert covered >= (x1 - x0) * (y1 - y0) * 0.95


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_scroll_move_and_typing_in_one_update_are_two_copies_and_a_few_tiles(name):
    def everything(d: Desktop):
        scroll(2)(d)
        move(-20, 9)(d)
        type_one(d)

    with implementation(name):
        desktop = Desktop(width=420, height=240, photo=(110, 50))
        desktop.first = 30
        desktop.photo_at = [300, 150]
        [rects] = play(ScreenEncoder(desktop.width, desktop.height), desktop, [everything])
    offsets = {(c.x - c.src_x, c.y - c.src_y) for c in copies_of(rects)}
    assert {(0, -2 * LINE), (-20, 9)} <= offsets
    assert pixels_sent(rects) < 0.25 * (200 * 150 + 110 * 50)


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_detection_sends_far_fewer_bytes_for_scrolls_and_moves(name):
    steps = [scroll(1), scroll(2), scroll(1), move(-9, 4), move(-9, 4), scroll(-3)]
    sizes = {}
    with implementation(name):
        for copies in (False, True):
            desktop = Desktop(seed=3)
            desktop.first = 10
            updates = play(ScreenEncoder(desktop.width, desktop.height, copies=copies), desktop,
                           steps)
            sizes[copies] = wire_size(updates)
    assert sizes[True] * 3 < sizes[False]


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_typing_and_small_changes_are_encoded_as_without_detection(name):
    with implementation(name):
        runs = []
        for copies in (False, True):
            desktop = Desktop(seed=4)
            runs.append(play(ScreenEncoder(desktop.width, desktop.height, copies=copies), desktop,
                             [type_one, type_one, move(1, 0)]))
    assert runs[0][:2] == runs[1][:2]
    assert not copies_of(runs[1][0]) and not copies_of(runs[1][1])


def test_touching_dirty_rectangles_of_a_line_of_text_become_one():
    # A line of text 9 rows high crossing three tiles and a tile row edge.
    areas = [(10, 60, 54, 4), (64, 60, 64, 4), (128, 61, 20, 3),
             (10, 64, 54, 5), (64, 64, 64, 5), (128, 64, 20, 4)]
    assert merge_touching(areas) == [(10, 60, 138, 9)]
    # Far apart or badly shaped ones are left alone.
    apart = [(0, 0, 4, 4), (60, 60, 4, 4), (64, 0, 2, 64)]
    assert merge_touching(apart) == apart


@st.composite
def rect_lists(draw):
    tile = draw(st.sampled_from([4, 8, 64]))
    cols, rows = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    areas = []
    for row in range(rows):
        for col in range(cols):
            if draw(st.booleans()):
                x0 = col * tile + draw(st.integers(0, tile - 1))
                y0 = row * tile + draw(st.integers(0, tile - 1))
                areas.append((x0, y0, draw(st.integers(1, (col + 1) * tile - x0)),
                              draw(st.integers(1, (row + 1) * tile - y0))))
    return tile, areas


@settings(max_examples=150, deadline=None)
@given(case=rect_lists())
def test_merged_rectangles_cover_every_dirty_pixel_and_never_overlap(case):
    tile, areas = case
    merged = merge_touching(areas, tile)
    assert len(merged) <= len(areas)

    def pixels(rects):
        return {(x, y) for rx, ry, w, h in rects
                for x in range(rx, rx + w) for y in range(ry, ry + h)}

    assert pixels(areas) <= pixels(merged)
    assert sum(w * h for _, _, w, h in merged) == len(pixels(merged))  # no overlaps


# ---------------------------------------------------------------------------- round trips

STEP = st.one_of(
    st.integers(-6, 6).map(scroll),
    st.tuples(st.integers(-60, 60), st.integers(-40, 40)).map(lambda o: move(*o)),
    st.just(type_one),
    st.integers(0, 2**32 - 1).map(lambda seed: ("noise", seed)),
)


def noise_step(seed: int):
    def step(d: Desktop):
        rng = random.Random(seed)
        w, h = rng.randint(1, 120), rng.randint(1, 80)
        x, y = rng.randint(0, d.width - w), rng.randint(0, d.height - h)
        rows = [rng.randbytes(w * 4) for _ in range(h)]
        original = d.frame

        def frame():
            out = original()
            for r, row in enumerate(rows):
                out[((y + r) * d.width + x) * 4:((y + r) * d.width + x + w) * 4] = row
            return out

        d.frame = frame
    return step


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=5), seed=st.integers(0, 1000),
       size=st.sampled_from([(320, 200), (257, 190), (300, 130)]),
       budget=st.sampled_from([frames_module.UPDATE_BUDGET, 5000]))
def test_viewer_equals_every_capture_after_scrolls_moves_and_noise(name, steps, seed, size, budget):
    steps = [noise_step(s[1]) if isinstance(s, tuple) else s for s in steps]
    with implementation(name):
        desktop = Desktop(width=size[0], height=size[1], seed=seed)
        desktop.first = 50
        play(ScreenEncoder(*size), desktop, steps, budget)  # asserts the exact frames


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(16, 200), height=st.integers(8, 140), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_copies_applied_to_the_previous_frame_give_the_new_one_byte_for_byte(name, width, height,
                                                                            seed, data):
    # Random frames and random shifted copies of them (any size, overlapping, flat or noisy),
    # checked at the level the relay works: BGRA prev + the update's copies and rectangles.
    rng = random.Random(seed)
    ext = relay_ext.implementations()[name]
    flat = data.draw(st.booleans())
    colours = [rng.randbytes(3) + b"\xff" for _ in range(3)]
    prev = bytearray(b"".join(rng.choice(colours) for _ in range(width * height)) if flat
                     else rng.randbytes(width * height * 4))
    cur = bytearray(prev)
    for _ in range(data.draw(st.integers(1, 4))):
        w, h = rng.randint(1, width), rng.randint(1, height)
        ext.copy_rect(cur, width, height, rng.randint(0, width - w), rng.randint(0, height - h),
                      rng.randint(0, width - w), rng.randint(0, height - h), w, h)
    if data.draw(st.booleans()):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randint(1, width - x), rng.randint(1, height - y)
        ext.apply_tile(cur, width, height, x, y, w, h, rng.randbytes(w * h * 4))
    with implementation(name):
        encoder = ScreenEncoder(width, height, tile=data.draw(st.sampled_from([8, 16, 64])))
        encoder.keyframe(bytes(prev))
        rects = encoder.diff(bytes(cur))
    screen = bytearray(relay_ext.bgra_to_rgba(bytes(prev)))
    P.apply_rects(screen, width, height, rects)
    assert screen == relay_ext.bgra_to_rgba(bytes(cur))
