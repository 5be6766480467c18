"""Turns successive captures of one screen into ``FRAME_UPDATE`` rectangles
(``docs/protocol.md``): first ``COPY`` rectangles for what scrolled or moved, then only the
64 x 64 tiles that still differ, each cut down to the rectangle of pixels that really changed,
sent as a fill when it is one colour, as a palette when it has few colours, else as raw RGBA.

``agent.Agent``'s capture thread keeps one :class:`ScreenEncoder` per screen and compresses the
result with the connection's zstd stream. The pixel work is ``relay_ext``'s (compiled when
built): diffing, finding shifted copies, cutting, swizzling BGRA to RGBA, solid and palette
detection.
"""
from __future__ import annotations

import relay_ext
from agents.common.protocol import (
    MAX_RAW_UPDATE, TILE, CopyRect, FillRect, PaletteRect, RawRect, Rect, encode_rects,
)

# A key frame of a large screen is cut into updates of at most this many uncompressed bytes
# (well inside the relay's 16 MiB message limit even if zstd could not shrink it at all).
UPDATE_BUDGET = 8 * 1024 * 1024
assert UPDATE_BUDGET <= MAX_RAW_UPDATE

MAX_PALETTE_COLOURS = 16
_RECT_HEADER = 9  # x, y, w, h (u16 each) + encoding (u8)

# Scroll and move detection (relay_ext.find_copy) looks only at groups of at least this many
# touching changed tiles: typing, a caret or a clock tick change one or two, and cost what they
# did without it (a tile-count check); the search is bounded by the groups' bounding box.
COPY_MIN_TILES = 4
# The smallest copy worth a rectangle, in pixels, and the most copies in one update. More are
# looked for only after a copy of at least a tile: scrolls and moves are large, and a small
# copy in new content (two windows of text can share a few words) is more likely a coincidence.
COPY_MIN_AREA = 2048
MAX_COPIES = 4
MORE_AFTER_AREA = TILE * TILE
# The work find_copy may do. The first copy: 8 anchors, each looking for a scroll, 2 of them
# also for a move in any direction (a search of the whole changed area). Once something was
# found, what is left is mostly new pixels: 3 anchors trying the offsets found and scrolls, one
# of them also a move (a window moved while something else scrolled).
FIRST_ANCHORS, FIRST_SEARCHES = 8, 2
LATER_ANCHORS, LATER_SEARCHES = 3, 1


def encode_region(frame, width: int, height: int, x: int, y: int, w: int, h: int) -> Rect:
    """One rectangle of a BGRA frame in the cheapest of FILL, PALETTE and RAW."""
    bgra = relay_ext.extract_tile(frame, width, height, x, y, w, h)
    colour = relay_ext.solid_colour(bgra)
    if colour is not None:
        return FillRect(x, y, w, h, relay_ext.bgra_to_rgba(colour.to_bytes(4, "little")))
    # At most 16 colours (4-bit indices): with more, as in anti-aliased text and photos, 8-bit
    # indices compress worse under zstd than the raw pixels (each tile numbers its colours its
    # own way, so repeats across tiles stop matching): bench/tiles.py's desktop capture sends a
    # key frame 17 % smaller with 16 than with 256.
    found = relay_ext.palette(bgra, MAX_PALETTE_COLOURS)
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


def merge_touching(areas: list[tuple[int, int, int, int]], tile: int = TILE,
                   slack: float = 1.25) -> list[tuple[int, int, int, int]]:
    """Dirty rectangles of neighbouring tiles that meet at the tile edge joined into one, when
    their bounding box is at most ``slack`` times their area (a line of text cut by tile edges
    becomes one rectangle: one header and one palette instead of several). ``areas`` are in
    tile order, row by row; the result covers every pixel they cover."""
    rows: list[list[list[int]]] = []
    last_row = None
    for x, y, w, h in areas:  # along each tile row
        row = y // tile
        if row != last_row:
            rows.append([])
            last_row = row
        line = rows[-1]
        if line and _joinable(line[-1], (x, y, w, h), slack):
            line[-1] = _union(line[-1], (x, y, w, h))
        else:
            line.append([x, y, w, h])
    merged: list[list[int]] = []
    open_: dict[tuple[int, int], list[int]] = {}  # (x, w) of a rectangle reaching a tile edge
    for line in rows:
        reaching = {}
        for rect in line:
            above = open_.get((rect[0], rect[2]))
            if above is not None and above[1] + above[3] == rect[1] and rect[1] % tile == 0:
                above[3] += rect[3]
                rect = above
            else:
                merged.append(rect)
            if (rect[1] + rect[3]) % tile == 0:
                reaching[(rect[0], rect[2])] = rect
        open_ = reaching
    return [tuple(r) for r in merged]  # type: ignore[misc]


