// The console's side of docs/protocol.md: message types, the small messages a viewer sends
// and receives, and the rectangle decoder the worker paints with. agents/common/protocol.py is
// the reference; tests/unit/test_console_protocol_js.py runs this module under node against
// bytes the Python encoder made, so both read the same bytes the same way.
//
// Imported by console.js (main thread) and worker.js (the decoding worker).

export const T = Object.freeze({
  HELLO: 0x01, STATUS: 0x02, SCREEN_INFO: 0x03, FRAME_UPDATE: 0x04, ACK: 0x05, CURSOR: 0x06,
  POINTER: 0x07, KEY: 0x08, CLIPBOARD: 0x09, POWER: 0x0a, POWER_RESULT: 0x0b, PING: 0x0c,
  PONG: 0x0d, SESSION: 0x0e, REQUEST_KEYFRAME: 0x0f, SELECT_SCREEN: 0x10, WELCOME: 0x11,
  PERMISSIONS: 0x12, DEVICE_STATE: 0x13, CONFIRM_STATE: 0x16, ERROR: 0x7f,
});

/** CONFIRM_STATE: where a Confirm-access request stands, and who could answer it. */
export const CONFIRM = Object.freeze({ WAITING: 1, ALLOWED: 2, DENIED: 3, NO_ANSWER: 4 });
export const CONFIRM_VIA = Object.freeze({ NONE: 0, HOST: 1, EMAIL: 2 });

export const FLAG_ZSTD = 1;
export const FLAG_KEYFRAME = 2;
export const ENC = Object.freeze({ RAW: 0, FILL: 1, PALETTE: 2, COPY: 3 });
export const CLIPBOARD_MAX = 60000;

// Permission bits: the order of DEVICE_PERMISSIONS in app/models/roles.py.
export const PERMISSION_BITS = Object.freeze([
  "remote_session", "view_screen", "keyboard_mouse", "lock_input", "blank_screen", "clipboard",
  "execute_command", "file_transfer", "chat", "remote_management", "tunnel",
]);

export function permissionSet(mask) {
  return new Set(PERMISSION_BITS.filter((_, bit) => mask & (1 << bit)));
}

