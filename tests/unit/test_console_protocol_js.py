"""The console's JavaScript decoder (static/console/protocol.js), its WebAssembly zstd stream
(static/console/zstd.js over the vendored libzstd build) and the vendored fzstd read the bytes
the Python reference (agents/common/protocol.py) writes exactly as the reference does.

Runs the real ES modules under node (Debian's nodejs, scripts/install-system-deps): random
updates of every rectangle encoding are applied by both decoders to the same starting
framebuffer and must leave the same pixels (also with the framebuffer and the update in one
buffer, as in the worker's WebAssembly memory); malformed updates are refused by both; a zstd
stream of block-flushed updates (StreamCompressor) decodes message by message with the
WebAssembly stream and with fzstd's streaming decoder, as the console's worker does; corrupt
updates, wrong lengths and a window over the protocol's 8 MiB are refused.
"""
from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import zstandard

import relay_ext
from agents.common import protocol as p

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (scripts/install-system-deps: nodejs)")

RUNNER = """
import { applyRects, Malformed } from "%(protocol)s";
import { Decompress } from "%(fzstd)s";
import { readFileSync } from "fs";
const cases = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const c of cases) {
  if (c.stream) {
    const got = [];
    let pieces = [];
    const d = new Decompress((chunk) => pieces.push(chunk));
    for (const hex of c.stream) {
      pieces = [];
      d.push(Uint8Array.from(Buffer.from(hex, "hex")), false);
      got.push(Buffer.concat(pieces.map((x) => Buffer.from(x))).toString("hex"));
    }
    out.push(got);
    continue;
  }
  let fb = Uint8Array.from(Buffer.from(c.fb, "hex"));
  let rects = Uint8Array.from(Buffer.from(c.rects, "hex"));
  if (c.shared) {
    // Both in one buffer, the update at an odd offset after the framebuffer.
    const one = new Uint8Array(8 + fb.length + 1 + rects.length);
    one.set(fb, 8);
    one.set(rects, 9 + fb.length);
    fb = one.subarray(8, 8 + fb.length);
    rects = one.subarray(9 + fb.length);
  }
  try {
    applyRects(fb, c.w, c.h, rects);
    out.push(Buffer.from(fb).toString("hex"));
  } catch (err) {
    out.push(err instanceof Malformed ? "malformed" : "error: " + err.message);
  }
}
process.stdout.write(JSON.stringify(out));
"""


def run_js(cases: list[dict]) -> list:
    script = RUNNER % {"protocol": (ROOT / "static/console/protocol.js").as_uri(),
                       "fzstd": (ROOT / "static/vendor/fzstd-0.1.1.js").as_uri()}
    done = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def random_rects(rng: random.Random, w: int, h: int) -> list:
    rects = []
    for _ in range(rng.randint(1, 12)):
        rw, rh = rng.randint(1, w), rng.randint(1, h)
        x, y = rng.randint(0, w - rw), rng.randint(0, h - rh)
        kind = rng.choice(("raw", "fill", "palette", "copy"))
        if kind == "raw":
            rects.append(p.RawRect(x, y, rw, rh, rng.randbytes(rw * rh * 4)))
        elif kind == "fill":
            rects.append(p.FillRect(x, y, rw, rh, rng.randbytes(4)))
        elif kind == "palette":
            colours = [rng.randbytes(4) for _ in range(rng.choice((1, 2, 3, 5, 17, 200)))]
            pixels = b"".join(rng.choice(colours) for _ in range(rw * rh))
            found = relay_ext.palette(pixels, 256)
            rects.append(p.PaletteRect(x, y, rw, rh, *found))
        else:
            rects.append(p.CopyRect(x, y, rw, rh, rng.randint(0, w - rw), rng.randint(0, h - rh)))
    return rects


def test_random_updates_of_every_encoding_paint_the_same_pixels_as_the_python_reference():
    rng = random.Random(20240601)
    cases, expected = [], []
    for _ in range(150):
        w, h = rng.randint(1, 40), rng.randint(1, 30)
        start = rng.randbytes(w * h * 4)
        rects = random_rects(rng, w, h)
        fb = bytearray(start)
        p.apply_rects(fb, w, h, rects)
        cases.append({"w": w, "h": h, "fb": start.hex(), "rects": p.encode_rects(rects).hex()})
        expected.append(bytes(fb).hex())
    assert run_js(cases) == expected
    assert run_js([{**case, "shared": True} for case in cases]) == expected


def test_overlapping_copies_behave_as_through_a_temporary_buffer():
    w, h = 16, 16
    start = bytes(range(256)) * 4
    cases, expected = [], []
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (3, 2), (-2, -3)):
        rect = p.CopyRect(max(dx, 0), max(dy, 0), w - abs(dx), h - abs(dy), max(-dx, 0), max(-dy, 0))
        fb = bytearray(start)
        p.apply_rects(fb, w, h, [rect])
        cases.append({"w": w, "h": h, "fb": start.hex(), "rects": p.encode_rects([rect]).hex()})
        expected.append(bytes(fb).hex())
    assert run_js(cases) == expected


