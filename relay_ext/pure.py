"""The pure-Python twin of ``relay_ext._tiles``: same functions, same results, same errors.

``relay_ext/__init__.py`` falls back to this module when the compiled one is missing (no C
compiler where Tessera was installed) or when ``TESSERA_PURE_PYTHON=1`` asks for it; the
relay_ext tests run every case against both. It leans on what CPython does in C already (bytes
slicing and comparison, ``bytes.translate``, big-integer XOR) so that an agent without the
extension still works, only slower. Formats are described in ``_tiles.pyx`` and
``docs/protocol.md``.
"""
from __future__ import annotations

from array import array
from operator import index as _index

from relay_ext._zstd import FrameCompressor, FrameDecompressor

IMPLEMENTATION = "python"
MAX_DIMENSION = 65536
MAX_PALETTE = 256

__all__ = [
    "IMPLEMENTATION", "MAX_DIMENSION", "MAX_PALETTE", "FrameCompressor", "FrameDecompressor",
    "apply_tile", "bgra_to_rgba", "changed_tiles", "copy_rect", "dirty_rect", "downscale",
    "expand_palette", "extract_tile", "find_copy", "palette", "palette_bits", "reduce_colours",
    "solid_colour", "unmask",
]


# ---------------------------------------------------------------------------- argument checks

def _int_in(value, name: str, lo: int, hi: int) -> int:
    v = _index(value)
    if v < lo or v > hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, not {v}")
    return v


def _buffer(obj, name: str) -> bytes | bytearray | memoryview:
    """A flat byte view of ``obj``, as the compiled module's ``const unsigned char[::1]``."""
    if obj is None:
        raise TypeError(f"{name} must be a bytes-like object, not None")
    if isinstance(obj, (bytes, bytearray)):
        return obj
    view = memoryview(obj)  # TypeError for anything that is not a buffer
    if view.ndim != 1 or view.itemsize != 1:
        raise ValueError(f"{name} must be a one-dimensional buffer of bytes")
    if not view.c_contiguous:
        raise ValueError(f"{name} must be a contiguous buffer")
    return view


def _check_frame(size: int, width: int, height: int, name: str) -> None:
    if size != width * height * 4:
        raise ValueError(
            f"{name} has {size} bytes; a {width}x{height} BGRA frame has {width * height * 4}"
        )


def _check_rect(width: int, height: int, x: int, y: int, w: int, h: int) -> None:
    if x + w > width or y + h > height:
        raise ValueError(
            f"rectangle {w}x{h} at ({x}, {y}) does not fit in a {width}x{height} frame"
        )


def _check_pixels(size: int, name: str) -> None:
    if size % 4:
        raise ValueError(f"{name} has {size} bytes, not a whole number of 4-byte pixels")


def _frame_args(frames, width, height):
    w = _int_in(width, "width", 1, MAX_DIMENSION)
    h = _int_in(height, "height", 1, MAX_DIMENSION)
    out = []
    for name, frame in frames:
        buf = _buffer(frame, name)
        _check_frame(len(buf) if not isinstance(buf, memoryview) else buf.nbytes, w, h, name)
        out.append(buf)
    return out, w, h


def _rect_args(width, height, x, y, w, h):
    rx = _int_in(x, "x", 0, MAX_DIMENSION)
    ry = _int_in(y, "y", 0, MAX_DIMENSION)
    rw = _int_in(w, "w", 1, MAX_DIMENSION)
    rh = _int_in(h, "h", 1, MAX_DIMENSION)
    _check_rect(width, height, rx, ry, rw, rh)
    return rx, ry, rw, rh


def _size(buf) -> int:
    return buf.nbytes if isinstance(buf, memoryview) else len(buf)


def palette_bits(colours) -> int:
    """Bits per index for a palette of ``colours`` entries: 1, 2, 4 or 8."""
    n = _int_in(colours, "colours", 1, MAX_PALETTE)
    return 1 if n <= 2 else 2 if n <= 4 else 4 if n <= 16 else 8


