"""The relay's framebuffer (app/relay/framebuffer.py): agent updates paint it exactly, and the
updates it builds for a viewer from dirty tiles (solid tiles as FILL, few colours as PALETTE,
the rest RAW) reproduce the frame exactly when the viewer applies them."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings, strategies as st

import relay_ext
from agents.common import protocol as p
from app.relay.framebuffer import Framebuffer, TileSet

RED, BLUE = b"\xff\x00\x00\xff", b"\x00\x00\xff\xff"


def noise(n: int, seed: int = 0) -> bytes:
    out = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(n // 32 + 1))
    return out[:n]


def desktop(width: int, height: int) -> Framebuffer:
    """A frame with a solid background, a two-colour "text" area and a noisy "photo"."""
    fb = Framebuffer(width, height)
    fb.apply([p.FillRect(0, 0, width, height, BLUE)])
    text_w, text_h = min(width, 100), min(height, 40)
    indices = p.pack_indices([(i // 3) % 2 for i in range(text_w * text_h)], text_w, text_h, 1)
    fb.apply([p.PaletteRect(0, 0, text_w, text_h, RED + BLUE, indices)])
    if width > 150 and height > 100:
        w, h = min(width, 190) - 140, min(height, 130) - 80
        fb.apply([p.RawRect(140, 80, w, h, noise(w * h * 4))])
    return fb


def decode(payload: bytes):
    return p.decode_rects(payload)


def test_a_keyframe_rebuilds_the_frame_exactly_with_compact_encodings():
    fb = desktop(200, 150)
    rects = decode(fb.keyframe())
    viewer = bytearray(200 * 150 * 4)
    p.apply_rects(viewer, 200, 150, rects)
    assert viewer == fb.data
    kinds = {type(r) for r in rects}
    assert p.FillRect in kinds and p.RawRect in kinds
    if relay_ext.IMPLEMENTATION == "cython":  # the twin leaves palettes out (too slow)
        assert p.PaletteRect in kinds


def test_a_solid_tile_is_sent_as_a_fill_not_pixels():
    fb = Framebuffer(128, 64)
    fb.apply([p.FillRect(0, 0, 128, 64, RED)])
    rects = decode(fb.keyframe())
    assert rects == [p.FillRect(0, 0, 64, 64, RED), p.FillRect(64, 0, 64, 64, RED)]


def test_copy_rect_moves_pixels_within_the_frame():
    fb = Framebuffer(4, 4)
    fb.apply([p.RawRect(0, 0, 4, 1, noise(16))])
    fb.apply([p.CopyRect(0, 2, 4, 1, 0, 0)])
    assert fb.data[32:48] == noise(16)


def test_tiles_mark_every_tile_a_rectangle_touches():
    tiles = TileSet(4, 3)
    tiles.add_rect(63, 0, 2, 65)  # straddles two columns and two rows
    assert tiles.count == 4
    assert [i for i, f in enumerate(tiles.flags) if f] == [0, 1, 4, 5]
    tiles.add_rect(0, 0, 1, 1)
    assert tiles.count == 4


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 200), st.data())
def test_an_update_built_from_dirty_tiles_brings_a_stale_viewer_up_to_date(width, height, data):
    fb = desktop(width, height)
    viewer = bytearray(fb.data)  # the viewer saw this ...
    changes = data.draw(st.lists(st.tuples(
        st.integers(0, width - 1), st.integers(0, height - 1), st.integers(1, 80),
        st.integers(1, 80), st.sampled_from(["fill", "raw"])), min_size=1, max_size=5))
    tiles = fb.tiles()
    for x, y, w, h, kind in changes:  # ... then these changes happened while it was behind
        w, h = min(w, width - x), min(h, height - y)
        rect = (p.FillRect(x, y, w, h, RED) if kind == "fill"
                else p.RawRect(x, y, w, h, noise(w * h * 4, x * 7 + y)))
        fb.apply([rect])
        fb.mark(tiles, [rect])
    p.apply_rects(viewer, width, height, decode(fb.encode_tiles(tiles)))
    assert viewer == fb.data
