# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, nonecheck=False
"""The compiled hot path: tile diffing and pixel kernels for the relay and the agents.

``relay_ext/__init__.py`` imports this module (or, without a compiler or with
``TESSERA_PURE_PYTHON=1``, its twin ``relay_ext/pure.py``, which has the same API and gives the
same results). Callers: the Host agent (``changed_tiles`` on every capture, then ``dirty_rect``,
``solid_colour``, ``palette``, ``extract_tile`` per changed tile), the relay (``apply_tile`` into
its framebuffer, ``unmask`` for websocket frames) and the viewers. Formats are in
``docs/protocol.md``.

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
    "expand_palette", "extract_tile", "palette", "palette_bits", "reduce_colours", "solid_colour",
    "unmask",
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