# ---------------------------------------------------------------------------- tiles

def changed_tiles(prev, cur, width, height, tile=64) -> list[tuple[int, int]]:
    """(column, row) of every ``tile``-pixel square that differs between two BGRA frames."""
    (a, b), w, h = _frame_args((("prev", prev), ("cur", cur)), width, height)
    t = _int_in(tile, "tile", 1, MAX_DIMENSION)
    if isinstance(a, memoryview):
        a = a.tobytes()
    if isinstance(b, memoryview):
        b = b.tobytes()
    cols = (w + t - 1) // t
    rows = (h + t - 1) // t
    stride = w * 4
    span = t * 4
    out: list[tuple[int, int]] = []
    for ty in range(rows):
        y0 = ty * t
        y1 = min(y0 + t, h)
        band_start, band_end = y0 * stride, y1 * stride
        # The whole band first: unchanged bands (most of them) cost one slice compare.
        if a[band_start:band_end] == b[band_start:band_end]:
            continue
        pending = list(range(cols))
        for y in range(y0, y1):
            row = y * stride
            if a[row:row + stride] == b[row:row + stride]:
                continue
            still = []
            for tx in pending:
                s = row + tx * span
                e = row + min((tx + 1) * span, stride)
                if a[s:e] != b[s:e]:
                    out.append((tx, ty))
                else:
                    still.append(tx)
            pending = still
            if not pending:
                break
    out.sort(key=lambda cr: (cr[1], cr[0]))
    return out


def dirty_rect(prev, cur, width, height, x, y, w, h) -> tuple[int, int, int, int] | None:
    """The smallest (x, y, w, h) inside the given rectangle holding every changed pixel, or None."""
    (a, b), fw, fh = _frame_args((("prev", prev), ("cur", cur)), width, height)
    rx, ry, rw, rh = _rect_args(fw, fh, x, y, w, h)
    stride = fw * 4
    base = rx * 4
    span = rw * 4

    def row_differs(r: int) -> bool:
        s = r * stride + base
        return a[s:s + span] != b[s:s + span]

    top = next((r for r in range(ry, ry + rh) if row_differs(r)), None)
    if top is None:
        return None
    bottom = next(r for r in range(ry + rh - 1, top - 1, -1) if row_differs(r))
    left, right = rx + rw, rx - 1
    for r in range(top, bottom + 1):
        s = r * stride
        ra = a[s:s + stride]
        rb = b[s:s + stride]
        c = rx
        while c < left:
            if ra[c * 4:c * 4 + 4] != rb[c * 4:c * 4 + 4]:
                left = c
                break
            c += 1
        c = rx + rw - 1
        while c > right:
            if ra[c * 4:c * 4 + 4] != rb[c * 4:c * 4 + 4]:
                right = c
                break
            c -= 1
    return (left, top, right - left + 1, bottom - top + 1)


def extract_tile(frame, width, height, x, y, w, h) -> bytes:
    """The ``w*h*4`` bytes of the rectangle at (x, y), rows packed ``w*4`` bytes apart."""
    (f,), fw, fh = _frame_args((("frame", frame),), width, height)
    rx, ry, rw, rh = _rect_args(fw, fh, x, y, w, h)
    stride = fw * 4
    span = rw * 4
    if rx == 0 and rw == fw:
        return bytes(f[ry * stride:(ry + rh) * stride])
    parts = []
    for r in range(ry, ry + rh):
        s = r * stride + rx * 4
        parts.append(f[s:s + span])
    return b"".join(parts)


