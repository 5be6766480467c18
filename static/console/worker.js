// The console's decoding worker (a module Web Worker started by console.js).
//
// The main thread owns the websocket and hands every FRAME_UPDATE to this worker as a
// transferred ArrayBuffer. The worker keeps the connection's one zstd stream (docs/protocol.md
// "Compression": libzstd compiled to WebAssembly, zstd.js; the pure JavaScript fzstd where
// WebAssembly cannot run) and one RGBA framebuffer per monitor, applies the update's
// rectangles in order (protocol.js applyRects) and posts back the painted regions as
// transferred pixel buffers. The main thread puts them on the canvas and only then sends the
// ACK, so the relay's flow control follows what the technician really sees.
//
// Messages in:  {op: "reset"}                          a new connection: new zstd stream
//               {op: "screens", monitors: [...]}       SCREEN_INFO: sizes (framebuffers)
//               {op: "frame", data: ArrayBuffer}       one FRAME_UPDATE message
//               {op: "recycle", buffers: [ArrayBuffer]} painted regions' pixels, given back
//                                                      (optional: fresh memory costs more)
// Messages out: {op: "paint", screen, seq, keyframe, regions: [{x, y, w, h, pixels}], ms,
//                decoder, parts: {zstd, apply, regions}}  (decoder: "wasm" or "fzstd"; parts:
//                                                        where the ms went, for bench/)
//               {op: "error", message, zstd}           malformed update (close 4006)

import { Decompress } from "../vendor/fzstd-0.1.1.js";
import { applyRects, frameHeader, FLAG_KEYFRAME, FLAG_ZSTD, Malformed } from "./protocol.js";
import { loadZstd } from "./zstd.js";

let wasm = null;       // the ZstdModule (zstd.js); null: WebAssembly unavailable, fzstd instead
let stream = null;    // this connection's stream (created on the first ZSTD update)
let pieces = [];      // what fzstd produced for the update being decoded
let broken = null;    // once a message is malformed the connection is over
let waiting = [];     // messages that arrived while the decoder was loading (null once loaded)
// id -> {width, height, block, fb}: the framebuffer is a block of the WebAssembly module's
// memory (fetch it with pixels(): the memory may have grown) or, without one, fb.
const screens = new Map();

// Large region buffers the main thread gave back once painted, by byte length: a full-screen
// update reuses one instead of touching 8 MB of fresh memory (page faults, ~5 ms) each time.
const spare = new Map();
const SPARE_MIN_BYTES = 256 * 1024;
const SPARE_PER_SIZE = 2;

// Above this share of the bounding box covered, one region is cheaper than many.
const ONE_REGION_COVERAGE = 0.5;
const MAX_REGIONS = 24;

function inflate(body, rawLen) {
  if (wasm) {
    if (stream === null) stream = wasm.stream();
    return stream.decompress(body, rawLen); // throws Malformed("zstd: ...") when corrupt
  }
  if (stream === null) stream = new Decompress((chunk) => pieces.push(chunk));
  pieces = [];
  try {
    stream.push(body, false);
  } catch (err) {
    throw new Malformed(`zstd: ${err.message || err}`);
  }
  let total = 0;
  for (const piece of pieces) total += piece.length;
  if (total !== rawLen) {
    // fzstd holds back a stream's first message when it is under 18 bytes; any other
    // difference is a broken stream. Either way console.js reconnects without compression.
    throw new Malformed(`the update decompressed to ${total} bytes, not ${rawLen}`);
  }
  if (pieces.length === 1) return pieces[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) { out.set(piece, at); at += piece.length; }
  pieces = [];
  return out;
}

function regionsOf(screen, fb, touched) {
  let x0 = Infinity, y0 = Infinity, x1 = 0, y1 = 0, area = 0;
  for (const [x, y, w, h] of touched) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y);
    x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h);
    area += w * h;
  }
  if (!touched.length) return [];
  const boxes = touched.length > MAX_REGIONS || area >= ONE_REGION_COVERAGE * (x1 - x0) * (y1 - y0)
    ? [[x0, y0, x1 - x0, y1 - y0]] : touched;
  return boxes.map(([x, y, w, h]) => ({ x, y, w, h, pixels: cut(screen, fb, x, y, w, h) }));
}

