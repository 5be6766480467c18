"""relay_ext under hypothesis: the tile codec round trip (diff -> encode -> zstd -> decode ->
apply gives the new frame back, exactly), the compiled module and the pure twin agreeing on
random input, and fuzzing every function with random sizes, buffers and parameters: a result,
a ValueError or a TypeError, never a crash (a crash in C would take this process down)."""
from __future__ import annotations

import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from relay_ext import FrameCompressor, FrameDecompressor, pure

from .test_relay_ext import load

IMPLEMENTATIONS = ["cython", "python"]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------- a tiny tile codec
# The shape of a frame update (docs/protocol.md has the real one): per changed tile, its dirty
# sub-rectangle, sent as a fill when it is one colour, a palette when it has few colours, raw
# pixels otherwise; the whole update through the viewer's zstd stream.

FILL, PALETTE, RAW = 1, 2, 0
HEAD = struct.Struct("<HHHHB")


def encode_update(ext, prev: bytes, cur: bytes, width: int, height: int, tile: int) -> bytes:
    parts = []
    for col, row in ext.changed_tiles(prev, cur, width, height, tile):
        x, y = col * tile, row * tile
        w, h = min(tile, width - x), min(tile, height - y)
        rect = ext.dirty_rect(prev, cur, width, height, x, y, w, h)
        assert rect is not None, "a changed tile has changed pixels"
        x, y, w, h = rect
        pixels = ext.extract_tile(cur, width, height, x, y, w, h)
        colour = ext.solid_colour(pixels)
        if colour is not None:
            parts.append(HEAD.pack(x, y, w, h, FILL) + colour.to_bytes(4, "little"))
            continue
        found = ext.palette(pixels, 16)
        if found is not None:
            pal, indices = found
            parts.append(HEAD.pack(x, y, w, h, PALETTE) + bytes((len(pal) // 4 - 1,)) + pal
                         + indices)
            continue
        parts.append(HEAD.pack(x, y, w, h, RAW) + pixels)
    return b"".join(parts)


def apply_update(ext, framebuffer: bytearray, width: int, height: int, body: bytes) -> None:
    pos = 0
    while pos < len(body):
        x, y, w, h, kind = HEAD.unpack_from(body, pos)
        pos += HEAD.size
        if kind == FILL:
            pixels = body[pos:pos + 4] * (w * h)
            pos += 4
        elif kind == PALETTE:
            colours = body[pos] + 1
            pal = body[pos + 1:pos + 1 + colours * 4]
            pos += 1 + colours * 4
            size = (w * h * ext.palette_bits(colours) + 7) // 8
            pixels = ext.expand_palette(pal, body[pos:pos + size], w * h)
            pos += size
        else:
            pixels = body[pos:pos + w * h * 4]
            pos += w * h * 4
        ext.apply_tile(framebuffer, width, height, x, y, w, h, pixels)


# ---------------------------------------------------------------------------- frames

COLOURS = [bytes((0, 0, 0, 255)), bytes((255, 255, 255, 255)), bytes((40, 90, 200, 255)),
           bytes((12, 12, 12, 0)), bytes((200, 30, 30, 255))]


@st.composite
def frame_sequences(draw):
    """A first frame and a few changed ones: solid blocks, few-colour 'text', and noise."""
    width = draw(st.integers(1, 150))
    height = draw(st.integers(1, 90))
    tile = draw(st.sampled_from([1, 3, 16, 32, 64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    first = bytearray(rng.choice(COLOURS) * (width * height))
    if draw(st.booleans()):
        first = bytearray(rng.randbytes(width * height * 4))
    frames = [bytes(first)]
    for _ in range(draw(st.integers(1, 4))):
        cur = bytearray(frames[-1])
        for _ in range(draw(st.integers(0, 5))):
            x, y = rng.randrange(width), rng.randrange(height)
            w, h = rng.randint(1, width - x), rng.randint(1, height - y)
            kind = draw(st.sampled_from(["fill", "text", "noise", "pixel"]))
            for r in range(y, y + h):
                for c in range(x, x + w) if kind != "pixel" else [x]:
                    if kind == "fill":
                        value = COLOURS[seed % len(COLOURS)]
                    elif kind == "text":
                        value = rng.choice(COLOURS[:3])
                    else:
                        value = rng.randbytes(4)
                    cur[(r * width + c) * 4:(r * width + c) * 4 + 4] = value
                if kind == "pixel":
                    break
        frames.append(bytes(cur))
    return width, height, tile, frames


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@SETTINGS
@given(sequence=frame_sequences(), level=st.sampled_from([1, 3]))
def test_diff_encode_compress_decode_apply_reproduces_every_frame_exactly(name, sequence, level):
    ext = load(name)
    width, height, tile, frames = sequence
    sender, receiver = FrameCompressor(level=level), FrameDecompressor()
    viewer = bytearray(frames[0])  # the viewer got the key frame
    for prev, cur in zip(frames, frames[1:]):
        body = encode_update(ext, prev, cur, width, height, tile)
        received = receiver.decompress(sender.compress(body), raw_len=len(body))
        apply_update(ext, viewer, width, height, received)
        assert bytes(viewer) == cur


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@SETTINGS
@given(sequence=frame_sequences())
def test_changed_tiles_are_exactly_the_tiles_whose_pixels_differ(name, sequence):
    ext = load(name)
    width, height, tile, frames = sequence
    prev, cur = frames[0], frames[-1]
    expected = set()
    for y in range(height):
        row = y * width * 4
        for x in range(width):
            if prev[row + x * 4:row + x * 4 + 4] != cur[row + x * 4:row + x * 4 + 4]:
                expected.add((x // tile, y // tile))
    found = ext.changed_tiles(prev, cur, width, height, tile)
    assert found == sorted(expected, key=lambda cr: (cr[1], cr[0]))


# ---------------------------------------------------------------------------- twins agree

def both(call):
    """The result of ``call(module)`` on each implementation, or the exception type it raised."""
    outcomes = []
    for name in IMPLEMENTATIONS:
        try:
            outcomes.append(("ok", call(load(name))))
        except (ValueError, TypeError) as exc:
            outcomes.append(("error", type(exc)))
    return outcomes


pixels = st.binary(min_size=0, max_size=600)


@SETTINGS
@given(data=pixels, bits=st.integers(0, 9), colours=st.integers(0, 40),
       mask=st.binary(min_size=0, max_size=6))
def test_compiled_and_pure_pixel_kernels_agree(data, bits, colours, mask):
    for call in (
        lambda m: m.bgra_to_rgba(data),
        lambda m: m.reduce_colours(data, bits),
        lambda m: m.solid_colour(data),
        lambda m: m.palette(data, colours),
        lambda m: m.unmask(data, mask),
    ):
        first, second = both(call)
        assert first == second


@SETTINGS
@given(width=st.integers(1, 40), height=st.integers(1, 30), seed=st.integers(0, 2**32 - 1),
       factor=st.integers(1, 45), rect=st.tuples(*[st.integers(0, 45)] * 4))
def test_compiled_and_pure_frame_functions_agree(width, height, seed, factor, rect):
    rng = random.Random(seed)
    a = rng.randbytes(width * height * 4)
    b = bytearray(a)
    for _ in range(rng.randint(0, 6)):
        i = rng.randrange(len(b))
        b[i] ^= rng.randint(1, 255)
    b = bytes(b)
    x, y, w, h = rect
    for call in (
        lambda m: m.downscale(a, width, height, factor),
        lambda m: m.dirty_rect(a, b, width, height, x, y, w, h),
        lambda m: m.extract_tile(a, width, height, x, y, w, h),
        lambda m: m.changed_tiles(a, b, width, height, factor),
    ):
        first, second = both(call)
        assert first == second
    frames = {}
    for name in IMPLEMENTATIONS:
        target = bytearray(a)
        try:
            load(name).copy_rect(target, width, height, h, w, x, y, w or 1, h or 1)
        except ValueError:
            target = None
        frames[name] = target
    assert frames["cython"] == frames["python"]


@SETTINGS
@given(data=st.binary(min_size=1, max_size=400).filter(lambda d: len(d) % 4 == 0),
       limit=st.integers(1, 256))
def test_expand_palette_inverts_palette(data, limit):
    for name in IMPLEMENTATIONS:
        ext = load(name)
        found = ext.palette(data, limit)
        distinct = {data[i:i + 4] for i in range(0, len(data), 4)}
        if len(distinct) > limit:
            assert found is None
            continue
        pal, indices = found
        assert len(pal) == 4 * len(distinct)
        assert ext.expand_palette(pal, indices, len(data) // 4) == data


# ---------------------------------------------------------------------------- copy detection

@st.composite
def shifted_frames(draw):
    """An old frame and a new one where parts of it scrolled or moved (areas copied within the
    frame, as ``copy_rect`` does), maybe with new pixels on top; and a region to search."""
    width = draw(st.integers(16, 110))
    height = draw(st.integers(1, 80))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    colours = [rng.randbytes(4) for _ in range(draw(st.integers(1, 6)))]
    if draw(st.booleans()):
        prev = bytearray(rng.randbytes(width * height * 4))
    else:  # few colours, in runs: text-like, with repeats that make several candidates
        prev = bytearray(b"".join(rng.choice(colours) * rng.randint(1, 4)
                                  for _ in range(width * height))[:width * height * 4])
    cur = bytearray(prev)
    for _ in range(draw(st.integers(0, 3))):
        w, h = rng.randint(1, width), rng.randint(1, height)
        pure.copy_rect(cur, width, height, rng.randint(0, width - w), rng.randint(0, height - h),
                       rng.randint(0, width - w), rng.randint(0, height - h), w, h)
    for _ in range(draw(st.integers(0, 3))):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randint(1, width - x), rng.randint(1, height - y)
        pure.apply_tile(cur, width, height, x, y, w, h, rng.randbytes(w * h * 4))
    if draw(st.booleans()):
        region = (0, 0, width, height)
    else:
        x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        region = (x, y, draw(st.integers(1, width - x)), draw(st.integers(1, height - y)))
    options = {"min_area": draw(st.integers(1, 400)), "anchors": draw(st.integers(1, 10)),
               "searches": draw(st.integers(0, 3)),
               "hints": draw(st.lists(st.tuples(st.integers(-30, 30), st.integers(-30, 30)),
                                      max_size=3))}
    return width, height, bytes(prev), bytes(cur), region, options


@SETTINGS
@given(case=shifted_frames())
def test_find_copy_gives_the_same_exact_copy_on_both_implementations(case):
    width, height, prev, cur, region, options = case
    first, second = both(lambda m: m.find_copy(prev, cur, width, height, *region, **options))
    assert first == second
    found = first[1]
    if found is None:
        return
    src_x, src_y, x, y, w, h = found
    rx, ry, rw, rh = region
    assert rx <= x and x + w <= rx + rw and ry <= y and y + h <= ry + rh
    assert w * h >= options["min_area"] and (src_x, src_y) != (x, y)
    assert pure.extract_tile(prev, width, height, src_x, src_y, w, h) == \
        pure.extract_tile(cur, width, height, x, y, w, h)


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@SETTINGS
@given(width=st.integers(30, 120), height=st.integers(8, 80), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_find_copy_finds_every_scroll_of_distinct_rows(name, width, height, seed, data):
    ext = load(name)
    rng = random.Random(seed)
    prev = rng.randbytes(width * height * 4)  # noise: every row is distinct
    shift = data.draw(st.integers(1, height // 2))
    w = data.draw(st.integers(16, width))
    x = data.draw(st.integers(0, width - w))
    cur = bytearray(prev)
    ext.copy_rect(cur, width, height, x, shift, x, 0, w, height - shift)  # scroll up
    ext.apply_tile(cur, width, height, x, height - shift, w, shift, rng.randbytes(w * shift * 4))
    found = ext.find_copy(prev, cur, width, height, 0, 0, width, height, min_area=1)
    assert found == (x, shift, x, 0, w, height - shift)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), slope=st.integers(1, 3), shift=st.integers(1, 20))
def test_find_copy_agrees_when_the_copied_area_narrows_row_by_row(seed, slope, shift):
    # A scrolled area whose left edge moves right by ``slope`` pixels a row (a staircase of
    # new pixels beside it): more than BREAKS span changes on each side of the anchor.
    rng = random.Random(seed)
    width, height = 420, 200
    prev = rng.randbytes(width * height * 4)
    cur = bytearray(prev)
    pure.copy_rect(cur, width, height, 0, shift, 0, 0, width, height - shift)
    for r in range(height):
        edge = min(width // 2, abs(r - height // 2) * slope)
        pure.apply_tile(cur, width, height, 0, r, edge or 1, 1, rng.randbytes((edge or 1) * 4))
    first, second = both(lambda m: m.find_copy(prev, cur, width, height, 0, 0, width, height))
    assert first == second
    src_x, src_y, x, y, w, h = first[1]
    assert (src_x, src_y - y) == (x, shift)
    assert pure.extract_tile(prev, width, height, src_x, src_y, w, h) == \
        pure.extract_tile(bytes(cur), width, height, x, y, w, h)


# ---------------------------------------------------------------------------- fuzz

ints = st.one_of(st.integers(-3, 70), st.integers(-2**70, 2**70),
                 st.sampled_from([0, 1, 64, 65535, 65536, 65537, 2**31, 2**63]))
odd_values = st.sampled_from([None, "text", 1.5, [1, 2], object(), True])
buffers = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(bytearray),
    st.binary(max_size=300).map(memoryview),
    st.binary(min_size=2, max_size=300).map(lambda b: memoryview(b)[::2]),
)
args = st.one_of(ints, buffers, odd_values)

SIGNATURES = {
    "changed_tiles": ["buf", "buf", "int", "int", "int"],
    "dirty_rect": ["buf", "buf"] + ["int"] * 6,
    "extract_tile": ["buf"] + ["int"] * 6,
    "apply_tile": ["wbuf"] + ["int"] * 6 + ["buf"],
    "copy_rect": ["wbuf"] + ["int"] * 8,
    "find_copy": ["buf", "buf"] + ["int"] * 9,
    "bgra_to_rgba": ["buf"],
    "downscale": ["buf", "int", "int", "int"],
    "reduce_colours": ["buf", "int"],
    "solid_colour": ["buf"],
    "palette": ["buf", "int"],
    "expand_palette": ["buf", "buf", "int"],
    "palette_bits": ["int"],
    "unmask": ["buf", "buf"],
}


@st.composite
def calls(draw):
    name = draw(st.sampled_from(sorted(SIGNATURES)))
    values = []
    for kind in SIGNATURES[name]:
        if draw(st.integers(0, 9)) == 0:  # now and then, anything at all
            values.append(draw(args))
        elif kind == "int":
            values.append(draw(ints))
        elif kind == "wbuf":
            values.append(bytearray(draw(st.binary(max_size=300))))
        else:
            values.append(draw(buffers))
    return name, values


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls())
def test_any_arguments_give_a_result_or_a_value_or_type_error(name, call):
    ext = load(name)
    function, values = call
    try:
        getattr(ext, function)(*values)
    except (ValueError, TypeError):
        pass


@pytest.mark.parametrize("name", IMPLEMENTATIONS)
@settings(max_examples=150, deadline=None)
@given(width=st.integers(1, 70), height=st.integers(1, 70), tile=ints, data=st.data())
def test_fuzzed_frames_of_the_right_size_never_break_changed_tiles(name, width, height, tile,
                                                                  data):
    ext = load(name)
    size = width * height * 4
    prev = data.draw(st.binary(min_size=size, max_size=size))
    cur = data.draw(st.binary(min_size=size, max_size=size))
    try:
        tiles = ext.changed_tiles(prev, cur, width, height, tile)
    except ValueError:
        assert not 1 <= tile <= 65536
        return
    assert tiles == pure.changed_tiles(prev, cur, width, height, tile)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=200), max_size=4), raw_len=st.one_of(
    st.none(), st.integers(-5, 5000)))
def test_random_bytes_to_the_decompressor_give_bytes_or_a_value_error(chunks, raw_len):
    receiver = FrameDecompressor(max_output=100_000)
    for chunk in chunks:
        try:
            receiver.decompress(chunk, raw_len)
        except ValueError:
            pass