def apply_tile(frame, width, height, x, y, w, h, data) -> None:
    """Write the ``w*h*4`` bytes of ``data`` into the writable ``frame`` at (x, y)."""
    target = _writable(frame)
    d = _buffer(data, "data")
    fw = _int_in(width, "width", 1, MAX_DIMENSION)
    fh = _int_in(height, "height", 1, MAX_DIMENSION)
    rx = _int_in(x, "x", 0, MAX_DIMENSION)
    ry = _int_in(y, "y", 0, MAX_DIMENSION)
    rw = _int_in(w, "w", 1, MAX_DIMENSION)
    rh = _int_in(h, "h", 1, MAX_DIMENSION)
    _check_frame(target.nbytes, fw, fh, "frame")
    _check_rect(fw, fh, rx, ry, rw, rh)
    if _size(d) != rw * rh * 4:
        raise ValueError(f"data has {_size(d)} bytes; a {rw}x{rh} tile has {rw * rh * 4}")
    stride = fw * 4
    span = rw * 4
    for r in range(rh):
        s = (ry + r) * stride + rx * 4
        target[s:s + span] = d[r * span:(r + 1) * span]


def _writable(frame) -> memoryview:
    if frame is None:
        raise TypeError("frame must be a writable buffer such as a bytearray, not None")
    target = memoryview(frame)
    if target.readonly:
        raise TypeError("frame must be a writable buffer such as a bytearray")
    if target.ndim != 1 or target.itemsize != 1 or not target.c_contiguous:
        raise ValueError("frame must be a one-dimensional contiguous buffer of bytes")
    return target


def copy_rect(frame, width, height, src_x, src_y, x, y, w, h) -> None:
    """Copy the ``w``x``h`` area at (src_x, src_y) of the writable ``frame`` to (x, y), in place,
    as if through a temporary buffer (the areas may overlap)."""
    target = _writable(frame)
    fw = _int_in(width, "width", 1, MAX_DIMENSION)
    fh = _int_in(height, "height", 1, MAX_DIMENSION)
    sx = _int_in(src_x, "src_x", 0, MAX_DIMENSION)
    sy = _int_in(src_y, "src_y", 0, MAX_DIMENSION)
    rx = _int_in(x, "x", 0, MAX_DIMENSION)
    ry = _int_in(y, "y", 0, MAX_DIMENSION)
    rw = _int_in(w, "w", 1, MAX_DIMENSION)
    rh = _int_in(h, "h", 1, MAX_DIMENSION)
    _check_frame(target.nbytes, fw, fh, "frame")
    _check_rect(fw, fh, sx, sy, rw, rh)
    _check_rect(fw, fh, rx, ry, rw, rh)
    stride = fw * 4
    span = rw * 4
    rows = [bytes(target[(sy + r) * stride + sx * 4:(sy + r) * stride + sx * 4 + span])
            for r in range(rh)]
    for r, row in enumerate(rows):
        s = (ry + r) * stride + rx * 4
        target[s:s + span] = row


# ---------------------------------------------------------------------------- copy detection
# The same search as ``_tiles.find_copy`` (read the comments there), step for step, so the
# twins find the same rectangle; the byte work is done by slice comparisons and bytes.find.

ANCHOR = 16
ANCHOR_CHANGES = 3
CANDIDATES = 16
SAMPLE_ROWS = 63
BREAKS = 64
_CHUNK = 64  # pixels compared at once before looking pixel by pixel


def _sample_rows(y: int, h: int) -> list[int]:
    rows: list[int] = []
    den = 2
    while den <= 64:
        for num in range(1, den, 2):
            r = y + (h * num) // den
            if r not in rows:
                rows.append(r)
        den *= 2
    return rows


def _run_forward(a, a0: int, b, b0: int, count: int) -> int:
    """How many 4-byte pixels from a[a0:] and b[b0:] are equal in a row, up to ``count``."""
    done = 0
    while done < count:
        step = min(_CHUNK, count - done)
        s, t = a0 + done * 4, b0 + done * 4
        if a[s:s + step * 4] == b[t:t + step * 4]:
            done += step
            continue
        while a[s:s + 4] == b[t:t + 4]:
            s += 4
            t += 4
            done += 1
        return done
    return count