function cut(screen, fb, x, y, w, h) {
  const stride = screen.width * 4, rowLen = w * 4;
  const out = buffer(w * h * 4);
  if (w === screen.width) {
    out.set(fb.subarray(y * stride, (y + h) * stride)); // whole rows: one copy
    return out;
  }
  for (let j = 0; j < h; j++) {
    const from = (y + j) * stride + x * 4;
    out.set(fb.subarray(from, from + rowLen), j * rowLen);
  }
  return out;
}

function buffer(size) {
  const kept = size >= SPARE_MIN_BYTES ? spare.get(size) : undefined;
  return new Uint8ClampedArray(kept && kept.length ? kept.pop() : size);
}

function recycle(buffers) {
  for (const b of buffers) {
    if (!(b instanceof ArrayBuffer) || b.byteLength < SPARE_MIN_BYTES) continue;
    const kept = spare.get(b.byteLength) || [];
    if (kept.length < SPARE_PER_SIZE) kept.push(b);
    spare.set(b.byteLength, kept);
  }
}

/** Allocate the screen's framebuffer (black until its first key frame) on its first update. */
function allocate(screen) {
  if (screen.block || screen.fb) return;
  const size = screen.width * screen.height * 4;
  screen.block = wasm ? wasm.block(size) : null;
  if (!screen.block) screen.fb = new Uint8Array(size);
}

/** The screen's framebuffer as it is now (a view taken before the memory grew is empty). */
function pixels(screen) {
  return screen.block ? screen.block.bytes() : screen.fb;
}

function forget(id) {
  const screen = screens.get(id);
  if (screen && screen.block) screen.block.free();
  screens.delete(id);
}

function frame(data) {
  const started = performance.now();
  const { flags, screen: id, seq, rawLen, body } = frameHeader(data);
  const screen = screens.get(id);
  if (!screen) throw new Malformed(`a frame for screen ${id}, which SCREEN_INFO did not announce`);
  allocate(screen); // before inflating: both may grow the module's memory, detaching views
  const bytes = flags & FLAG_ZSTD ? inflate(body, rawLen) : body;
  const inflated = performance.now();
  const fb = pixels(screen);
  const touched = applyRects(fb, screen.width, screen.height, bytes);
  const applied = performance.now();
  const regions = regionsOf(screen, fb, touched);
  const done = performance.now();
  self.postMessage({ op: "paint", screen: id, seq, keyframe: (flags & FLAG_KEYFRAME) !== 0, regions,
    ms: done - started, decoder: wasm ? "wasm" : "fzstd",
    parts: { zstd: inflated - started, apply: applied - inflated, regions: done - applied } },
  regions.map((r) => r.pixels.buffer));
}

function handle(msg) {
  if (msg.op === "reset") {
    if (stream && wasm) stream.free();
    stream = null; pieces = []; broken = null;
    for (const id of [...screens.keys()]) forget(id);
  } else if (msg.op === "screens") {
    for (const m of msg.monitors) {
      const known = screens.get(m.id);
      if (!known || known.width !== m.width || known.height !== m.height) {
        forget(m.id);
        screens.set(m.id, { width: m.width, height: m.height, block: null, fb: null });
      }
    }
    const ids = new Set(msg.monitors.map((m) => m.id));
    for (const id of [...screens.keys()]) if (!ids.has(id)) forget(id);
  } else if (msg.op === "recycle") {
    recycle(msg.buffers || []);
  } else if (msg.op === "frame") {
    if (broken) return;
    try {
      frame(msg.data);
    } catch (err) {
      broken = err;
      self.postMessage({ op: "error", message: err.message || String(err),
        zstd: /zstd|decompress/.test(err.message || "") });
    }
  }
}

self.onmessage = (event) => {
  if (waiting) waiting.push(event.data); else handle(event.data);
};

// Messages wait for the decoder to load, then go through in the order they came.
loadZstd().then((module) => {
  wasm = module;
  const queued = waiting;
  waiting = null;
  for (const msg of queued) handle(msg);
});