export class Malformed extends Error {}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** A cursor over one message; every read checks the bounds (a short message is malformed). */
class Reader {
  constructor(buffer, offset = 0) {
    this.view = new DataView(buffer instanceof ArrayBuffer ? buffer : buffer.buffer,
      buffer instanceof ArrayBuffer ? 0 : buffer.byteOffset,
      buffer.byteLength);
    this.pos = offset;
  }
  need(n) {
    if (this.pos + n > this.view.byteLength) throw new Malformed("the message is too short");
  }
  u8() { this.need(1); return this.view.getUint8(this.pos++); }
  u16() { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16() { this.need(2); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32() { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  u64() { this.need(8); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  bytes(n) {
    this.need(n);
    const out = new Uint8Array(this.view.buffer, this.view.byteOffset + this.pos, n);
    this.pos += n;
    return out;
  }
  text(n) {
    try { return utf8.decode(this.bytes(n)); } catch (err) {
      if (err instanceof Malformed) throw err;
      throw new Malformed("a string is not UTF-8");
    }
  }
  str8() { return this.text(this.u8()); }
  str16() { return this.text(this.u16()); }
  end() {
    if (this.pos !== this.view.byteLength) throw new Malformed("bytes left over after the last field");
  }
}

/**
 * Decode a relay -> viewer message other than FRAME_UPDATE (whose body goes to the worker):
 * an object with `type` and its fields. Unknown types and malformed bodies throw Malformed.
 */
export function decodeMessage(buffer) {
  const r = new Reader(buffer);
  const type = r.u8();
  let msg;
  switch (type) {
    case T.WELCOME: msg = { version: r.u16(), viewer: r.u32(), device: r.u32() }; break;
    case T.PERMISSIONS: msg = { permissions: r.u32() }; break;
    case T.DEVICE_STATE: msg = { online: r.u8() === 1 }; break;
    case T.STATUS: msg = { locked: (r.u8() & 1) === 1, user: r.str8() }; break;
    case T.SCREEN_INFO: {
      const count = r.u8();
      const monitors = [];
      for (let i = 0; i < count; i++) {
        const id = r.u8(), flags = r.u8();
        monitors.push({ id, primary: (flags & 1) === 1, x: r.i32(), y: r.i32(), width: r.u16(), height: r.u16() });
      }
      if (count < 1 || count > 16) throw new Malformed("1 to 16 monitors");
      msg = { monitors };
      break;
    }
    case T.CURSOR: {
      const flags = r.u8();
      msg = { visible: (flags & 1) === 1, x: r.i32(), y: r.i32(), shape: null };
      if (flags & 2) {
        const hotX = r.u16(), hotY = r.u16(), width = r.u16(), height = r.u16();
        if (width < 1 || height < 1 || width > 256 || height > 256) throw new Malformed("cursor size");
        msg.shape = { hotX, hotY, width, height, pixels: r.bytes(width * height * 4) };
      }
      break;
    }
    case T.CLIPBOARD: msg = { text: r.text(r.u32()) }; break;
    case T.POWER_RESULT: msg = { action: r.u8(), status: r.u8(), message: r.str16() }; break;
    case T.PING: case T.PONG: msg = { nonce: r.u64() }; break;
    case T.ERROR: msg = { code: r.u16(), message: r.str16() }; break;
    case T.CONFIRM_STATE: {
      const outcome = r.u8(), via = r.u8();
      if (outcome < CONFIRM.WAITING || outcome > CONFIRM.NO_ANSWER) throw new Malformed("confirmation state");
      if (via > CONFIRM_VIA.EMAIL) throw new Malformed("confirmation channel");
      msg = { state: outcome, via, text: r.str16() };
      break;
    }
    default: throw new Malformed(`unexpected message type 0x${type.toString(16)}`);
  }
  r.end();
  msg.type = type;
  return msg;
}

/** The fixed header of a FRAME_UPDATE: flags, screen, seq, raw_len (or -1) and the body. */
export function frameHeader(buffer) {
  const r = new Reader(buffer);
  if (r.u8() !== T.FRAME_UPDATE) throw new Malformed("not a frame update");
  const flags = r.u8(), screen = r.u8(), seq = r.u32();
  if (flags & ~(FLAG_ZSTD | FLAG_KEYFRAME)) throw new Malformed("unknown frame flag");
  const rawLen = flags & FLAG_ZSTD ? r.u32() : -1;
  if (rawLen > 64 * 1024 * 1024) throw new Malformed("raw_len over 64 MiB");
  const body = new Uint8Array(r.view.buffer, r.view.byteOffset + r.pos, r.view.byteLength - r.pos);
  return { flags, screen, seq, rawLen, body };
}

// ------------------------------------------------------------------------------ rectangles
/**
 * Apply a FRAME_UPDATE's (uncompressed) rectangle bytes to an RGBA framebuffer of width x
 * height, in order, like apply_rects in agents/common/protocol.py. Returns the rectangles
 * touched as [x, y, w, h] arrays. Throws Malformed for anything docs/protocol.md calls so.
 */
export function applyRects(fb, width, height, bytes) {
  const r = new Reader(bytes);
  const count = r.u16();
  const stride = width * 4;
  const fb32 = new Uint32Array(fb.buffer, fb.byteOffset, fb.byteLength >> 2);
  // The framebuffer and the update in one buffer (the worker's WebAssembly memory): a raw
  // row is one copyWithin, about twice as fast as a set() from a subarray of another buffer.
  const shared = fb.buffer === bytes.buffer ? new Uint8Array(fb.buffer) : null;
  const touched = [];
  for (let i = 0; i < count; i++) {
    const x = r.u16(), y = r.u16(), w = r.u16(), h = r.u16(), enc = r.u8();
    if (w < 1 || h < 1 || x + w > width || y + h > height) throw new Malformed("a rectangle leaves the screen");
    const rowLen = w * 4;
    if (enc === ENC.RAW) {
      const src = r.bytes(w * h * 4);
      if (shared) {
        let from = src.byteOffset, to = fb.byteOffset + y * stride + x * 4;
        for (let j = 0; j < h; j++, from += rowLen, to += stride) shared.copyWithin(to, from, from + rowLen);
      } else {
        for (let j = 0; j < h; j++) fb.set(src.subarray(j * rowLen, (j + 1) * rowLen), (y + j) * stride + x * 4);
      }
    } else if (enc === ENC.FILL) {
      const c = r.bytes(4);
      const colour = new Uint32Array(new Uint8Array([c[0], c[1], c[2], c[3]]).buffer)[0];
      for (let j = 0; j < h; j++) {
        const start = (y + j) * width + x;
        fb32.fill(colour, start, start + w);
      }
    } else if (enc === ENC.PALETTE) {
      paletteRect(r, fb32, width, x, y, w, h);
    } else if (enc === ENC.COPY) {
      const sx = r.u16(), sy = r.u16();
      if (sx + w > width || sy + h > height) throw new Malformed("a copy source leaves the screen");
      // Rows in the order that never reads a row already overwritten; copyWithin is a memmove.
      const down = y > sy;
      for (let k = 0; k < h; k++) {
        const j = down ? h - 1 - k : k;
        const from = (sy + j) * stride + sx * 4;
        fb.copyWithin((y + j) * stride + x * 4, from, from + rowLen);
      }
    } else {
      throw new Malformed(`unknown rectangle encoding ${enc}`);
    }
    touched.push([x, y, w, h]);
  }
  r.end();
  return touched;
}

function paletteRect(r, fb32, width, x, y, w, h) {
  const colours = r.u8() + 1;
  const raw = r.bytes(colours * 4);
  const palette = new Uint32Array(colours);
  new Uint8Array(palette.buffer).set(raw);
  const bits = colours <= 2 ? 1 : colours <= 4 ? 2 : colours <= 16 ? 4 : 8;
  const indices = r.bytes(Math.ceil((w * h * bits) / 8));
  // The indices run on across rows, most significant bits first.
  const mask = (1 << bits) - 1;
  let next = 0, byte = 0, left = 0, worst = 0;
  for (let j = 0; j < h; j++) {
    let at = (y + j) * width + x;
    const end = at + w;
    while (at < end) {
      if (left === 0) { byte = indices[next++]; left = 8; }
      left -= bits;
      const index = (byte >> left) & mask;
      if (index > worst) worst = index;
      fb32[at++] = palette[index];
    }
  }
  if (worst >= colours) throw new Malformed("a palette index beyond the palette");
}

// -------------------------------------------------------------------------- viewer -> relay
function message(type, size, fill) {
  const buf = new ArrayBuffer(1 + size);
  const view = new DataView(buf);
  view.setUint8(0, type);
  fill(view);
  return buf;
}

export const encodeAck = (seq) => message(T.ACK, 4, (v) => v.setUint32(1, seq, true));
export const encodeKey = (down, keysym) =>
  message(T.KEY, 5, (v) => { v.setUint8(1, down ? 1 : 0); v.setUint32(2, keysym >>> 0, true); });
export const encodePower = (action) => message(T.POWER, 1, (v) => v.setUint8(1, action));
export const encodeSelectScreen = (screen) => message(T.SELECT_SCREEN, 1, (v) => v.setUint8(1, screen));
export const encodePing = (nonce) => message(T.PING, 8, (v) => v.setBigUint64(1, BigInt(nonce), true));
export const encodePong = (nonce) => message(T.PONG, 8, (v) => v.setBigUint64(1, BigInt(nonce), true));

const clampU16 = (n) => Math.max(0, Math.min(65535, Math.round(n)));
const clampI16 = (n) => Math.max(-32768, Math.min(32767, Math.trunc(n)));

export function encodePointer(screen, x, y, buttons, wheelX = 0, wheelY = 0) {
  return message(T.POINTER, 10, (v) => {
    v.setUint8(1, screen);
    v.setUint16(2, clampU16(x), true);
    v.setUint16(4, clampU16(y), true);
    v.setUint8(6, buttons & 0x1f);
    v.setInt16(7, clampI16(wheelX), true);
    v.setInt16(9, clampI16(wheelY), true);
  });
}

/** CLIPBOARD with ``text`` cut to the protocol's 60 000 bytes on a character boundary. */
export function encodeClipboard(text) {
  let bytes = utf8Encoder.encode(text);
  if (bytes.length > CLIPBOARD_MAX) {
    let end = CLIPBOARD_MAX;
    while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--; // not inside a UTF-8 sequence
    bytes = bytes.subarray(0, end);
  }
  const buf = new Uint8Array(5 + bytes.length);
  buf[0] = T.CLIPBOARD;
  new DataView(buf.buffer).setUint32(1, bytes.length, true);
  buf.set(bytes, 5);
  return buf.buffer;
}