def _joinable(a, b, slack: float) -> bool:
    # b starts where a ends, and their bounding box wastes little.
    if a[0] + a[2] != b[0]:
        return False
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x1 - x0) * (y1 - y0) <= slack * (a[2] * a[3] + b[2] * b[3])


def _union(a, b) -> list[int]:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return [x0, y0, x1 - x0, y1 - y0]


class ScreenEncoder:
    """The previous capture of one screen and what changed since.

    ``copies=False`` turns scroll and move detection off (the benchmark compares both).
    """

    def __init__(self, width: int, height: int, tile: int = TILE, copies: bool = True):
        self.width, self.height, self.tile = width, height, tile
        self.copies = copies
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
        base = self.prev
        size = (self.width, self.height)
        tiles = relay_ext.changed_tiles(base, frame, *size, self.tile)
        rects: list[Rect] = []
        if self.copies and len(tiles) >= COPY_MIN_TILES:
            copies, base = self._find_copies(base, frame, self._copy_region(tiles))
            if copies:
                rects.extend(copies)
                # What the copies did not cover, against the screen as the viewer will have it.
                tiles = relay_ext.changed_tiles(base, frame, *size, self.tile)
        dirty = []
        for col, row in tiles:
            found = relay_ext.dirty_rect(base, frame, *size, *self._tile_rect(col, row))
            if found is not None:
                dirty.append(found)
        for area in merge_touching(dirty, self.tile):
            rects.append(encode_region(frame, *size, *area))
        self.prev = frame
        return rects

    def _copy_region(self, tiles) -> tuple[int, int, int, int] | None:
        """The bounding box (in pixels) of the groups of touching changed tiles (diagonals
        count) that have at least COPY_MIN_TILES tiles, or None: where something may have
        scrolled or moved. A window's old and new places are one group, or two when it jumped
        (both are in the box, so the search finds the one from the other)."""
        left = set(tiles)
        box = None
        while left:
            group = [left.pop()]
            i = 0
            while i < len(group):
                col, row = group[i]
                for near in ((col + dc, row + dr) for dc in (-1, 0, 1) for dr in (-1, 0, 1)):
                    if near in left:
                        left.remove(near)
                        group.append(near)
                i += 1
            if len(group) < COPY_MIN_TILES:
                continue
            cols = [c for c, _ in group] + ([box[0], box[2]] if box else [])
            rows = [r for _, r in group] + ([box[1], box[3]] if box else [])
            box = (min(cols), min(rows), max(cols), max(rows))
        if box is None:
            return None
        x, y = box[0] * self.tile, box[1] * self.tile
        return (x, y, min((box[2] + 1) * self.tile, self.width) - x,
                min((box[3] + 1) * self.tile, self.height) - y)

    def _find_copies(self, prev, frame, region) -> tuple[list[CopyRect], bytearray | bytes]:
        """``COPY`` rectangles for what scrolled or moved inside ``region``, and ``prev`` with
        them applied in order (as the relay and the viewers will apply them)."""
        copies: list[CopyRect] = []
        base = prev
        if region is None:
            return copies, base
        x, y, w, h = region
        while len(copies) < MAX_COPIES:
            if copies:
                offsets = {(c.x - c.src_x, c.y - c.src_y): None for c in copies}
                found = relay_ext.find_copy(base, frame, self.width, self.height, x, y, w, h,
                                            COPY_MIN_AREA, LATER_ANCHORS, LATER_SEARCHES,
                                            list(offsets))
            else:
                found = relay_ext.find_copy(base, frame, self.width, self.height, x, y, w, h,
                                            COPY_MIN_AREA, FIRST_ANCHORS, FIRST_SEARCHES)
            if found is None:
                break
            src_x, src_y, dst_x, dst_y, cw, ch = found
            if base is prev:
                base = bytearray(prev)
            # Found against the frame with the earlier copies applied: sources read the screen
            # as it stands when this rectangle is applied (docs/protocol.md, COPY).
            relay_ext.copy_rect(base, self.width, self.height, src_x, src_y, dst_x, dst_y, cw, ch)
            copies.append(CopyRect(dst_x, dst_y, cw, ch, src_x, src_y))
            if cw * ch < MORE_AFTER_AREA:
                break
        return copies, base

    def _check(self, frame) -> None:
        if len(frame) != self.width * self.height * 4:
            raise ValueError(f"a {self.width}x{self.height} frame has {self.width * self.height * 4} "
                             f"bytes, not {len(frame)}")