def _run_backward(a, a_end: int, b, b_end: int, count: int) -> int:
    """How many 4-byte pixels before a_end and b_end are equal in a row, up to ``count``."""
    done = 0
    while done < count:
        step = min(_CHUNK, count - done)
        s, t = a_end - (done + step) * 4, b_end - (done + step) * 4
        if a[s:s + step * 4] == b[t:t + step * 4]:
            done += step
            continue
        s, t = a_end - done * 4, b_end - done * 4
        while a[s - 4:s] == b[t - 4:t]:
            s -= 4
            t -= 4
            done += 1
        return done
    return count


def _row_span(prev, cur, stride, r, ax, dx, dy, lo, hi):
    """Row r's run of pixels equal to the shifted old frame around the anchor, inside [lo, hi),
    or None when the anchor's columns differ."""
    c_row, p_row = r * stride, (r - dy) * stride - dx * 4
    a = ax * 4
    if cur[c_row + a:c_row + a + ANCHOR * 4] != prev[p_row + a:p_row + a + ANCHOR * 4]:
        return None
    if cur[c_row + lo * 4:c_row + hi * 4] == prev[p_row + lo * 4:p_row + hi * 4]:
        return lo, hi
    left = ax - _run_backward(cur, c_row + a, prev, p_row + a, ax - lo)
    right = ax + ANCHOR
    right += _run_forward(cur, c_row + right * 4, prev, p_row + right * 4, hi - right)
    return left, right


def _side(prev, cur, stride, ax, ay, dx, dy, step, limit, left, right):
    """(k, left, right) for the largest k of each span common to the anchor's row and the k
    rows after it going ``step`` (see ``_tiles._side``)."""
    marks = []
    k = 0
    while True:
        span = (_row_span(prev, cur, stride, ay + (k + 1) * step, ax, dx, dy, left, right)
                if k < limit else None)
        if span is None or span != (left, right):
            marks.append((k, left, right))
        if span is None:
            return marks
        left, right = span
        k += 1


def _spread(marks: list) -> list:
    """At most BREAKS + 1 of the marks, evenly spread, the last one always among them."""
    step = (len(marks) + BREAKS - 1) // BREAKS
    chosen = marks[::step]
    if (len(marks) - 1) % step:
        chosen.append(marks[-1])
    return chosen


def _grow(prev, cur, fw, fh, x, y, w, h, ax, ay, dx, dy):
    stride = fw * 4
    lo_x, hi_x = max(x, dx), min(x + w, fw + dx)
    lo_y, hi_y = max(y, dy), min(y + h, fh + dy)
    left, right = _row_span(prev, cur, stride, ay, ax, dx, dy, lo_x, hi_x)
    ups = _side(prev, cur, stride, ax, ay, dx, dy, -1, ay - lo_y, left, right)
    downs = _side(prev, cur, stride, ax, ay, dx, dy, 1, hi_y - ay - 1, left, right)
    best, rect = 0, None
    for k, ul, ur in _spread(ups):
        for j, dl, dr in _spread(downs):
            width = min(ur, dr) - max(ul, dl)
            area = width * (1 + k + j)
            if area > best:
                best = area
                left = max(ul, dl)
                rect = (left - dx, ay - k - dy, left, ay - k, width, 1 + k + j)
    return best, rect


def _best_of(prev, cur, fw, fh, x, y, w, h, ax, ay, offsets):
    best, found = 0, None
    for dx, dy in offsets:
        area, rect = _grow(prev, cur, fw, fh, x, y, w, h, ax, ay, dx, dy)
        if area > best:
            best, found = area, rect
    return best, found


def _rows_outward(ay: int, y: int, h: int, first: int):
    d = first
    while ay - d >= y or ay + d < y + h:
        for py in ((ay - d, ay + d) if d else (ay,)):
            if y <= py < y + h:
                yield py
        d += 1


