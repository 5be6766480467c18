"""relay_ext, example by example: every function of both implementations (the compiled
``relay_ext._tiles`` and the pure-Python ``relay_ext.pure``) against exact expected bytes, and
every bad argument refused with ValueError or TypeError. The property and fuzz tests are in
``test_relay_ext_properties.py``, the zstd stream in ``test_relay_ext_zstd.py``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import relay_ext
from relay_ext import pure

ROOT = Path(__file__).resolve().parents[2]


def load(name: str):
    if name == "python":
        return pure
    try:
        from relay_ext import _tiles
    except ImportError as exc:  # a broken build must not pass as "python only"
        pytest.fail(f"relay_ext._tiles is not built ({exc}); run .venv/bin/pip install -e .")
    return _tiles


@pytest.fixture(params=["cython", "python"])
def ext(request):
    return load(request.param)


def px(b: int, g: int, r: int, a: int = 255) -> bytes:
    return bytes((b, g, r, a))


def frame(width: int, height: int, fill: bytes = px(0, 0, 0)) -> bytearray:
    return bytearray(fill * (width * height))


def set_px(buf: bytearray, width: int, x: int, y: int, value: bytes) -> None:
    buf[(y * width + x) * 4:(y * width + x) * 4 + 4] = value


def numbered(width: int, height: int) -> bytes:
    """A frame whose pixel (x, y) is bytes (x, y, x + y, 255): every tile is distinct."""
    return b"".join(bytes((x, y, (x + y) & 0xFF, 255)) for y in range(height) for x in range(width))


# ---------------------------------------------------------------------------- which one is loaded

def test_both_implementations_are_available_and_say_which_they_are():
    found = relay_ext.implementations()
    assert set(found) == {"cython", "python"}
    assert found["cython"].IMPLEMENTATION == "cython"
    assert found["python"].IMPLEMENTATION == "python"


def _implementation_in_subprocess(**env) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import relay_ext; print(relay_ext.IMPLEMENTATION)"],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )
    return result.stdout.strip()


def test_compiled_module_is_used_unless_pure_python_is_forced():
    assert _implementation_in_subprocess(TESSERA_PURE_PYTHON="") == "cython"
    assert _implementation_in_subprocess(TESSERA_PURE_PYTHON="1") == "python"


def test_compiled_module_is_built_from_the_current_source():
    compiled = Path(load("cython").__file__)
    source = ROOT / "relay_ext" / "_tiles.pyx"
    assert compiled.stat().st_mtime >= source.stat().st_mtime, (
        "relay_ext/_tiles.pyx changed after the extension was built: run .venv/bin/pip install -e ."
    )


def test_both_implementations_export_the_same_api():
    cython, python = load("cython"), load("python")
    assert sorted(cython.__all__) == sorted(python.__all__)
    for name in python.__all__:
        assert hasattr(cython, name) and hasattr(python, name), name
    assert cython.FrameCompressor is python.FrameCompressor is relay_ext.FrameCompressor


# ---------------------------------------------------------------------------- changed_tiles

def test_identical_frames_have_no_changed_tiles(ext):
    a = numbered(130, 70)
    assert ext.changed_tiles(a, bytes(a), 130, 70) == []


def test_changed_tiles_lists_each_changed_tile_row_by_row(ext):
    prev = frame(130, 70)
    cur = bytearray(prev)
    set_px(cur, 130, 129, 69, px(1, 0, 0))   # bottom-right partial tile (2, 1)
    set_px(cur, 130, 70, 3, px(0, 9, 0))     # tile (1, 0)
    set_px(cur, 130, 0, 0, px(0, 0, 0, 0))   # alpha alone counts: tile (0, 0)
    set_px(cur, 130, 63, 63, px(5, 5, 5))    # the last pixel of tile (0, 0) again
    assert ext.changed_tiles(prev, cur, 130, 70) == [(0, 0), (1, 0), (2, 1)]


def test_changed_tiles_respects_the_tile_size(ext):
    prev = frame(10, 10)
    cur = bytearray(prev)
    set_px(cur, 10, 9, 0, px(1, 1, 1))
    set_px(cur, 10, 4, 5, px(1, 1, 1))
    assert ext.changed_tiles(prev, cur, 10, 10, tile=4) == [(2, 0), (1, 1)]
    assert ext.changed_tiles(prev, cur, 10, 10, tile=1) == [(9, 0), (4, 5)]
    assert ext.changed_tiles(prev, cur, 10, 10, tile=100) == [(0, 0)]


def test_every_tile_changed_is_every_tile_listed(ext):
    prev = numbered(100, 40)
    cur = bytes(b ^ 0xFF for b in prev)
    assert ext.changed_tiles(prev, cur, 100, 40, tile=16) == [
        (c, r) for r in range(3) for c in range(7)
    ]


def test_changed_tiles_takes_any_flat_byte_buffer(ext):
    prev = frame(8, 8)
    cur = bytearray(prev)
    set_px(cur, 8, 7, 7, px(1, 2, 3))
    assert ext.changed_tiles(memoryview(prev), memoryview(bytes(cur)), 8, 8, 4) == [(1, 1)]


@pytest.mark.parametrize(
    "args, message",
    [
        ((bytes(63), bytes(64), 4, 4), "prev has 63 bytes; a 4x4 BGRA frame has 64"),
        ((bytes(64), bytes(68), 4, 4), "cur has 68 bytes"),
        ((bytes(64), bytes(64), 0, 16), "width must be between 1 and 65536, not 0"),
        ((bytes(64), bytes(64), 4, -4), "height must be between 1 and 65536, not -4"),
        ((bytes(64), bytes(64), 4, 4, 0), "tile must be between 1 and 65536, not 0"),
        ((bytes(64), bytes(64), 4, 4, 2**70), "tile must be between 1 and 65536"),
        ((memoryview(bytes(128))[::2], bytes(64), 4, 4), "prev must be a contiguous buffer"),
    ],
)
def test_changed_tiles_refuses_wrong_sizes_with_value_error(ext, args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ext.changed_tiles(*args)


@pytest.mark.parametrize(
    "args",
    [
        (None, bytes(64), 4, 4),
        ("not bytes", bytes(64), 4, 4),
        (bytes(64), 64, 4, 4),
        (bytes(64), bytes(64), 4.0, 4),
        (bytes(64), bytes(64), 4, 4, "64"),
    ],
)
def test_changed_tiles_refuses_wrong_types_with_type_error(ext, args):
    with pytest.raises(TypeError):
        ext.changed_tiles(*args)


# ---------------------------------------------------------------------------- dirty_rect

def test_dirty_rect_is_the_bounding_box_of_changed_pixels_inside_the_tile(ext):
    prev = frame(20, 12)
    cur = bytearray(prev)
    set_px(cur, 20, 5, 3, px(1, 0, 0))
    set_px(cur, 20, 9, 7, px(0, 1, 0))
    set_px(cur, 20, 17, 1, px(0, 0, 1))  # outside the rectangle asked about
    assert ext.dirty_rect(prev, cur, 20, 12, 4, 2, 8, 8) == (5, 3, 5, 5)
    assert ext.dirty_rect(prev, cur, 20, 12, 0, 0, 20, 12) == (5, 1, 13, 7)
    assert ext.dirty_rect(prev, cur, 20, 12, 9, 7, 1, 1) == (9, 7, 1, 1)


def test_dirty_rect_of_an_unchanged_area_is_none(ext):
    prev = frame(20, 12)
    cur = bytearray(prev)
    set_px(cur, 20, 17, 1, px(0, 0, 1))
    assert ext.dirty_rect(prev, cur, 20, 12, 0, 0, 16, 12) is None
    assert ext.dirty_rect(prev, prev, 20, 12, 0, 0, 20, 12) is None


@pytest.mark.parametrize("rect", [(0, 0, 21, 12), (19, 0, 2, 1), (0, 12, 1, 1), (0, 0, 0, 5),
                                  (-1, 0, 1, 1)])
def test_dirty_rect_refuses_a_rectangle_outside_the_frame(ext, rect):
    with pytest.raises(ValueError):
        ext.dirty_rect(frame(20, 12), frame(20, 12), 20, 12, *rect)


# ---------------------------------------------------------------------------- tiles in and out

def test_extract_tile_copies_the_rectangle_row_by_row(ext):
    f = numbered(5, 4)
    assert ext.extract_tile(f, 5, 4, 1, 2, 3, 2) == b"".join(
        bytes((x, y, x + y, 255)) for y in (2, 3) for x in (1, 2, 3)
    )
    assert ext.extract_tile(f, 5, 4, 0, 0, 5, 4) == f
    assert ext.extract_tile(bytearray(f), 5, 4, 4, 3, 1, 1) == bytes((4, 3, 7, 255))


def test_apply_tile_writes_the_rectangle_and_nothing_else(ext):
    f = frame(4, 3, px(9, 9, 9))
    tile = px(1, 1, 1) + px(2, 2, 2) + px(3, 3, 3) + px(4, 4, 4)
    assert ext.apply_tile(f, 4, 3, 2, 1, 2, 2, tile) is None
    g = px(9, 9, 9)
    assert bytes(f) == (g * 4) + (g * 2 + px(1, 1, 1) + px(2, 2, 2)) + (
        g * 2 + px(3, 3, 3) + px(4, 4, 4)
    )


def test_apply_tile_refuses_read_only_frames_and_wrong_sizes(ext):
    with pytest.raises(TypeError, match="writable"):
        ext.apply_tile(bytes(16), 2, 2, 0, 0, 1, 1, bytes(4))
    with pytest.raises(TypeError):
        ext.apply_tile(None, 2, 2, 0, 0, 1, 1, bytes(4))
    with pytest.raises(ValueError, match="data has 8 bytes; a 1x1 tile has 4"):
        ext.apply_tile(bytearray(16), 2, 2, 0, 0, 1, 1, bytes(8))
    with pytest.raises(ValueError, match="does not fit"):
        ext.apply_tile(bytearray(16), 2, 2, 1, 1, 2, 1, bytes(8))
    with pytest.raises(ValueError, match="frame has 12 bytes"):
        ext.apply_tile(bytearray(12), 2, 2, 0, 0, 1, 1, bytes(4))


def test_extract_tile_refuses_a_rectangle_outside_the_frame(ext):
    with pytest.raises(ValueError, match=r"rectangle 2x1 at \(4, 0\) does not fit in a 5x4 frame"):
        ext.extract_tile(numbered(5, 4), 5, 4, 4, 0, 2, 1)


def test_copy_rect_moves_an_area_even_when_it_overlaps_itself(ext):
    f = bytearray(numbered(4, 4))
    ext.copy_rect(f, 4, 4, 0, 1, 0, 0, 4, 3)  # scroll up one row
    expect = numbered(4, 4)
    assert bytes(f) == expect[16:64] + expect[48:64]
    f = bytearray(numbered(4, 4))
    ext.copy_rect(f, 4, 4, 0, 0, 1, 1, 3, 3)  # down and right, overlapping
    rows = [bytearray(numbered(4, 4)[r * 16:(r + 1) * 16]) for r in range(4)]
    original = numbered(4, 4)
    for r in range(1, 4):
        rows[r][4:16] = original[(r - 1) * 16:(r - 1) * 16 + 12]
    assert bytes(f) == b"".join(rows)


def test_copy_rect_refuses_areas_outside_the_frame(ext):
    with pytest.raises(ValueError):
        ext.copy_rect(bytearray(64), 4, 4, 3, 0, 0, 0, 2, 2)
    with pytest.raises(ValueError):
        ext.copy_rect(bytearray(64), 4, 4, 0, 0, 0, 3, 2, 2)
    with pytest.raises(TypeError):
        ext.copy_rect(bytes(64), 4, 4, 0, 0, 1, 1, 2, 2)


# ---------------------------------------------------------------------------- pixel kernels

def test_bgra_to_rgba_swaps_red_and_blue_and_makes_alpha_opaque(ext):
    assert ext.bgra_to_rgba(bytes((1, 2, 3, 0, 10, 20, 30, 40))) == bytes(
        (3, 2, 1, 255, 30, 20, 10, 255)
    )
    assert ext.bgra_to_rgba(b"") == b""
    with pytest.raises(ValueError, match="not a whole number of 4-byte pixels"):
        ext.bgra_to_rgba(bytes(6))


def test_downscale_averages_each_block_with_rounding(ext):
    # 4x2 -> 2x1: left block values 0, 1, 2, 4 (mean 1.75 -> 2); right block all 200.
    f = (px(0, 10, 0) + px(1, 11, 0) + px(200, 0, 0) + px(200, 0, 0)
         + px(2, 12, 0) + px(4, 13, 1) + px(200, 0, 0) + px(200, 0, 0))
    assert ext.downscale(f, 4, 2, 2) == px(2, 12, 0) + px(200, 0, 0)


def test_downscale_averages_partial_blocks_at_the_edges_over_the_pixels_they_cover(ext):
    # 3x3 with factor 2 -> 2x2; the last column and row are blocks of 2 and 1 pixels.
    values = [[0, 10, 100], [20, 30, 50], [7, 9, 255]]
    f = b"".join(px(values[y][x], 0, 0) for y in range(3) for x in range(3))
    assert ext.downscale(f, 3, 3, 2) == px(15, 0, 0) + px(75, 0, 0) + px(8, 0, 0) + px(255, 0, 0)
    assert ext.downscale(f, 3, 3, 1) == f
    assert ext.downscale(f, 3, 3, 5) == px(53, 0, 0)  # 481 / 9 = 53.4


def test_downscale_refuses_a_zero_factor_or_a_wrong_size(ext):
    with pytest.raises(ValueError):
        ext.downscale(bytes(16), 2, 2, 0)
    with pytest.raises(ValueError):
        ext.downscale(bytes(15), 2, 2, 1)


def test_reduce_colours_keeps_the_top_bits_and_full_white_stays_white(ext):
    data = bytes((0x00, 0x80, 0xFF, 0x12, 0x7F, 0x40, 0x01, 0xFE))
    assert ext.reduce_colours(data, 3) == bytes((0x00, 0x92, 0xFF, 0x12, 0x6D, 0x49, 0x00, 0xFE))
    assert ext.reduce_colours(data, 1) == bytes((0x00, 0xFF, 0xFF, 0x12, 0x00, 0x00, 0x00, 0xFE))
    assert ext.reduce_colours(data, 5) == bytes((0x00, 0x84, 0xFF, 0x12, 0x7B, 0x42, 0x00, 0xFE))
    assert ext.reduce_colours(data, 8) == data
    with pytest.raises(ValueError):
        ext.reduce_colours(data, 0)
    with pytest.raises(ValueError):
        ext.reduce_colours(data, 9)


def test_solid_colour_of_a_one_colour_tile_is_its_32_bit_value(ext):
    assert ext.solid_colour(px(1, 2, 3, 4) * 4096) == 0x04030201
    assert ext.solid_colour(px(255, 255, 255)) == 0xFFFFFFFF
    assert ext.solid_colour(px(1, 2, 3, 4) * 100 + px(1, 2, 3, 5)) is None
    assert ext.solid_colour(px(0, 0, 0) + px(1, 2, 3, 4) * 10) is None
    with pytest.raises(ValueError, match="no pixels"):
        ext.solid_colour(b"")
    with pytest.raises(ValueError):
        ext.solid_colour(bytes(7))


# ---------------------------------------------------------------------------- palettes

WHITE, BLACK, RED, BLUE = px(255, 255, 255), px(0, 0, 0), px(0, 0, 255), px(255, 0, 0)


def test_palette_of_a_two_colour_tile_has_one_bit_per_pixel(ext):
    pixels = [WHITE, BLACK, BLACK, WHITE, WHITE, WHITE, WHITE, WHITE, BLACK]
    pal, indices = ext.palette(b"".join(pixels), 16)
    assert pal == WHITE + BLACK
    assert indices == bytes((0b01100000, 0b10000000))
    assert ext.expand_palette(pal, indices, 9) == b"".join(pixels)


def test_palette_index_width_follows_the_number_of_colours(ext):
    three = WHITE + BLACK + RED + RED + BLACK
    assert ext.palette(three, 4) == (WHITE + BLACK + RED, bytes((0b00011010, 0b01000000)))
    five = WHITE + BLACK + RED + BLUE + px(1, 1, 1)
    assert ext.palette(five, 16) == (five, bytes((0x01, 0x23, 0x40)))
    seventeen = b"".join(px(i, 0, 0) for i in range(17))
    assert ext.palette(seventeen, 256) == (seventeen, bytes(range(17)))
    assert ext.palette(WHITE * 3, 1) == (WHITE, bytes(1))
    assert [ext.palette_bits(n) for n in (1, 2, 3, 4, 5, 16, 17, 256)] == [1, 1, 2, 2, 4, 4, 8, 8]


def test_palette_of_too_many_colours_is_none(ext):
    assert ext.palette(WHITE + BLACK + RED, 2) is None
    assert ext.palette(b"".join(px(i % 256, i // 256, 0) for i in range(257)), 256) is None


def test_palette_refuses_bad_arguments(ext):
    for limit in (0, 257, -1):
        with pytest.raises(ValueError):
            ext.palette(WHITE, limit)
    with pytest.raises(ValueError):
        ext.palette(b"", 16)
    with pytest.raises(ValueError):
        ext.palette(bytes(5), 16)
    with pytest.raises(ValueError):
        ext.palette_bits(0)


def test_expand_palette_refuses_indices_past_the_palette_or_of_the_wrong_length(ext):
    with pytest.raises(ValueError, match="past the palette"):
        ext.expand_palette(WHITE + BLACK + RED, bytes((0b11000000,)), 1)
    with pytest.raises(ValueError, match="indices has 2 bytes"):
        ext.expand_palette(WHITE + BLACK, bytes(2), 8)
    with pytest.raises(ValueError):
        ext.expand_palette(bytes(6), bytes(1), 1)
    with pytest.raises(ValueError):
        ext.expand_palette(bytes(4 * 257), bytes(1), 1)
    # A one-colour palette has one-bit indices; index 1 does not exist.
    with pytest.raises(ValueError, match="past the palette"):
        ext.expand_palette(WHITE, bytes((0b00100000,)), 3)


# ---------------------------------------------------------------------------- websocket unmask

def test_unmask_decodes_the_rfc_6455_example(ext):
    # RFC 6455 section 5.7: a masked text frame carrying "Hello".
    assert ext.unmask(bytes.fromhex("7f9f4d5158"), bytes.fromhex("37fa213d")) == b"Hello"


def test_unmask_matches_a_byte_by_byte_xor_for_every_length_around_the_word_size(ext):
    mask = bytes((0xA5, 0x01, 0xFF, 0x3C))
    for n in range(0, 40):
        payload = bytes((i * 37) & 0xFF for i in range(n))
        expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert ext.unmask(payload, mask) == expected
        assert ext.unmask(bytearray(payload), memoryview(mask)) == expected


def test_unmask_refuses_a_mask_that_is_not_four_bytes(ext):
    for mask in (b"", b"abc", b"abcde"):
        with pytest.raises(ValueError, match="4 bytes"):
            ext.unmask(b"payload", mask)
    with pytest.raises(TypeError):
        ext.unmask("text", b"abcd")


# ---------------------------------------------------------------------------- find_copy

def noise_frame(width: int, height: int, seed: int) -> bytearray:
    import random

    return bytearray(random.Random(seed).randbytes(width * height * 4))


def area(frame_: bytes, width: int, x: int, y: int, w: int, h: int) -> bytes:
    return b"".join(frame_[((y + r) * width + x) * 4:((y + r) * width + x + w) * 4]
                    for r in range(h))


def paste(frame_: bytearray, width: int, x: int, y: int, w: int, pixels: bytes) -> None:
    for r in range(len(pixels) // (w * 4)):
        start = ((y + r) * width + x) * 4
        frame_[start:start + w * 4] = pixels[r * w * 4:(r + 1) * w * 4]


def test_find_copy_finds_a_region_scrolled_up_and_down(ext):
    width, height = 120, 90
    prev = noise_frame(width, height, 1)
    up = bytearray(prev)
    ext.copy_rect(up, width, height, 10, 20, 10, 13, 80, 60)  # 7 rows up inside x 10..90
    paste(up, width, 10, 73, 80, noise_frame(80, 7, 2))      # the rows scrolled in
    assert ext.find_copy(prev, up, width, height, 0, 0, width, height) == (10, 20, 10, 13, 80, 60)
    down = bytearray(prev)
    ext.copy_rect(down, width, height, 10, 13, 10, 20, 80, 60)
    paste(down, width, 10, 13, 80, noise_frame(80, 7, 3))
    assert ext.find_copy(prev, down, width, height, 0, 0, width, height) == (10, 13, 10, 20, 80, 60)


def test_find_copy_finds_a_window_moved_diagonally_over_a_flat_background(ext):
    width, height = 160, 120
    background = px(90, 60, 30) * (width * height)
    window = noise_frame(50, 40, 4)
    prev, cur = bytearray(background), bytearray(background)
    paste(prev, width, 30, 50, 50, window)
    paste(cur, width, 37, 44, 50, window)  # 7 right, 6 up
    found = ext.find_copy(prev, cur, width, height, 0, 0, width, height)
    assert found is not None
    src_x, src_y, x, y, w, h = found
    assert (x - src_x, y - src_y) == (7, -6)
    assert x <= 37 and y <= 44 and x + w >= 87 and y + h >= 84  # the whole window
    assert area(prev, width, src_x, src_y, w, h) == area(cur, width, x, y, w, h)


def test_find_copy_keeps_the_copy_inside_the_region_and_above_the_minimum_area(ext):
    width, height = 120, 90
    prev = noise_frame(width, height, 5)
    cur = bytearray(prev)
    ext.copy_rect(cur, width, height, 0, 9, 0, 0, width, 81)  # the whole frame scrolled 9 rows
    assert ext.find_copy(prev, cur, width, height, 20, 10, 64, 50) == (20, 19, 20, 10, 64, 50)
    assert ext.find_copy(prev, cur, width, height, 20, 10, 64, 50, min_area=64 * 50) is not None
    assert ext.find_copy(prev, cur, width, height, 20, 10, 64, 50, min_area=64 * 50 + 1) is None


def test_find_copy_finds_nothing_in_new_content_flat_changes_or_narrow_regions(ext):
    width, height = 100, 60
    prev = noise_frame(width, height, 6)
    other = noise_frame(width, height, 7)
    assert ext.find_copy(prev, other, width, height, 0, 0, width, height) is None
    assert ext.find_copy(prev, bytes(prev), width, height, 0, 0, width, height) is None
    flat = bytearray(prev)
    paste(flat, width, 0, 10, width, px(1, 2, 3) * (width * 30))  # flat: no anchor to follow
    assert ext.find_copy(prev, flat, width, height, 0, 0, width, height) is None
    scrolled = bytearray(prev)
    ext.copy_rect(scrolled, width, height, 0, 5, 0, 0, width, 55)
    assert ext.find_copy(prev, scrolled, width, height, 0, 0, 15, height) is None  # < 16 wide


def test_find_copy_looks_for_moves_only_with_searches_and_tries_hints_first(ext):
    width, height = 140, 100
    background = px(200, 200, 200) * (width * height)
    window = noise_frame(40, 30, 8)
    prev, cur = bytearray(background), bytearray(background)
    paste(prev, width, 20, 20, 40, window)
    paste(cur, width, 75, 52, 40, window)  # (55, 32): no scroll
    whole = (0, 0, width, height)
    assert ext.find_copy(prev, cur, width, height, *whole, searches=0) is None
    found = ext.find_copy(prev, cur, width, height, *whole, searches=0, hints=[(1, 1), (55, 32)])
    assert found is not None and (found[2] - found[0], found[3] - found[1]) == (55, 32)
    assert found == ext.find_copy(prev, cur, width, height, *whole)


def test_find_copy_takes_any_flat_byte_buffer(ext):
    width, height = 64, 40
    prev = noise_frame(width, height, 9)
    cur = bytearray(prev)
    ext.copy_rect(cur, width, height, 0, 4, 0, 0, width, 36)
    expected = (0, 4, 0, 0, width, 36)
    assert ext.find_copy(memoryview(bytes(prev)), memoryview(cur), width, height, 0, 0, width,
                         height) == expected


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((bytes(63), bytes(64), 4, 4, 0, 0, 4, 4), {}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 5, 4), {}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 0, 4), {}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"min_area": 0}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"anchors": 0}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"anchors": 64}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"searches": -1}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"hints": [(1, 2, 3)]}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"hints": [(0, 70000)]}, ValueError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"hints": [(1, 1)] * 17}, ValueError),
        ((None, bytes(64), 4, 4, 0, 0, 4, 4), {}, TypeError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4.0), {}, TypeError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"hints": "ab"}, TypeError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"hints": [1]}, TypeError),
        ((bytes(64), bytes(64), 4, 4, 0, 0, 4, 4), {"hints": [(1.0, 2)]}, TypeError),
    ],
)
def test_find_copy_refuses_bad_arguments(ext, args, kwargs, error):
    with pytest.raises(error):
        ext.find_copy(*args, **kwargs)
