"""Turns successive captures of one screen into ``FRAME_UPDATE`` rectangles
(``docs/protocol.md``): only the 64 x 64 tiles that changed, each cut down to the
rectangle of pixels that really changed, sent as a fill when it is one colour, as a palette
when it has few colours, else as raw RGBA.

``agent.Agent``'s capture thread keeps one :class:`ScreenEncoder` per screen and compresses the
result with the connection's zstd stream. The pixel work is ``relay_ext``'s (compiled when
built): diffing, cutting, swizzling BGRA to RGBA, solid and palette detection.
"""
from __future__ import annotations

import relay_ext
from agents.common.protocol import (
    MAX_RAW_UPDATE, TILE, FillRect, PaletteRect, RawRect, Rect, encode_rects,
)

# A key frame of a large screen is cut into updates of at most this many uncompressed bytes
# (well inside the relay's 16 MiB message limit even if zstd could not shrink it at all).
UPDATE_BUDGET = 8 * 1024 * 1024
assert UPDATE_BUDGET <= MAX_RAW_UPDATE

_RECT_HEADER = 9  # x, y, w, h (u16 each) + encoding (u8)


def encode_region(frame, width: int, height: int, x: int, y: int, w: int, h: int) -> Rect:
    """One rectangle of a BGRA frame in the cheapest of FILL, PALETTE and RAW."""
    bgra = relay_ext.extract_tile(frame, width, height, x, y, w, h)
    colour = relay_ext.solid_colour(bgra)
    if colour is not None:
        return FillRect(x, y, w, h, relay_ext.bgra_to_rgba(colour.to_bytes(4, "little")))
    found = relay_ext.palette(bgra, 256)
    if found is not None:
        colours, indices = found
        # relay_ext packs indices as the protocol's one continuous bit stream.
        if 1 + len(colours) + len(indices) < w * h * 4:
            return PaletteRect(x, y, w, h, relay_ext.bgra_to_rgba(colours), indices)
    return RawRect(x, y, w, h, relay_ext.bgra_to_rgba(bgra))


def rect_size(rect: Rect) -> int:
    if isinstance(rect, RawRect):
        return _RECT_HEADER + len(rect.pixels)
    if isinstance(rect, FillRect):
        return _RECT_HEADER + 4
    if isinstance(rect, PaletteRect):
        return _RECT_HEADER + 1 + len(rect.palette) + len(rect.indices)
    return _RECT_HEADER + 4


def split_payloads(rects: list[Rect], budget: int = UPDATE_BUDGET) -> list[bytes]:
    """Rectangle bytes for one or more updates, each within ``budget`` bytes."""
    payloads, batch, size = [], [], 2
    for rect in rects:
        cost = rect_size(rect)
        if batch and size + cost > budget:
            payloads.append(encode_rects(batch))
            batch, size = [], 2
        batch.append(rect)
        size += cost
    if batch:
        payloads.append(encode_rects(batch))
    return payloads


class ScreenEncoder:
    """The previous capture of one screen and what changed since."""

    def __init__(self, width: int, height: int, tile: int = TILE):
        self.width, self.height, self.tile = width, height, tile
        self.prev: bytearray | bytes | None = None

    def _tile_rect(self, col: int, row: int) -> tuple[int, int, int, int]:
        x, y = col * self.tile, row * self.tile
        return x, y, min(self.tile, self.width - x), min(self.tile, self.height - y)

    def keyframe(self, frame) -> list[Rect]:
        """Every tile of ``frame``; it becomes the reference for the next diff."""
        self._check(frame)
        rects = []
        for row in range((self.height + self.tile - 1) // self.tile):
            for col in range((self.width + self.tile - 1) // self.tile):
                rects.append(encode_region(frame, self.width, self.height, *self._tile_rect(col, row)))
        self.prev = frame
        return rects

    def diff(self, frame) -> list[Rect]:
        """The rectangles that turn the previous capture into ``frame`` (empty: no change)."""
        self._check(frame)
        if self.prev is None:
            return self.keyframe(frame)
        rects = []
        for col, row in relay_ext.changed_tiles(self.prev, frame, self.width, self.height, self.tile):
            tx, ty, tw, th = self._tile_rect(col, row)
            dirty = relay_ext.dirty_rect(self.prev, frame, self.width, self.height, tx, ty, tw, th)
            if dirty is None:
                continue
            rects.append(encode_region(frame, self.width, self.height, *dirty))
        self.prev = frame
        return rects

    def _check(self, frame) -> None:
        if len(frame) != self.width * self.height * 4:
            raise ValueError(f"a {self.width}x{self.height} frame has {self.width * self.height * 4} "
                             f"bytes, not {len(frame)}")
