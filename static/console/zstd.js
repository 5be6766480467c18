// The console worker's zstd decoder: libzstd's streaming decompressor, compiled to WebAssembly
// (static/vendor/zstddec-stream-0.3.4.wasm, the zstddec npm package's build of zstd 1.5.7;
// its licences are in the .LICENSE.txt file beside it), driven through its C functions.
//
// One ZstdStream per connection keeps one ZSTD_DCtx across updates, as docs/protocol.md
// "Compression" asks: each FRAME_UPDATE body is a flushed block of the connection's one stream,
// not a frame of its own. decompress() writes an update straight into a buffer inside the
// module's memory and returns a view of it (no copy); the view is good until the next call.
//
// loadZstd() resolves to a ZstdModule (streams, and blocks of its memory for framebuffers), or
// to null when WebAssembly is missing or refused (a CSP without
// 'wasm-unsafe-eval', the file not served): the worker then keeps the pure JavaScript fzstd.

import { Malformed } from "./protocol.js";

export const ZSTD_WASM = new URL("../vendor/zstddec-stream-0.3.4.wasm", import.meta.url);

// The protocol's largest window (zstd window log <= 23), as the Python receiver enforces it.
const MAX_WINDOW = 8 * 1024 * 1024;
// ZSTD_isError: a size_t result above -ZSTD_error_maxCode (120) is an error; size_t is 32-bit.
const ERROR_ABOVE = 2 ** 32 - 120;
// zstd_errors.h; a code not listed is shown by its number.
const ERRORS = {
  1: "generic error", 10: "unknown frame prefix (not a zstd stream)", 12: "unsupported version",
  14: "unsupported frame parameter", 16: "window too large", 20: "corrupt data",
  22: "wrong checksum", 24: "bad literals header", 64: "out of memory",
  70: "destination too small", 72: "wrong source size",
};

/**
 * Instantiate the decoder (once per worker). Resolves to a ZstdModule, or to null when
 * WebAssembly cannot be used here.
 */
export async function loadZstd(url = ZSTD_WASM) {
  if (typeof WebAssembly !== "object") return null;
  try {
    const response = await fetch(url);
    if (!response.ok) return null;
    const bytes = await response.arrayBuffer();
    const memory = new Memory();
    const { instance } = await WebAssembly.instantiate(bytes, {
      env: { emscripten_notify_memory_growth: () => memory.refresh() },
    });
    memory.attach(instance.exports);
    return new ZstdModule(memory);
  } catch {
    return null; // CompileError under a CSP without 'wasm-unsafe-eval', a failed fetch, ...
  }
}

/** The module's exports and byte views of its memory, renewed whenever the memory grows. */
class Memory {
  attach(exports) {
    this.fn = exports;
    this.refresh();
  }
  refresh() {
    if (!this.fn) return;
    this.bytes = new Uint8Array(this.fn.memory.buffer);
    this.view = new DataView(this.fn.memory.buffer);
  }
  current() {
    if (this.bytes.buffer !== this.fn.memory.buffer) this.refresh();
    return this;
  }
  malloc(size) {
    const ptr = this.fn.malloc(size);
    if (!ptr) throw new Malformed(`zstd: could not allocate ${size} bytes`);
    return ptr;
  }
}

export class ZstdModule {
  constructor(memory) { this.m = memory; }

  /** A new stream (one per connection). */
  stream() { return new ZstdStream(this.m); }

  /**
   * size zeroed bytes in the module's memory, or null when it has no room: the worker keeps
   * its framebuffers here so that applyRects copies a raw rectangle's rows from the
   * decompressed update with copyWithin (one buffer), twice as fast as across two.
   */
  block(size) {
    const ptr = this.m.fn.malloc(size);
    if (!ptr) return null;
    const block = new Block(this.m, ptr, size);
    block.bytes().fill(0);
    return block;
  }
}

/** Bytes malloc'ed in the module's memory. bytes() is a view made anew each time: a view
 *  taken before the memory grew is empty (its buffer detached). */
class Block {
  constructor(memory, ptr, size) { this.m = memory; this.ptr = ptr; this.size = size; }
  bytes() { return this.m.current().bytes.subarray(this.ptr, this.ptr + this.size); }
  free() {
    if (this.ptr) this.m.fn.free(this.ptr);
    this.ptr = 0;
  }
}

