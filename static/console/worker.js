// The console's decoding worker (a module Web Worker started by console.js).
//
// The main thread owns the websocket and hands every FRAME_UPDATE to this worker as a
// transferred ArrayBuffer. The worker keeps the connection's one zstd stream (vendored fzstd,
// docs/protocol.md "Compression") and one RGBA framebuffer per monitor, applies the update's
// rectangles in order (protocol.js applyRects) and posts back the painted regions as
// transferred pixel buffers. The main thread puts them on the canvas and only then sends the
// ACK, so the relay's flow control follows what the technician really sees.
//
// Messages in:  {op: "reset"}                          a new connection: new zstd stream
//               {op: "screens", monitors: [...]}       SCREEN_INFO: sizes (framebuffers)
//               {op: "frame", data: ArrayBuffer}       one FRAME_UPDATE message
// Messages out: {op: "paint", screen, seq, keyframe, regions: [{x, y, w, h, pixels}], ms}
//               {op: "error", message, zstd}           malformed update (close 4006)

import { Decompress } from "../vendor/fzstd-0.1.1.js";
import { applyRects, frameHeader, FLAG_KEYFRAME, FLAG_ZSTD, Malformed } from "./protocol.js";

let stream = null;   // fzstd Decompress for this connection (created on the first ZSTD update)
let pieces = [];     // what the stream produced for the update being decoded
let broken = null;   // once a message is malformed the connection is over
const screens = new Map(); // id -> {width, height, fb: Uint8Array | null}

// Above this share of the bounding box covered, one region is cheaper than many.
const ONE_REGION_COVERAGE = 0.5;
const MAX_REGIONS = 24;

function inflate(body, rawLen) {
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

function regionsOf(screen, touched) {
  let x0 = Infinity, y0 = Infinity, x1 = 0, y1 = 0, area = 0;
  for (const [x, y, w, h] of touched) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y);
    x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h);
    area += w * h;
  }
  if (!touched.length) return [];
  const boxes = touched.length > MAX_REGIONS || area >= ONE_REGION_COVERAGE * (x1 - x0) * (y1 - y0)
    ? [[x0, y0, x1 - x0, y1 - y0]] : touched;
  return boxes.map(([x, y, w, h]) => ({ x, y, w, h, pixels: cut(screen, x, y, w, h) }));
}

function cut(screen, x, y, w, h) {
  const out = new Uint8ClampedArray(w * h * 4);
  const stride = screen.width * 4, rowLen = w * 4;
  for (let j = 0; j < h; j++) {
    const from = (y + j) * stride + x * 4;
    out.set(screen.fb.subarray(from, from + rowLen), j * rowLen);
  }
  return out;
}

function frame(data) {
  const started = performance.now();
  const { flags, screen: id, seq, rawLen, body } = frameHeader(data);
  const screen = screens.get(id);
  if (!screen) throw new Malformed(`a frame for screen ${id}, which SCREEN_INFO did not announce`);
  if (!screen.fb) screen.fb = new Uint8Array(screen.width * screen.height * 4);
  const bytes = flags & FLAG_ZSTD ? inflate(body, rawLen) : body;
  const touched = applyRects(screen.fb, screen.width, screen.height, bytes);
  const regions = regionsOf(screen, touched);
  self.postMessage({ op: "paint", screen: id, seq, keyframe: (flags & FLAG_KEYFRAME) !== 0, regions,
    ms: performance.now() - started }, regions.map((r) => r.pixels.buffer));
}

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.op === "reset") {
    stream = null; pieces = []; broken = null;
    screens.clear();
  } else if (msg.op === "screens") {
    for (const m of msg.monitors) {
      const known = screens.get(m.id);
      if (!known || known.width !== m.width || known.height !== m.height) {
        screens.set(m.id, { width: m.width, height: m.height, fb: null }); // black until a key frame
      }
    }
    const ids = new Set(msg.monitors.map((m) => m.id));
    for (const id of [...screens.keys()]) if (!ids.has(id)) screens.delete(id);
  } else if (msg.op === "frame") {
    if (broken) return;
    try {
      frame(msg.data);
    } catch (err) {
      broken = err;
      self.postMessage({ op: "error", message: err.message || String(err),
        zstd: /zstd|decompressed/.test(err.message || "") });
    }
  }
};
