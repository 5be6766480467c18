"""The relay's copy of one device screen, and the tile bookkeeping of flow control.

``Framebuffer`` holds the latest RGBA pixels of a screen (docs/protocol.md, FRAME_UPDATE):
agent updates are painted into it as they arrive, so a viewer that falls behind or joins late
is served from here rather than from a queue of old updates. ``TileSet`` is one viewer's set of
dirty 64x64 tiles. ``Framebuffer.encode_tiles`` turns a tile set into the rectangles of one
update: a solid tile becomes ``FILL``, a tile of few colours ``PALETTE``, runs of other tiles in
a tile row one ``RAW`` rectangle.

Called by ``app.relay.hub`` (one framebuffer per screen of a device that has viewers) and
``app.relay.viewer`` (building coalesced frames and key frames). Pixel kernels come from
``relay_ext`` (compiled when available).
"""
from __future__ import annotations

import relay_ext
from agents.common import protocol as p

TILE = p.TILE
# A palette pays off up to 16 colours (4 bits an index, an eighth of the raw size); beyond that
# zstd on the raw pixels does as well.
PALETTE_COLOURS = 16
# The pure-Python twin's palette search visits every pixel in Python: too slow for key frames.
USE_PALETTE = relay_ext.IMPLEMENTATION == "cython"


class TileSet:
    """Dirty tiles of one screen for one viewer: a byte per tile, so memory is fixed by the
    screen size however far behind the viewer is."""

    __slots__ = ("cols", "rows", "flags", "count")

    def __init__(self, cols: int, rows: int):
        self.cols, self.rows = cols, rows
        self.flags = bytearray(cols * rows)
        self.count = 0

    def __bool__(self) -> bool:
        return self.count > 0

    def add_rect(self, x: int, y: int, w: int, h: int) -> None:
        flags, cols = self.flags, self.cols
        c0, c1 = x // TILE, (x + w - 1) // TILE
        for row in range(y // TILE, (y + h - 1) // TILE + 1):
            base = row * cols
            for i in range(base + c0, base + c1 + 1):
                if not flags[i]:
                    flags[i] = 1
                    self.count += 1

    def fill(self) -> None:
        self.flags = bytearray(b"\x01" * (self.cols * self.rows))
        self.count = self.cols * self.rows

    def clear(self) -> None:
        self.flags = bytearray(self.cols * self.rows)
        self.count = 0


class Framebuffer:
    __slots__ = ("width", "height", "data", "complete", "cols", "rows")

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.data = bytearray(width * height * 4)
        # True once a key frame has painted every pixel; until then viewers wait.
        self.complete = False
        self.cols = (width + TILE - 1) // TILE
        self.rows = (height + TILE - 1) // TILE

    def tiles(self) -> TileSet:
        return TileSet(self.cols, self.rows)

    def apply(self, rects) -> None:
        """Paint an update's rectangles (already checked against the screen's bounds)."""
        w, h, fb = self.width, self.height, self.data
        for rect in rects:
            if isinstance(rect, p.RawRect):
                relay_ext.apply_tile(fb, w, h, rect.x, rect.y, rect.width, rect.height, rect.pixels)
            elif isinstance(rect, p.CopyRect):
                relay_ext.copy_rect(fb, w, h, rect.src_x, rect.src_y, rect.x, rect.y,
                                    rect.width, rect.height)
            elif isinstance(rect, p.FillRect):
                relay_ext.apply_tile(fb, w, h, rect.x, rect.y, rect.width, rect.height,
                                     rect.color * (rect.width * rect.height))
            else:
                relay_ext.apply_tile(fb, w, h, rect.x, rect.y, rect.width, rect.height,
                                     p.rect_pixels(rect))

    def mark(self, tiles: TileSet, rects) -> None:
        for rect in rects:
            tiles.add_rect(rect.x, rect.y, rect.width, rect.height)

    def encode_tiles(self, tiles: TileSet) -> bytes:
        """The rectangle bytes of one update covering every tile in ``tiles``."""
        w, h, fb = self.width, self.height, self.data
        out: list = []
        flags, cols = tiles.flags, tiles.cols
        for row in range(tiles.rows):
            y = row * TILE
            th = min(TILE, h - y)
            run_start = None  # first column of a run of RAW tiles
            for col in range(cols + 1):
                dirty = col < cols and flags[row * cols + col]
                rect = None
                if dirty:
                    x = col * TILE
                    tw = min(TILE, w - x)
                    pixels = relay_ext.extract_tile(fb, w, h, x, y, tw, th)
                    rect = _compact(x, y, tw, th, pixels)
                if rect is None and dirty:
                    if run_start is None:
                        run_start = col
                    continue
                if run_start is not None:
                    x0 = run_start * TILE
                    rw = min(col * TILE, w) - x0
                    out.append(p.RawRect(x0, y, rw, th, relay_ext.extract_tile(fb, w, h, x0, y, rw, th)))
                    run_start = None
                if rect is not None:
                    out.append(rect)
        return p.encode_rects(out)

    def keyframe(self) -> bytes:
        tiles = self.tiles()
        tiles.fill()
        return self.encode_tiles(tiles)


def _compact(x: int, y: int, w: int, h: int, pixels: bytes):
    """A FILL or PALETTE rectangle for the tile when it has so few colours, else None."""
    colour = relay_ext.solid_colour(pixels)
    if colour is not None:
        return p.FillRect(x, y, w, h, colour.to_bytes(4, "little"))
    found = relay_ext.palette(pixels, PALETTE_COLOURS) if USE_PALETTE else None
    if found is None:
        return None
    palette, indices = found
    return p.PaletteRect(x, y, w, h, palette, indices)