def _try_anchor(prev, cur, fw, fh, x, y, w, h, ax, ay, min_area, search, hints):
    stride = fw * 4
    start = ay * stride + ax * 4
    anchor = bytes(cur[start:start + ANCHOR * 4])
    offsets: list[tuple[int, int]] = []
    for dx, dy in hints:
        px, py = ax - dx, ay - dy
        if x <= px <= x + w - ANCHOR and y <= py < y + h and (dx or dy) \
                and len(offsets) < CANDIDATES:
            s = py * stride + px * 4
            if prev[s:s + ANCHOR * 4] == anchor:
                offsets.append((dx, dy))
    for py in _rows_outward(ay, y, h, 1):
        if len(offsets) == CANDIDATES:
            break
        s = py * stride + ax * 4
        if (0, ay - py) not in offsets and prev[s:s + ANCHOR * 4] == anchor:
            offsets.append((0, ay - py))
    best, found = _best_of(prev, cur, fw, fh, x, y, w, h, ax, ay, offsets)
    if best >= min_area or not search:
        return best, found
    offsets = []
    for py in _rows_outward(ay, y, h, 0):
        row = py * stride
        s, end = row + x * 4, row + (x + w) * 4
        while len(offsets) < CANDIDATES:
            i = prev.find(anchor, s, end)
            if i < 0:
                break
            if (i - row) % 4:
                s = i + 1
                continue
            px = (i - row) // 4
            if px != ax:
                offsets.append((ax - px, ay - py))
            s = i + 4
        if len(offsets) == CANDIDATES:
            break
    return _best_of(prev, cur, fw, fh, x, y, w, h, ax, ay, offsets)


def _distinct(run: bytes) -> bool:
    changes = sum(run[i * 4:i * 4 + 4] != run[i * 4 - 4:i * 4] for i in range(1, ANCHOR))
    return changes >= ANCHOR_CHANGES