def test_malformed_updates_are_refused():
    w, h = 8, 8
    fb = bytes(w * h * 4)
    good = p.encode_rects([p.FillRect(0, 0, 8, 8, b"\x01\x02\x03\xff")])
    bad = [
        p.encode_rects([p.FillRect(4, 4, 5, 1, b"\x00\x00\x00\xff")]),  # leaves the screen
        p.encode_rects([p.CopyRect(0, 0, 4, 4, 5, 0)]),  # the source leaves the screen
        good + b"\x00",  # bytes left over
        good[:-1],  # too short
        good[:10] + b"\x09" + good[11:],  # unknown encoding
        # a palette of 3 colours (2 bits per index) with index 3
        (b"\x01\x00" + (0).to_bytes(2, "little") * 2 + (1).to_bytes(2, "little") * 2 + b"\x02"
         + b"\x02" + bytes(12) + b"\xc0"),
    ]
    cases = [{"w": w, "h": h, "fb": fb.hex(), "rects": data.hex()} for data in [good, *bad]]
    results = run_js(cases)
    assert results[0] == (b"\x01\x02\x03\xff" * 64).hex()
    assert results[1:] == ["malformed"] * len(bad)
    for data in bad:
        with pytest.raises(p.ProtocolError):
            p.apply_rects(bytearray(fb), w, h, p.decode_rects(data))


def test_fzstd_decodes_a_block_flushed_stream_message_by_message():
    rng = random.Random(7)
    compressor = p.StreamCompressor()
    raws = []
    for i in range(40):
        if i % 3 == 0:
            raw = rng.randbytes(rng.randint(20, 5000))
        elif i % 3 == 1:
            raw = bytes([i]) * rng.randint(20, 300_000)  # a block of one byte repeated
        else:
            raw = raws[-2][:2000] + b"again"  # matches against an earlier message
        raws.append(raw)
    stream = [compressor.compress(raw).hex() for raw in raws]
    assert run_js([{"stream": stream}]) == [[raw.hex() for raw in raws]]


# ------------------------------------------------------------------ the WebAssembly zstd stream
ZSTD_RUNNER = """
import { loadZstd } from "%(zstd)s";
import { Malformed } from "%(protocol)s";
import { readFileSync } from "fs";
// node's fetch does not read file: URLs; the worker fetches the same file over HTTP.
globalThis.fetch = async (url) => {
  const b = readFileSync(new URL(url));
  return { ok: true, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) };
};
const zstd = await loadZstd();
if (!zstd) throw new Error("the WebAssembly module did not load");
const cases = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const c of cases) {
  const stream = zstd.stream();
  // A framebuffer-like block allocated first: it must keep its bytes when the memory grows.
  const block = zstd.block(4096);
  block.bytes().fill(7);
  const got = [];
  for (const [hex, rawLen] of c.messages) {
    try {
      got.push(Buffer.from(stream.decompress(Uint8Array.from(Buffer.from(hex, "hex")), rawLen)).toString("hex"));
    } catch (err) {
      got.push(err instanceof Malformed ? "malformed: " + err.message : "error: " + err.message);
      break;
    }
  }
  got.push(block.bytes().every((v) => v === 7) ? "block kept" : "block lost");
  block.free();
  stream.free();
  out.push(got);
}
process.stdout.write(JSON.stringify(out));
"""


def run_zstd(cases: list[list[tuple[bytes, int]]]) -> list:
    script = ZSTD_RUNNER % {"protocol": (ROOT / "static/console/protocol.js").as_uri(),
                            "zstd": (ROOT / "static/console/zstd.js").as_uri()}
    payload = [{"messages": [(body.hex(), raw_len) for body, raw_len in case]} for case in cases]
    done = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(payload),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_webassembly_stream_decodes_a_block_flushed_stream_message_by_message():
    rng = random.Random(8)
    compressor = p.StreamCompressor()
    raws = [b"tiny"]  # a first message under 18 bytes (fzstd holds such a one back)
    for i in range(30):
        if i % 3 == 0:
            raw = rng.randbytes(rng.randint(20, 5000))
        elif i % 3 == 1:
            raw = bytes([i]) * rng.randint(20, 300_000)
        else:
            raw = raws[-2][:2000] + b"again"
        raws.append(raw)
    raws.append(rng.randbytes(3_000_000) * 6)  # 18 MB: the module's memory has to grow
    raws.append(b"after the growth")
    messages = [(compressor.compress(raw), len(raw)) for raw in raws]
    assert run_zstd([messages]) == [[raw.hex() for raw in raws] + ["block kept"]]


def test_the_webassembly_stream_refuses_corrupt_updates_and_wrong_lengths():
    compressor = p.StreamCompressor()
    first = b"the first update " * 100
    second = bytes(range(256)) * 64
    one, two = compressor.compress(first), compressor.compress(second)
    corrupt = bytearray(two)
    corrupt[len(corrupt) // 2] ^= 0xFF
    corrupt[-3] ^= 0x55
    wide = zstandard.ZstdCompressor(compression_params=zstandard.ZstdCompressionParameters(window_log=24))
    wide_obj = wide.compressobj()
    wide_first = wide_obj.compress(first) + wide_obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    results = run_zstd([
        [(one, len(first)), (bytes(corrupt), len(second))],
        [(one, len(first) - 1)],            # declared one byte short: decompresses to more
        [(one, len(first) + 1)],            # declared one byte long: decompresses to fewer
        [(b"not a zstd stream at all", 10)],
        [(wide_first, len(first))],         # a 16 MiB window
    ])
    assert results[0][0] == first.hex()
    assert results[0][1].startswith("malformed: zstd: ")
    assert results[1][0] == f"malformed: the update decompresses to more than {len(first) - 1} bytes"
    assert results[2][0] == f"malformed: the update decompressed to {len(first)} bytes, not {len(first) + 1}"
    assert results[3][0] == "malformed: zstd: unknown frame prefix (not a zstd stream)"
    assert results[4][0] == "malformed: zstd: a 16777216 byte window, more than the protocol's 8388608"
    assert all(result[-1] == "block kept" for result in results)