export class ZstdStream {
  constructor(memory) {
    this.m = memory;
    this.dctx = memory.fn.ZSTD_createDCtx();
    if (!this.dctx) throw new Malformed("zstd: could not create a decompression context");
    this.io = memory.malloc(24); // ZSTD_inBuffer {src, size, pos}, then ZSTD_outBuffer {dst, size, pos}
    this.input = 0; this.inputSize = 0;
    this.output = 0; this.outputSize = 0;
    this.started = false;
  }

  /**
   * Decompress one update's body (the next piece of the stream) into exactly rawLen bytes.
   * Returns a view into the module's memory, valid until the next call. Throws Malformed for
   * a corrupt stream or an update that decompresses to more or fewer bytes than rawLen.
   */
  decompress(body, rawLen) {
    const m = this.m;
    if (!this.dctx) throw new Malformed("zstd: the stream was freed");
    if (!this.started) {
      checkWindow(body);
      this.started = true;
    }
    if (body.length > this.inputSize) {
      if (this.input) m.fn.free(this.input);
      this.input = 0; this.inputSize = 0;
      this.input = m.malloc(body.length);
      this.inputSize = body.length;
    }
    // One byte more than announced: an update that would fill it decompresses to too much.
    if (rawLen + 1 > this.outputSize) {
      if (this.output) m.fn.free(this.output);
      this.output = 0; this.outputSize = 0;
      this.output = m.malloc(rawLen + 1);
      this.outputSize = rawLen + 1;
    }
    m.current().bytes.set(body, this.input);
    const inBuf = this.io, outBuf = this.io + 12;
    let view = m.view;
    view.setUint32(inBuf, this.input, true);
    view.setUint32(inBuf + 4, body.length, true);
    view.setUint32(inBuf + 8, 0, true);
    view.setUint32(outBuf, this.output, true);
    view.setUint32(outBuf + 4, rawLen + 1, true);
    view.setUint32(outBuf + 8, 0, true);
    let read = 0, written = 0;
    for (;;) {
      const ret = m.fn.ZSTD_decompressStream(this.dctx, outBuf, inBuf) >>> 0;
      if (ret > ERROR_ABOVE) {
        const code = 2 ** 32 - ret;
        throw new Malformed(`zstd: ${ERRORS[code] || `error ${code}`}`);
      }
      view = m.current().view;
      const nowRead = view.getUint32(inBuf + 8, true), nowWritten = view.getUint32(outBuf + 8, true);
      if (nowRead === read && nowWritten === written) break; // nothing more from this input
      read = nowRead; written = nowWritten;
    }
    if (written > rawLen) throw new Malformed(`the update decompresses to more than ${rawLen} bytes`);
    if (read !== body.length) throw new Malformed("zstd: the update was not decompressed to its end");
    if (written !== rawLen) throw new Malformed(`the update decompressed to ${written} bytes, not ${rawLen}`);
    return m.bytes.subarray(this.output, this.output + rawLen);
  }

  /** Give the context and buffers back to the module (a new connection starts a new stream). */
  free() {
    const fn = this.m.fn;
    if (this.dctx) fn.ZSTD_freeDCtx(this.dctx);
    for (const ptr of [this.io, this.input, this.output]) if (ptr) fn.free(ptr);
    this.dctx = this.io = this.input = this.output = 0;
  }
}

/** Refuse a stream whose window is larger than the protocol allows (RFC 8878 frame header). */
function checkWindow(body) {
  if (body.length < 6) return; // too short to say: libzstd reports what is wrong with it
  const magic = (body[0] | (body[1] << 8) | (body[2] << 16) | (body[3] << 24)) >>> 0;
  if (magic !== 0xfd2fb528) return; // not a zstd frame: libzstd says so
  const descriptor = body[4];
  if (descriptor & 0x20) return; // single segment: the window is the (known) content size
  const exponent = body[5] >> 3, mantissa = body[5] & 7;
  const base = 2 ** (10 + exponent);
  const window = base + (base / 8) * mantissa;
  if (window > MAX_WINDOW) {
    throw new Malformed(`zstd: a ${window} byte window, more than the protocol's ${MAX_WINDOW}`);
  }
}