def _anchor_in_row(prev, cur, stride: int, x: int, w: int, r: int) -> tuple[int, bool]:
    """(column, wide) of an anchor in row r, or (-1, False) (see ``_tiles._anchor_in_row``)."""
    row = r * stride
    if cur[row + x * 4:row + (x + w) * 4] == prev[row + x * 4:row + (x + w) * 4]:
        return -1, False
    first = x + _run_forward(cur, row + x * 4, prev, row + x * 4, w)
    last = x + w - 1 - _run_backward(cur, row + (x + w) * 4, prev, row + (x + w) * 4, w)
    wide = last - first + 1 >= ANCHOR
    middle = min(max((first + last + 1 - ANCHOR) // 2, x), x + w - ANCHOR)
    for a in range(middle, min(last, x + w - ANCHOR) + 1, ANCHOR):
        if _distinct(cur[row + a * 4:row + (a + ANCHOR) * 4]):
            return a, wide
    a = middle - ANCHOR
    while a + ANCHOR > first and a >= x:
        if _distinct(cur[row + a * 4:row + (a + ANCHOR) * 4]):
            return a, wide
        a -= ANCHOR
    return -1, wide


def find_copy(prev, cur, width, height, x, y, w, h, min_area=1024, anchors=8, searches=2,
              hints=()):
    """A rectangle of ``cur`` that is a shifted copy of ``prev``: ``(src_x, src_y, x, y, w, h)``,
    or None (see ``_tiles.find_copy``)."""
    (a, b), fw, fh = _frame_args((("prev", prev), ("cur", cur)), width, height)
    rx, ry, rw, rh = _rect_args(fw, fh, x, y, w, h)
    least = _int_in(min_area, "min_area", 1, MAX_DIMENSION * MAX_DIMENSION)
    tries = _int_in(anchors, "anchors", 1, SAMPLE_ROWS)
    full = _int_in(searches, "searches", 0, SAMPLE_ROWS)
    if isinstance(hints, (str, bytes, bytearray)):
        raise TypeError("hints must be a sequence of (dx, dy) pairs")
    offsets = []
    for hint in hints:
        if len(offsets) == CANDIDATES:
            raise ValueError(f"at most {CANDIDATES} hints")
        dx, dy = hint
        offsets.append((_offset_in(dx, "dx"), _offset_in(dy, "dy")))
    if isinstance(a, memoryview):
        a = a.tobytes()
    if isinstance(b, memoryview):
        b = b.tobytes()
    if rw < ANCHOR:
        return None
    tried = searched = 0
    for r in _sample_rows(ry, rh):
        ax, wide = _anchor_in_row(a, b, fw * 4, rx, rw, r)
        if ax < 0:
            continue
        search = wide and searched < full
        best, found = _try_anchor(a, b, fw, fh, rx, ry, rw, rh, ax, r, least, search, offsets)
        if best >= least:
            return found
        searched += search
        tried += 1
        if tried >= tries:
            return None
    return None


def _offset_in(value, name: str) -> int:
    v = _index(value)
    if not -MAX_DIMENSION <= v <= MAX_DIMENSION:
        raise ValueError(f"{name} must be between {-MAX_DIMENSION} and {MAX_DIMENSION}, not {v}")
    return v


# ---------------------------------------------------------------------------- pixel kernels

def bgra_to_rgba(data) -> bytes:
    """BGRA pixels as RGBA with alpha 255, what a browser canvas ``ImageData`` wants."""
    s = _buffer(data, "data")
    n = _size(s)
    _check_pixels(n, "data")
    if n == 0:
        return b""
    s = bytes(s)
    out = bytearray(n)
    out[0::4] = s[2::4]
    out[1::4] = s[1::4]
    out[2::4] = s[0::4]
    out[3::4] = b"\xff" * (n // 4)
    return bytes(out)


def downscale(frame, width, height, factor) -> bytes:
    """The frame shrunk by an integer ``factor`` with a box filter (see ``_tiles.downscale``)."""
    (f,), fw, fh = _frame_args((("frame", frame),), width, height)
    k = _int_in(factor, "factor", 1, MAX_DIMENSION)
    f = bytes(f)
    if k == 1:
        return f
    out_w = (fw + k - 1) // k
    out_h = (fh + k - 1) // k
    stride = fw * 4
    out = bytearray(out_w * out_h * 4)
    for oy in range(out_h):
        y0 = oy * k
        bh = min(k, fh - y0)
        sums = [0] * (out_w * 4)
        for y in range(y0, y0 + bh):
            row = f[y * stride:(y + 1) * stride]
            for c in range(4):
                channel = row[c::4]
                for ox in range(out_w):
                    sums[ox * 4 + c] += sum(channel[ox * k:(ox + 1) * k])
        for ox in range(out_w):
            count = min(k, fw - ox * k) * bh
            base = (oy * out_w + ox) * 4
            for c in range(4):
                out[base + c] = (sums[ox * 4 + c] + count // 2) // count
    return bytes(out)


def _reduction_table(bits: int) -> bytes:
    # Keep the top ``bits`` of a channel and repeat them down the low bits (255 stays 255).
    table = bytearray(256)
    for v in range(256):
        q = v >> (8 - bits)
        acc = 0
        filled = 0
        while filled < 8:
            acc = (acc << bits) | q
            filled += bits
        table[v] = acc >> (filled - 8)
    return bytes(table)


def reduce_colours(data, bits) -> bytes:
    """BGRA pixels with ``bits`` (1-8) significant bits per colour channel; alpha is kept."""
    s = _buffer(data, "data")
    b = _int_in(bits, "bits", 1, 8)
    n = _size(s)
    _check_pixels(n, "data")
    if n == 0:
        return b""
    s = bytes(s)
    out = bytearray(s.translate(_reduction_table(b)))
    out[3::4] = s[3::4]
    return bytes(out)


def solid_colour(data) -> int | None:
    """The one colour of a run of BGRA pixels as ``b | g << 8 | r << 16 | a << 24``, or None."""
    s = _buffer(data, "data")
    n = _size(s)
    _check_pixels(n, "data")
    if n == 0:
        raise ValueError("data has no pixels")
    s = bytes(s)
    first = s[:4]
    if first * (n // 4) != s:
        return None
    return int.from_bytes(first, "little")


# ---------------------------------------------------------------------------- palettes

def palette(data, max_colours) -> tuple[bytes, bytes] | None:
    """``(palette, indices)`` for pixels of at most ``max_colours`` colours, or None
    (format: ``_tiles.palette``)."""
    s = _buffer(data, "data")
    limit = _int_in(max_colours, "max_colours", 1, MAX_PALETTE)
    size = _size(s)
    _check_pixels(size, "data")
    if size == 0:
        raise ValueError("data has no pixels")
    # Pixels as native 32-bit words (written back the same way, so the bytes round-trip on any
    # byte order); dict.fromkeys keeps the order of first appearance.
    values = array("I")
    values.frombytes(bytes(s))
    colours = dict.fromkeys(values)
    if len(colours) > limit:
        return None
    index = {colour: i for i, colour in enumerate(colours)}
    indices = bytearray(map(index.__getitem__, values))
    return array("I", colours).tobytes(), _pack(indices, palette_bits(len(colours)))


def _pack(indices: bytearray, bits: int) -> bytes:
    if bits == 8:
        return bytes(indices)
    per_byte = 8 // bits
    pad = (-len(indices)) % per_byte
    values = indices + bytes(pad)
    out = bytearray(len(values) // per_byte)
    for j in range(len(out)):
        acc = 0
        for v in values[j * per_byte:(j + 1) * per_byte]:
            acc = (acc << bits) | v
        out[j] = acc
    return bytes(out)


def expand_palette(palette, indices, pixels) -> bytes:
    """The ``pixels*4`` BGRA bytes that ``palette()`` described; ValueError if they don't fit."""
    p = _buffer(palette, "palette")
    q = _buffer(indices, "indices")
    count = _int_in(pixels, "pixels", 1, MAX_DIMENSION * MAX_DIMENSION)
    size = _size(p)
    if size % 4 or not 1 <= size // 4 <= MAX_PALETTE:
        raise ValueError(f"palette has {size} bytes, not 1 to {MAX_PALETTE} 4-byte colours")
    n = size // 4
    bits = palette_bits(n)
    if _size(q) != (count * bits + 7) // 8:
        raise ValueError(
            f"indices has {_size(q)} bytes; {count} pixels of {bits}-bit indices take "
            f"{(count * bits + 7) // 8}"
        )
    p = bytes(p)
    colours = [p[i * 4:i * 4 + 4] for i in range(n)]
    q = bytes(q)
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    shifts = [8 - bits * (k + 1) for k in range(per_byte)]
    parts = []
    try:
        for i in range(count):
            parts.append(colours[(q[i // per_byte] >> shifts[i % per_byte]) & mask])
    except IndexError:
        raise ValueError(f"an index points past the palette's {n} colours") from None
    return b"".join(parts)


# ---------------------------------------------------------------------------- websocket

def unmask(payload, mask) -> bytes:
    """``payload`` XOR the repeated 4-byte websocket ``mask`` (RFC 6455 section 5.3)."""
    s = _buffer(payload, "payload")
    m = bytes(_buffer(mask, "mask"))
    if len(m) != 4:
        raise ValueError(f"a websocket mask has 4 bytes, not {len(m)}")
    n = _size(s)
    if n == 0:
        return b""
    # One big-integer XOR: CPython does it in C, tens of times faster than a byte loop.
    key = (m * (n // 4 + 1))[:n]
    value = int.from_bytes(s, "little") ^ int.from_bytes(key, "little")
    return value.to_bytes(n, "little")
