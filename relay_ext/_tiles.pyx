# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, nonecheck=False
"""The compiled hot path: tile diffing and pixel kernels for the relay and the agents.

``relay_ext/__init__.py`` imports this module (or, without a compiler or with
``TESSERA_PURE_PYTHON=1``, its twin ``relay_ext/pure.py``, which has the same API and gives the
same results). Callers: the Host agent (``changed_tiles`` on every capture, ``find_copy`` when
much changed, then ``dirty_rect``, ``solid_colour``, ``palette``, ``extract_tile`` per changed
tile), the relay (``apply_tile`` and ``copy_rect`` into its framebuffer, ``unmask`` for websocket
frames) and the viewers. Formats are in ``docs/protocol.md``.

How the code is shaped (STYLE.md, "The hot path"): every argument is checked while the GIL is
held, each kernel is a ``noexcept nogil`` C function that only reads and writes memory it was
given and returns a status, and Python exceptions are raised after the GIL is back.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, memset

from operator import index as _index

from relay_ext._zstd import FrameCompressor, FrameDecompressor

IMPLEMENTATION = "cython"
#: The largest width, height, tile size or factor accepted: keeps every size product in range.
MAX_DIMENSION = 65536
MAX_PALETTE = 256

__all__ = [
    "IMPLEMENTATION", "MAX_DIMENSION", "MAX_PALETTE", "FrameCompressor", "FrameDecompressor",
    "apply_tile", "bgra_to_rgba", "changed_tiles", "copy_rect", "dirty_rect", "downscale",
    "expand_palette", "extract_tile", "find_copy", "palette", "palette_bits", "reduce_colours",
    "solid_colour", "unmask",
]


# ---------------------------------------------------------------------------- argument checks

cdef Py_ssize_t _int_in(object value, str name, Py_ssize_t lo, Py_ssize_t hi) except -1:
    """``value`` as a C integer in [lo, hi] (lo >= 0): TypeError if not an int, else ValueError."""
    cdef object v = _index(value)
    if v < lo or v > hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {v}")
    return <Py_ssize_t>v


cdef const unsigned char[::1] _view(object obj, str name):
    """A flat byte view of ``obj``: TypeError for a non-buffer, ValueError for a wrong shape."""
    if obj is None:
        raise TypeError(f"{name} must be a bytes-like object, not None")
    cdef const unsigned char[::1] view
    try:
        view = obj
    except BufferError as exc:  # e.g. a strided memoryview: not a flat run of bytes
        raise ValueError(f"{name} must be a contiguous buffer of bytes ({exc})") from None
    return view


cdef int _check_frame(Py_ssize_t size, Py_ssize_t width, Py_ssize_t height, str name) except -1:
    if size != width * height * 4:
        raise ValueError(
            f"{name} has {size} bytes; a {width}x{height} BGRA frame has {width * height * 4}"
        )
    return 0


cdef int _check_rect(Py_ssize_t width, Py_ssize_t height, Py_ssize_t x, Py_ssize_t y,
                     Py_ssize_t w, Py_ssize_t h) except -1:
    if x + w > width or y + h > height:
        raise ValueError(
            f"rectangle {w}x{h} at ({x}, {y}) does not fit in a {width}x{height} frame"
        )
    return 0


cdef int _check_pixels(Py_ssize_t size, str name) except -1:
    if size % 4:
        raise ValueError(f"{name} has {size} bytes, not a whole number of 4-byte pixels")
    return 0


cdef inline uint32_t _load32(const unsigned char* p) noexcept nogil:
    cdef uint32_t v = 0
    memcpy(&v, p, 4)
    return v


cdef inline unsigned char* _bytes_ptr(bytes b):
    return <unsigned char*>PyBytes_AS_STRING(b)


def palette_bits(colours):
    """Bits per index for a palette of ``colours`` entries: 1, 2, 4 or 8."""
    return _bits_for(_int_in(colours, "colours", 1, MAX_PALETTE))


cdef inline int _bits_for(Py_ssize_t n) noexcept nogil:
    if n <= 2:
        return 1
    if n <= 4:
        return 2
    if n <= 16:
        return 4
    return 8


# ---------------------------------------------------------------------------- changed_tiles

cdef void _changed_tiles(const unsigned char* a, const unsigned char* b, Py_ssize_t width,
                         Py_ssize_t height, Py_ssize_t tile, unsigned char* marks) noexcept nogil:
    # Reads the frames in memory order, as one big memcmp would. While nothing in a band of
    # tiles has changed yet, rows are compared a group at a time (about 64 KiB, few calls, the
    # prefetcher kept busy); a group that differs is re-read from cache row by row, each row's
    # runs of not-yet-changed tiles with one memcmp, and only a run that differs is split into
    # its tiles. A tile found changed is skipped for the rest of its band.
    cdef Py_ssize_t cols = (width + tile - 1) // tile
    cdef Py_ssize_t rows = (height + tile - 1) // tile
    cdef Py_ssize_t stride = width * 4
    cdef Py_ssize_t tile_bytes = tile * 4
    cdef Py_ssize_t group_rows = max(1, 65536 // stride)
    cdef Py_ssize_t ty, y, yy, g, y_end, tx, k, start, s, e, remaining
    cdef const unsigned char* ra
    cdef const unsigned char* rb
    cdef unsigned char* m
    for ty in range(rows):
        m = marks + ty * cols
        remaining = cols
        y = ty * tile
        y_end = min(y + tile, height)
        while y < y_end and remaining:
            g = 1
            if remaining == cols:
                g = min(group_rows, y_end - y)
                if memcmp(a + y * stride, b + y * stride, g * stride) == 0:
                    y += g
                    continue
            for yy in range(y, y + g):
                ra = a + yy * stride
                rb = b + yy * stride
                tx = 0
                while tx < cols:
                    if m[tx]:
                        tx += 1
                        continue
                    start = tx
                    while tx < cols and not m[tx]:
                        tx += 1
                    s = start * tile_bytes
                    e = min(tx * tile_bytes, stride)
                    if memcmp(ra + s, rb + s, e - s) == 0:
                        continue
                    for k in range(start, tx):
                        s = k * tile_bytes
                        e = min(s + tile_bytes, stride)
                        if memcmp(ra + s, rb + s, e - s) != 0:
                            m[k] = 1
                            remaining -= 1
                if remaining == 0:
                    break
            y += g


def changed_tiles(prev, cur, width, height, tile=64):
    """(column, row) of every ``tile``-pixel square that differs between two BGRA frames.

    Both frames are ``width*height*4`` bytes, rows ``width*4`` bytes apart; edge tiles may be
    partial. Listed row by row, left to right.
    """
    cdef const unsigned char[::1] a = _view(prev, "prev")
    cdef const unsigned char[::1] b = _view(cur, "cur")
    cdef Py_ssize_t w = _int_in(width, "width", 1, MAX_DIMENSION)
    cdef Py_ssize_t h = _int_in(height, "height", 1, MAX_DIMENSION)
    cdef Py_ssize_t t = _int_in(tile, "tile", 1, MAX_DIMENSION)
    _check_frame(a.shape[0], w, h, "prev")
    _check_frame(b.shape[0], w, h, "cur")
    cdef Py_ssize_t cols = (w + t - 1) // t
    cdef Py_ssize_t rows = (h + t - 1) // t
    cdef bytearray marks_obj = bytearray(cols * rows)
    cdef unsigned char[::1] marks = marks_obj
    with nogil:
        _changed_tiles(&a[0], &b[0], w, h, t, &marks[0])
    cdef list out = []
    cdef Py_ssize_t i
    for i in range(cols * rows):
        if marks[i]:
            out.append((i % cols, i // cols))
    return out


# ---------------------------------------------------------------------------- dirty_rect

cdef int _dirty_rect(const unsigned char* a, const unsigned char* b, Py_ssize_t stride,
                     Py_ssize_t x, Py_ssize_t y, Py_ssize_t w, Py_ssize_t h,
                     Py_ssize_t* out) noexcept nogil:
    cdef Py_ssize_t base = x * 4
    cdef Py_ssize_t row_bytes = w * 4
    cdef Py_ssize_t r, c, top = -1, bottom = -1
    cdef Py_ssize_t left = x + w, right = x - 1
    cdef const unsigned char* ra
    cdef const unsigned char* rb
    for r in range(y, y + h):
        if memcmp(a + r * stride + base, b + r * stride + base, row_bytes) != 0:
            top = r
            break
    if top < 0:
        return 0
    r = y + h - 1
    while r >= top:
        if memcmp(a + r * stride + base, b + r * stride + base, row_bytes) != 0:
            bottom = r
            break
        r -= 1
    for r in range(top, bottom + 1):
        ra = a + r * stride
        rb = b + r * stride
        c = x
        while c < left:
            if _load32(ra + c * 4) != _load32(rb + c * 4):
                left = c
                break
            c += 1
        c = x + w - 1
        while c > right:
            if _load32(ra + c * 4) != _load32(rb + c * 4):
                right = c
                break
            c -= 1
    out[0] = left
    out[1] = top
    out[2] = right - left + 1
    out[3] = bottom - top + 1
    return 1


def dirty_rect(prev, cur, width, height, x, y, w, h):
    """The smallest (x, y, w, h) inside the given rectangle holding every changed pixel, or None."""
    cdef const unsigned char[::1] a = _view(prev, "prev")
    cdef const unsigned char[::1] b = _view(cur, "cur")
    cdef Py_ssize_t fw = _int_in(width, "width", 1, MAX_DIMENSION)
    cdef Py_ssize_t fh = _int_in(height, "height", 1, MAX_DIMENSION)
    cdef Py_ssize_t rx = _int_in(x, "x", 0, MAX_DIMENSION)
    cdef Py_ssize_t ry = _int_in(y, "y", 0, MAX_DIMENSION)
    cdef Py_ssize_t rw = _int_in(w, "w", 1, MAX_DIMENSION)
    cdef Py_ssize_t rh = _int_in(h, "h", 1, MAX_DIMENSION)
    _check_frame(a.shape[0], fw, fh, "prev")
    _check_frame(b.shape[0], fw, fh, "cur")
    _check_rect(fw, fh, rx, ry, rw, rh)
    cdef Py_ssize_t out[4]
    cdef int found
    with nogil:
        found = _dirty_rect(&a[0], &b[0], fw * 4, rx, ry, rw, rh, out)
    if not found:
        return None
    return (out[0], out[1], out[2], out[3])


# ---------------------------------------------------------------------------- tiles in and out

def extract_tile(frame, width, height, x, y, w, h):
    """The ``w*h*4`` bytes of the rectangle at (x, y), rows packed ``w*4`` bytes apart."""
    cdef const unsigned char[::1] f = _view(frame, "frame")
    cdef Py_ssize_t fw = _int_in(width, "width", 1, MAX_DIMENSION)
    cdef Py_ssize_t fh = _int_in(height, "height", 1, MAX_DIMENSION)
    cdef Py_ssize_t rx = _int_in(x, "x", 0, MAX_DIMENSION)
    cdef Py_ssize_t ry = _int_in(y, "y", 0, MAX_DIMENSION)
    cdef Py_ssize_t rw = _int_in(w, "w", 1, MAX_DIMENSION)
    cdef Py_ssize_t rh = _int_in(h, "h", 1, MAX_DIMENSION)
    _check_frame(f.shape[0], fw, fh, "frame")
    _check_rect(fw, fh, rx, ry, rw, rh)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, rw * rh * 4)
    cdef unsigned char* dst = _bytes_ptr(out)
    cdef const unsigned char* src = &f[0]
    cdef Py_ssize_t r, stride = fw * 4, row_bytes = rw * 4
    with nogil:
        for r in range(rh):
            memcpy(dst + r * row_bytes, src + (ry + r) * stride + rx * 4, row_bytes)
    return out


def apply_tile(frame, width, height, x, y, w, h, data):
    """Write the ``w*h*4`` bytes of ``data`` into the writable ``frame`` at (x, y)."""
    cdef unsigned char[::1] f = _writable(frame)
    cdef const unsigned char[::1] d = _view(data, "data")
    cdef Py_ssize_t fw = _int_in(width, "width", 1, MAX_DIMENSION)
    cdef Py_ssize_t fh = _int_in(height, "height", 1, MAX_DIMENSION)
    cdef Py_ssize_t rx = _int_in(x, "x", 0, MAX_DIMENSION)
    cdef Py_ssize_t ry = _int_in(y, "y", 0, MAX_DIMENSION)
    cdef Py_ssize_t rw = _int_in(w, "w", 1, MAX_DIMENSION)
    cdef Py_ssize_t rh = _int_in(h, "h", 1, MAX_DIMENSION)
    _check_frame(f.shape[0], fw, fh, "frame")
    _check_rect(fw, fh, rx, ry, rw, rh)
    if d.shape[0] != rw * rh * 4:
        raise ValueError(f"data has {d.shape[0]} bytes; a {rw}x{rh} tile has {rw * rh * 4}")
    cdef unsigned char* dst = &f[0]
    cdef const unsigned char* src = &d[0]
    cdef Py_ssize_t r, stride = fw * 4, row_bytes = rw * 4
    with nogil:
        for r in range(rh):
            # memmove: data may be a view into frame itself.
            memmove(dst + (ry + r) * stride + rx * 4, src + r * row_bytes, row_bytes)


cdef unsigned char[::1] _writable(object frame):
    if frame is None:
        raise TypeError("frame must be a writable buffer such as a bytearray, not None")
    cdef unsigned char[::1] f
    try:
        f = frame
    except (BufferError, ValueError) as exc:
        if memoryview(frame).readonly:
            raise TypeError("frame must be a writable buffer such as a bytearray") from None
        raise ValueError(f"frame must be a contiguous buffer of bytes ({exc})") from None
    return f


def copy_rect(frame, width, height, src_x, src_y, x, y, w, h):
    """Copy the ``w``x``h`` area at (src_x, src_y) of the writable ``frame`` to (x, y), in place.

    The areas may overlap; the result is as if copied through a temporary buffer (the
    protocol's ``COPY`` rectangle: scrolling, window moves).
    """
    cdef unsigned char[::1] f = _writable(frame)
    cdef Py_ssize_t fw = _int_in(width, "width", 1, MAX_DIMENSION)
    cdef Py_ssize_t fh = _int_in(height, "height", 1, MAX_DIMENSION)
    cdef Py_ssize_t sx = _int_in(src_x, "src_x", 0, MAX_DIMENSION)
    cdef Py_ssize_t sy = _int_in(src_y, "src_y", 0, MAX_DIMENSION)
    cdef Py_ssize_t rx = _int_in(x, "x", 0, MAX_DIMENSION)
    cdef Py_ssize_t ry = _int_in(y, "y", 0, MAX_DIMENSION)
    cdef Py_ssize_t rw = _int_in(w, "w", 1, MAX_DIMENSION)
    cdef Py_ssize_t rh = _int_in(h, "h", 1, MAX_DIMENSION)
    _check_frame(f.shape[0], fw, fh, "frame")
    _check_rect(fw, fh, sx, sy, rw, rh)
    _check_rect(fw, fh, rx, ry, rw, rh)
    cdef unsigned char* p = &f[0]
    cdef Py_ssize_t r, stride = fw * 4, row_bytes = rw * 4
    with nogil:
        # Moving down: copy the bottom row first, so no source row is overwritten before it is
        # read; memmove takes care of overlap within a row.
        if ry > sy:
            r = rh - 1
            while r >= 0:
                memmove(p + (ry + r) * stride + rx * 4, p + (sy + r) * stride + sx * 4, row_bytes)
                r -= 1
        else:
            for r in range(rh):
                memmove(p + (ry + r) * stride + rx * 4, p + (sy + r) * stride + sx * 4, row_bytes)


# ---------------------------------------------------------------------------- copy detection
# Scrolling and window moves (docs/protocol.md, COPY). Peers either get the moves from the
# window system (x11vnc's -scrollcopyrect watches XCopyArea through RECORD; DXGI reports move
# rectangles) or compare pixels (row hashes voting for a vertical offset). Here the pixels are
# all there is, and both scrolling (dx = 0) and moves in any direction are wanted, so the search
# starts from an *anchor*: a short run of changed, non-flat pixels of the new frame. Where the
# same run was in the old frame gives an offset (dx, dy); the offset is checked by growing a
# rectangle around the anchor where the new frame equals the old one shifted. Scrolling is tried
# first and costs one 64-byte compare per row of the region; only a few anchors pay for a search
# of the whole region (about one compare per pixel) for a move.

cdef enum:
    # Pixels in an anchor run, and the fewest colour changes along it (flat runs match anywhere).
    ANCHOR = 16
    ANCHOR_CHANGES = 3
    # Offsets tried per anchor (the nearest first), and sampled rows per region (six halvings).
    CANDIDATES = 16
    SAMPLE_ROWS = 63
    # Row-span changes looked at on each side of an anchor when choosing the rectangle.
    BREAKS = 64


cdef struct _Search:
    const unsigned char* prev
    const unsigned char* cur
    Py_ssize_t fw, fh, stride
    Py_ssize_t x, y, w, h          # the region
    Py_ssize_t* ups                # 3 * (h + 1) each: scratch for _grow
    Py_ssize_t* downs


cdef bint _row_span(const _Search* s, Py_ssize_t r, Py_ssize_t ax, Py_ssize_t dx, Py_ssize_t dy,
                    Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t* span) noexcept nogil:
    # Row r's run of pixels equal to the shifted old frame around the anchor's columns, inside
    # [lo, hi); False when the anchor's columns themselves differ (the rectangle cannot go on).
    cdef const unsigned char* c_row = s.cur + r * s.stride
    cdef const unsigned char* p_row = s.prev + (r - dy) * s.stride
    cdef Py_ssize_t left = ax, right = ax + ANCHOR
    if memcmp(c_row + ax * 4, p_row + (ax - dx) * 4, ANCHOR * 4) != 0:
        return False
    if memcmp(c_row + lo * 4, p_row + (lo - dx) * 4, (hi - lo) * 4) == 0:
        span[0] = lo
        span[1] = hi
        return True
    while left > lo and _load32(c_row + (left - 1) * 4) == _load32(p_row + (left - 1 - dx) * 4):
        left -= 1
    while right < hi and _load32(c_row + right * 4) == _load32(p_row + (right - dx) * 4):
        right += 1
    span[0] = left
    span[1] = right
    return True


cdef Py_ssize_t _side(const _Search* s, Py_ssize_t ax, Py_ssize_t ay, Py_ssize_t dx,
                      Py_ssize_t dy, Py_ssize_t step, Py_ssize_t limit, Py_ssize_t left,
                      Py_ssize_t right, Py_ssize_t* marks) noexcept nogil:
    # Rows ay + step, ay + 2 step ... (up to ``limit`` of them) while the anchor's columns match:
    # the common span of the anchor's row and the first k rows shrinks as k grows; marks gets
    # (k, left, right) for the largest k of each span. Returns how many marks.
    cdef Py_ssize_t n = 0, k = 0
    cdef Py_ssize_t span[2]
    cdef bint more
    while True:
        more = k < limit and _row_span(s, ay + (k + 1) * step, ax, dx, dy, left, right, span)
        if not more or span[0] != left or span[1] != right:
            marks[3 * n] = k
            marks[3 * n + 1] = left
            marks[3 * n + 2] = right
            n += 1
        if not more:
            return n
        left, right = span[0], span[1]
        k += 1


cdef Py_ssize_t _grow(const _Search* s, Py_ssize_t ax, Py_ssize_t ay, Py_ssize_t dx,
                      Py_ssize_t dy, Py_ssize_t* out) noexcept nogil:
    # The largest rectangle holding the anchor (inside the region, its source inside the frame)
    # where cur(c, r) == prev(c - dx, r - dy). Going up and going down from the anchor's row,
    # the span common to the rows so far can only shrink; a rectangle is one choice of how far
    # to go up and how far down, so the best is among the pairs of span changes (at most BREAKS
    # evenly spread ones on a side). A row that matches all along costs one memcmp. Returns the
    # area, 0 if none.
    cdef Py_ssize_t lo_x = max(s.x, dx), hi_x = min(s.x + s.w, s.fw + dx)
    cdef Py_ssize_t lo_y = max(s.y, dy), hi_y = min(s.y + s.h, s.fh + dy)
    cdef Py_ssize_t span[2]
    cdef Py_ssize_t n_up, n_down, i, j, step_up, step_down, a, b, width, area, best = 0
    _row_span(s, ay, ax, dx, dy, lo_x, hi_x, span)
    n_up = _side(s, ax, ay, dx, dy, -1, ay - lo_y, span[0], span[1], s.ups)
    n_down = _side(s, ax, ay, dx, dy, 1, hi_y - ay - 1, span[0], span[1], s.downs)
    step_up = (n_up + BREAKS - 1) // BREAKS
    step_down = (n_down + BREAKS - 1) // BREAKS
    i = 0
    while i < n_up:
        j = 0
        while j < n_down:
            a = 3 * i
            b = 3 * j
            width = min(s.ups[a + 2], s.downs[b + 2]) - max(s.ups[a + 1], s.downs[b + 1])
            area = width * (1 + s.ups[a] + s.downs[b])
            if area > best:
                best = area
                out[2] = max(s.ups[a + 1], s.downs[b + 1])
                out[3] = ay - s.ups[a]
                out[4] = width
                out[5] = 1 + s.ups[a] + s.downs[b]
                out[0] = out[2] - dx
                out[1] = out[3] - dy
            j = j + step_down if j + step_down < n_down or j == n_down - 1 else n_down - 1
        i = i + step_up if i + step_up < n_up or i == n_up - 1 else n_up - 1
    return best


cdef Py_ssize_t _best_of(const _Search* s, Py_ssize_t ax, Py_ssize_t ay,
                         const Py_ssize_t* offsets, Py_ssize_t n, Py_ssize_t* out) noexcept nogil:
    # The largest grown rectangle of the n candidate offsets (the first one on a tie).
    cdef Py_ssize_t best = 0, area, i, k
    cdef Py_ssize_t rect[6]
    memset(rect, 0, sizeof(rect))
    for i in range(n):
        area = _grow(s, ax, ay, offsets[2 * i], offsets[2 * i + 1], rect)
        if area > best:
            best = area
            for k in range(6):
                out[k] = rect[k]
    return best


cdef inline bint _listed(const Py_ssize_t* offsets, Py_ssize_t n, Py_ssize_t dx,
                         Py_ssize_t dy) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if offsets[2 * i] == dx and offsets[2 * i + 1] == dy:
            return True
    return False


cdef Py_ssize_t _search_row(const unsigned char* row, Py_ssize_t x, Py_ssize_t last,
                            Py_ssize_t ax, Py_ssize_t ay, Py_ssize_t py,
                            const unsigned char* anchor, Py_ssize_t pair, Py_ssize_t* offsets,
                            Py_ssize_t n) noexcept nogil:
    # Every column px in [x, last] (px != ax) where the anchor's pixels are in this row of the
    # old frame, left to right, appended to offsets until there are CANDIDATES. A block of 16
    # columns is first checked for the anchor's pixel pair at ``pair`` (a colour change, rarer
    # than a flat pair), in a loop the compiler vectorises.
    cdef uint32_t f0 = _load32(anchor + pair * 4), f1 = _load32(anchor + pair * 4 + 4)
    cdef const unsigned char* q = row + pair * 4
    cdef Py_ssize_t block, i, px, end
    cdef unsigned int hit
    block = x
    while block <= last and n < CANDIDATES:
        end = min(block + 16, last + 1)
        hit = 0
        if end - block == 16:
            for i in range(16):
                hit |= ((_load32(q + (block + i) * 4) == f0)
                        & (_load32(q + (block + i + 1) * 4) == f1))
        else:
            hit = 1
        if hit:
            for px in range(block, end):
                if px != ax and memcmp(row + px * 4, anchor, ANCHOR * 4) == 0:
                    offsets[2 * n] = ax - px
                    offsets[2 * n + 1] = ay - py
                    n += 1
                    if n == CANDIDATES:
                        break
        block = end
    return n


cdef Py_ssize_t _try_anchor(const _Search* s, Py_ssize_t ax, Py_ssize_t ay, Py_ssize_t min_area,
                            bint search, const Py_ssize_t* hints, Py_ssize_t n_hints,
                            Py_ssize_t* out) noexcept nogil:
    cdef Py_ssize_t x = s.x, y = s.y, w = s.w, h = s.h, stride = s.stride
    cdef const unsigned char* anchor = s.cur + ay * stride + ax * 4
    cdef Py_ssize_t offsets[2 * CANDIDATES]
    cdef Py_ssize_t n = 0, d, k, i, py, px, dx, dy, best, pair
    # The offsets already found, then scrolling: the anchor's columns in the other rows,
    # nearest first. Each only where the anchor's pixels are, with its source in the region.
    for i in range(n_hints):
        dx, dy = hints[2 * i], hints[2 * i + 1]
        px, py = ax - dx, ay - dy
        if x <= px <= x + w - ANCHOR and y <= py < y + h and (dx or dy) and n < CANDIDATES \
                and memcmp(s.prev + py * stride + px * 4, anchor, ANCHOR * 4) == 0:
            offsets[2 * n] = dx
            offsets[2 * n + 1] = dy
            n += 1
    d = 1
    while n < CANDIDATES and (ay - d >= y or ay + d < y + h):
        for k in range(2):
            py = ay - d if k == 0 else ay + d
            if y <= py < y + h and n < CANDIDATES and not _listed(offsets, n, 0, ay - py) and \
                    memcmp(s.prev + py * stride + ax * 4, anchor, ANCHOR * 4) == 0:
                offsets[2 * n] = 0
                offsets[2 * n + 1] = ay - py
                n += 1
        d += 1
    best = _best_of(s, ax, ay, offsets, n, out)
    if best >= min_area or not search:
        return best
    # A move: anywhere in the region, rows nearest the anchor's first, left to right.
    pair = 0
    while _load32(anchor + pair * 4) == _load32(anchor + pair * 4 + 4):
        pair += 1  # the anchor has colour changes, so this stops before ANCHOR - 1
    n = 0
    d = 0
    while n < CANDIDATES and (ay - d >= y or ay + d < y + h):
        for k in range(2 if d else 1):
            py = ay - d if k == 0 else ay + d
            if y <= py < y + h and n < CANDIDATES:
                n = _search_row(s.prev + py * stride, x, x + w - ANCHOR, ax, ay, py, anchor,
                                pair, offsets, n)
        d += 1
    return _best_of(s, ax, ay, offsets, n, out)


cdef inline bint _distinct(const unsigned char* run) noexcept nogil:
    cdef Py_ssize_t i, changes = 0
    for i in range(1, ANCHOR):
        if _load32(run + i * 4) != _load32(run + i * 4 - 4):
            changes += 1
    return changes >= ANCHOR_CHANGES


cdef Py_ssize_t _anchor_in_row(const _Search* s, Py_ssize_t r, bint* wide) noexcept nogil:
    # The column of an anchor in row r, or -1: a run over the row's changed pixels (from the
    # first to the last), the one centred on them, else every ANCHOR pixels to the right, then
    # to the left. The middle, because the ends of a changed row are often what a moved window
    # uncovered, which is nowhere else. ``wide``: the changed pixels span a whole anchor (a
    # narrower change is a scrolled line that differs in a few places, or a sliver left over;
    # not worth a search for a move).
    cdef const unsigned char* c_row = s.cur + r * s.stride
    cdef const unsigned char* p_row = s.prev + r * s.stride
    cdef Py_ssize_t x = s.x, w = s.w, first = s.x, last = s.x + s.w - 1, middle, a
    if memcmp(c_row + x * 4, p_row + x * 4, w * 4) == 0:
        return -1
    while _load32(c_row + first * 4) == _load32(p_row + first * 4):
        first += 1
    while _load32(c_row + last * 4) == _load32(p_row + last * 4):
        last -= 1
    wide[0] = last - first + 1 >= ANCHOR
    middle = min(max((first + last + 1 - ANCHOR) // 2, x), x + w - ANCHOR)
    a = middle
    while a <= last and a <= x + w - ANCHOR:
        if _distinct(c_row + a * 4):
            return a
        a += ANCHOR
    a = middle - ANCHOR
    while a + ANCHOR > first and a >= x:
        if _distinct(c_row + a * 4):
            return a
        a -= ANCHOR
    return -1


cdef int _find_copy(const _Search* s, Py_ssize_t min_area, Py_ssize_t anchors,
                    Py_ssize_t searches, const Py_ssize_t* hints, Py_ssize_t n_hints,
                    Py_ssize_t* out) noexcept nogil:
    # Rows of the region at 1/2, then 1/4 and 3/4, then the eighths ... down to 64ths, so the
    # first few anchors are spread over the whole region whatever part of it was scrolled.
    cdef Py_ssize_t seen[SAMPLE_ROWS]
    cdef Py_ssize_t n_seen = 0, tried = 0, searched = 0, den = 2, num, r, i, ax, area
    cdef bint dup, wide = False, search
    if s.w < ANCHOR:
        return 0
    while den <= 64:
        for num in range(1, den, 2):
            r = s.y + (s.h * num) // den
            dup = False
            for i in range(n_seen):
                if seen[i] == r:
                    dup = True
                    break
            if dup:
                continue
            seen[n_seen] = r
            n_seen += 1
            ax = _anchor_in_row(s, r, &wide)
            if ax < 0:
                continue
            search = wide and searched < searches
            area = _try_anchor(s, ax, r, min_area, search, hints, n_hints, out)
            if area >= min_area:
                return 1
            searched += search
            tried += 1
            if tried >= anchors:
                return 0
        den *= 2
    return 0


cdef Py_ssize_t _offset_in(object value, str name) except? -1:
    cdef object v = _index(value)
    if not -MAX_DIMENSION <= v <= MAX_DIMENSION:
        raise ValueError(f"{name} must be between {-MAX_DIMENSION} and {MAX_DIMENSION}, not {v}")
    return <Py_ssize_t>v


def find_copy(prev, cur, width, height, x, y, w, h, min_area=1024, anchors=8, searches=2,
              hints=()):
    """A rectangle of ``cur`` that is a shifted copy of ``prev``: ``(src_x, src_y, x, y, w, h)``
    with ``cur``'s ``w``x``h`` pixels at (x, y) equal to ``prev``'s at (src_x, src_y), or None.

    The copy lies inside the rectangle (x, y, w, h) given (where the frames differ), its
    source inside the frame, and it has at least ``min_area`` pixels. The anchors it grows from
    (runs of changed pixels) are looked for in that rectangle of ``prev``. The cost is bounded
    by ``anchors``, the number of anchors tried (each costs about one compare per row of the
    region), and ``searches``, how many of them may also search the whole region for a move in
    any direction (about one compare per pixel); scrolls (src_x == x) are found by every anchor.
    ``hints`` are up to 16 offsets ``(dx, dy)`` (a copy moves (x - dx, y - dy) to (x, y)) tried
    first by every anchor, e.g. those of copies found already. ``relay_ext.pure`` finds the
    same rectangle.
    """
    cdef const unsigned char[::1] a = _view(prev, "prev")
    cdef const unsigned char[::1] b = _view(cur, "cur")
    cdef Py_ssize_t fw = _int_in(width, "width", 1, MAX_DIMENSION)
    cdef Py_ssize_t fh = _int_in(height, "height", 1, MAX_DIMENSION)
    cdef Py_ssize_t rx = _int_in(x, "x", 0, MAX_DIMENSION)
    cdef Py_ssize_t ry = _int_in(y, "y", 0, MAX_DIMENSION)
    cdef Py_ssize_t rw = _int_in(w, "w", 1, MAX_DIMENSION)
    cdef Py_ssize_t rh = _int_in(h, "h", 1, MAX_DIMENSION)
    cdef Py_ssize_t least = _int_in(min_area, "min_area", 1, MAX_DIMENSION * MAX_DIMENSION)
    cdef Py_ssize_t tries = _int_in(anchors, "anchors", 1, SAMPLE_ROWS)
    cdef Py_ssize_t full = _int_in(searches, "searches", 0, SAMPLE_ROWS)
    cdef Py_ssize_t offsets[2 * CANDIDATES]
    cdef Py_ssize_t n_hints = 0
    _check_frame(a.shape[0], fw, fh, "prev")
    _check_frame(b.shape[0], fw, fh, "cur")
    _check_rect(fw, fh, rx, ry, rw, rh)
    if isinstance(hints, (str, bytes, bytearray)):
        raise TypeError("hints must be a sequence of (dx, dy) pairs")
    for hint in hints:
        if n_hints == CANDIDATES:
            raise ValueError(f"at most {CANDIDATES} hints")
        dx, dy = hint
        offsets[2 * n_hints] = _offset_in(dx, "dx")
        offsets[2 * n_hints + 1] = _offset_in(dy, "dy")
        n_hints += 1
    cdef _Search s
    s.prev, s.cur = &a[0], &b[0]
    s.fw, s.fh, s.stride = fw, fh, fw * 4
    s.x, s.y, s.w, s.h = rx, ry, rw, rh
    s.ups = <Py_ssize_t*>PyMem_Malloc(6 * (rh + 1) * sizeof(Py_ssize_t))
    if s.ups == NULL:
        raise MemoryError()
    s.downs = s.ups + 3 * (rh + 1)
    cdef Py_ssize_t out[6]
    cdef int found
    try:
        with nogil:
            found = _find_copy(&s, least, tries, full, offsets, n_hints, out)
    finally:
        PyMem_Free(s.ups)
    if not found:
        return None
    return (out[0], out[1], out[2], out[3], out[4], out[5])


# ---------------------------------------------------------------------------- pixel kernels

def bgra_to_rgba(data):
    """BGRA pixels as RGBA with alpha 255, what a browser canvas ``ImageData`` wants."""
    cdef const unsigned char[::1] s = _view(data, "data")
    cdef Py_ssize_t n = s.shape[0]
    _check_pixels(n, "data")
    if n == 0:
        return b""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* d = _bytes_ptr(out)
    cdef const unsigned char* p = &s[0]
    cdef Py_ssize_t i
    with nogil:
        for i in range(0, n, 4):
            d[i] = p[i + 2]
            d[i + 1] = p[i + 1]
            d[i + 2] = p[i]
            d[i + 3] = 255
    return out


cdef int _downscale(const unsigned char* src, Py_ssize_t width, Py_ssize_t height,
                    Py_ssize_t factor, unsigned char* dst, uint64_t* sums) noexcept nogil:
    cdef Py_ssize_t out_w = (width + factor - 1) // factor
    cdef Py_ssize_t out_h = (height + factor - 1) // factor
    cdef Py_ssize_t oy, ox, y, x, x_end, bh, bw, c
    cdef uint64_t count
    cdef uint64_t* acc
    cdef const unsigned char* row
    for oy in range(out_h):
        memset(sums, 0, out_w * 4 * sizeof(uint64_t))
        bh = min(factor, height - oy * factor)
        for y in range(oy * factor, oy * factor + bh):
            row = src + y * width * 4
            for ox in range(out_w):
                acc = sums + ox * 4
                x_end = min((ox + 1) * factor, width)
                for x in range(ox * factor, x_end):
                    acc[0] += row[x * 4]
                    acc[1] += row[x * 4 + 1]
                    acc[2] += row[x * 4 + 2]
                    acc[3] += row[x * 4 + 3]
        for ox in range(out_w):
            bw = min(factor, width - ox * factor)
            count = <uint64_t>(bw * bh)
            for c in range(4):
                dst[(oy * out_w + ox) * 4 + c] = <unsigned char>(
                    (sums[ox * 4 + c] + count // 2) // count
                )
    return 0


def downscale(frame, width, height, factor):
    """The frame shrunk by an integer ``factor`` with a box filter (each output pixel is the
    rounded mean of a ``factor``x``factor`` block; edge blocks average the pixels they cover).

    The result is ``ceil(width/factor) x ceil(height/factor)`` BGRA pixels.
    """
    cdef const unsigned char[::1] f = _view(frame, "frame")
    cdef Py_ssize_t fw = _int_in(width, "width", 1, MAX_DIMENSION)
    cdef Py_ssize_t fh = _int_in(height, "height", 1, MAX_DIMENSION)
    cdef Py_ssize_t k = _int_in(factor, "factor", 1, MAX_DIMENSION)
    _check_frame(f.shape[0], fw, fh, "frame")
    if k == 1:
        return bytes(f)
    cdef Py_ssize_t out_w = (fw + k - 1) // k
    cdef Py_ssize_t out_h = (fh + k - 1) // k
    cdef bytes out = PyBytes_FromStringAndSize(NULL, out_w * out_h * 4)
    cdef unsigned char* dst = _bytes_ptr(out)
    cdef uint64_t* sums = <uint64_t*>PyMem_Malloc(out_w * 4 * sizeof(uint64_t))
    if sums == NULL:
        raise MemoryError()
    try:
        with nogil:
            _downscale(&f[0], fw, fh, k, dst, sums)
    finally:
        PyMem_Free(sums)
    return out


cdef list _reduction_table(int bits):
    # Keep the top ``bits`` of a channel and repeat them down the low bits, so full intensity
    # stays 255 and black stays 0 (plain truncation would turn white into grey).
    cdef list table = []
    cdef int v, q, acc, filled
    for v in range(256):
        q = v >> (8 - bits)
        acc = 0
        filled = 0
        while filled < 8:
            acc = (acc << bits) | q
            filled += bits
        table.append(acc >> (filled - 8))
    return table


def reduce_colours(data, bits):
    """BGRA pixels with ``bits`` (1-8) significant bits per colour channel; alpha is kept."""
    cdef const unsigned char[::1] s = _view(data, "data")
    cdef int b = _int_in(bits, "bits", 1, 8)
    cdef Py_ssize_t n = s.shape[0]
    _check_pixels(n, "data")
    if n == 0:
        return b""
    cdef unsigned char table[256]
    cdef Py_ssize_t i
    for i, v in enumerate(_reduction_table(b)):
        table[i] = v
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* d = _bytes_ptr(out)
    cdef const unsigned char* p = &s[0]
    with nogil:
        for i in range(0, n, 4):
            d[i] = table[p[i]]
            d[i + 1] = table[p[i + 1]]
            d[i + 2] = table[p[i + 2]]
            d[i + 3] = p[i + 3]
    return out


def solid_colour(data):
    """The one colour of a run of BGRA pixels as ``b | g << 8 | r << 16 | a << 24``, or None.

    (That is the little-endian 32-bit value of one pixel's four bytes.)
    """
    cdef const unsigned char[::1] s = _view(data, "data")
    cdef Py_ssize_t n = s.shape[0]
    _check_pixels(n, "data")
    if n == 0:
        raise ValueError("data has no pixels")
    cdef const unsigned char* p = &s[0]
    cdef int same
    with nogil:
        # data[i] == data[i + 4] for every i means every pixel equals the first one.
        same = memcmp(p, p + 4, n - 4) == 0
    if not same:
        return None
    return p[0] | (p[1] << 8) | (p[2] << 16) | (<uint32_t>p[3] << 24)


# ---------------------------------------------------------------------------- palettes

cdef Py_ssize_t _palette(const unsigned char* src, Py_ssize_t pixels, Py_ssize_t max_colours,
                         uint32_t* colours, unsigned char* indices) noexcept nogil:
    # Open addressing in a 1024-slot table (at most 256 colours: never more than a quarter
    # full); a one-entry cache first, since neighbouring pixels of text and UI usually match.
    cdef uint32_t keys[1024]
    cdef uint16_t slots[1024]
    cdef Py_ssize_t n = 0, i
    cdef uint32_t c, last = 0, hsh
    cdef unsigned char last_index = 0
    memset(slots, 0, sizeof(slots))
    for i in range(pixels):
        c = _load32(src + i * 4)
        if n and c == last:
            indices[i] = last_index
            continue
        hsh = (c * <uint32_t>2654435761u) >> 22
        while slots[hsh] != 0 and keys[hsh] != c:
            hsh = (hsh + 1) & 1023
        if slots[hsh] == 0:
            if n == max_colours:
                return -1
            keys[hsh] = c
            colours[n] = c
            n += 1
            slots[hsh] = <uint16_t>n
        last = c
        last_index = <unsigned char>(slots[hsh] - 1)
        indices[i] = last_index
    return n


cdef void _pack(const unsigned char* indices, Py_ssize_t pixels, int bits,
                unsigned char* out) noexcept nogil:
    cdef int per_byte = 8 // bits
    cdef Py_ssize_t i, j, nbytes = (pixels * bits + 7) // 8
    cdef int k, acc
    for j in range(nbytes):
        acc = 0
        for k in range(per_byte):
            i = j * per_byte + k
            acc <<= bits
            if i < pixels:
                acc |= indices[i]
        out[j] = <unsigned char>acc


def palette(data, max_colours):
    """``(palette, indices)`` for BGRA pixels of at most ``max_colours`` (1-256) colours, or None.

    ``palette`` is the distinct pixels' 4 bytes each, in order of first appearance; ``indices``
    holds one index per pixel, ``palette_bits(len(palette)//4)`` bits each (1, 2, 4 or 8),
    packed most significant bit first with no padding between rows, the last byte padded with
    zero bits. ``expand_palette`` turns them back into pixels.
    """
    cdef const unsigned char[::1] s = _view(data, "data")
    cdef Py_ssize_t limit = _int_in(max_colours, "max_colours", 1, MAX_PALETTE)
    cdef Py_ssize_t size = s.shape[0]
    _check_pixels(size, "data")
    if size == 0:
        raise ValueError("data has no pixels")
    cdef Py_ssize_t pixels = size // 4
    cdef uint32_t colours[256]
    cdef Py_ssize_t n
    cdef int bits
    cdef bytes packed = None
    cdef unsigned char* dst
    cdef unsigned char* idx = <unsigned char*>PyMem_Malloc(pixels)
    if idx == NULL:
        raise MemoryError()
    try:
        with nogil:
            n = _palette(&s[0], pixels, limit, colours, idx)
        if n < 0:
            return None
        bits = _bits_for(n)
        packed = PyBytes_FromStringAndSize(NULL, (pixels * bits + 7) // 8)
        dst = _bytes_ptr(packed)
        with nogil:
            _pack(idx, pixels, bits, dst)
    finally:
        PyMem_Free(idx)
    cdef bytes pal = PyBytes_FromStringAndSize(<char*>colours, n * 4)
    return pal, packed


cdef int _expand(const unsigned char* pal, Py_ssize_t n, const unsigned char* packed,
                 Py_ssize_t pixels, int bits, unsigned char* dst) noexcept nogil:
    cdef int per_byte = 8 // bits
    cdef int mask = (1 << bits) - 1
    cdef Py_ssize_t i
    cdef int index
    for i in range(pixels):
        index = (packed[i // per_byte] >> (8 - bits * (i % per_byte + 1))) & mask
        if index >= n:
            return -1
        memcpy(dst + i * 4, pal + index * 4, 4)
    return 0


def expand_palette(palette, indices, pixels):
    """The ``pixels*4`` BGRA bytes that ``palette()`` described; ValueError if they don't fit."""
    cdef const unsigned char[::1] p = _view(palette, "palette")
    cdef const unsigned char[::1] q = _view(indices, "indices")
    cdef Py_ssize_t count = _int_in(pixels, "pixels", 1, MAX_DIMENSION * MAX_DIMENSION)
    cdef Py_ssize_t size = p.shape[0]
    if size % 4 or not 1 <= size // 4 <= MAX_PALETTE:
        raise ValueError(f"palette has {size} bytes, not 1 to {MAX_PALETTE} 4-byte colours")
    cdef Py_ssize_t n = size // 4
    cdef int bits = _bits_for(n)
    if q.shape[0] != (count * bits + 7) // 8:
        raise ValueError(
            f"indices has {q.shape[0]} bytes; {count} pixels of {bits}-bit indices take "
            f"{(count * bits + 7) // 8}"
        )
    cdef bytes out = PyBytes_FromStringAndSize(NULL, count * 4)
    cdef int status
    cdef unsigned char* dst = _bytes_ptr(out)
    with nogil:
        status = _expand(&p[0], n, &q[0], count, bits, dst)
    if status < 0:
        raise ValueError(f"an index points past the palette's {n} colours")
    return out


# ---------------------------------------------------------------------------- websocket

cdef void _unmask(const unsigned char* src, unsigned char* dst, Py_ssize_t n,
                  const unsigned char* mask) noexcept nogil:
    cdef unsigned char m8[8]
    cdef uint64_t m64 = 0, v = 0
    cdef Py_ssize_t i = 0
    for i in range(8):
        m8[i] = mask[i & 3]
    memcpy(&m64, m8, 8)
    i = 0
    while i + 8 <= n:
        memcpy(&v, src + i, 8)
        v ^= m64
        memcpy(dst + i, &v, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ mask[i & 3]
        i += 1


def unmask(payload, mask):
    """``payload`` XOR the repeated 4-byte websocket ``mask`` (RFC 6455 section 5.3)."""
    cdef const unsigned char[::1] s = _view(payload, "payload")
    cdef const unsigned char[::1] m = _view(mask, "mask")
    if m.shape[0] != 4:
        raise ValueError(f"a websocket mask has 4 bytes, not {m.shape[0]}")
    cdef Py_ssize_t n = s.shape[0]
    if n == 0:
        return b""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
    cdef unsigned char* dst = _bytes_ptr(out)
    with nogil:
        _unmask(&s[0], dst, n, &m[0])
    return out
