// The browser console's main thread (docs/console.md): the websocket to the relay's viewer
// endpoint, the canvas, keyboard and mouse, the toolbar and the status line.
//
// Loaded as a module by templates/console/console.html, which carries in data- attributes
// what this needs. Frame updates go to worker.js for decoding; the regions it posts back are
// put on the canvas here, and only then is the frame ACKed (docs/protocol.md, flow control).

import {
  T, CONFIRM, decodeMessage, encodeAck, encodeClipboard, encodeKey, encodePing, encodePong, encodePointer,
  encodePower, encodeSelectScreen, permissionSet, Malformed,
} from "./protocol.js";
import { CTRL_ALT_DEL, MODIFIER_KEYSYMS, TOOLBAR_KEYSYMS, keysymFor } from "./keys.js";
import { DEVICE_OFFLINE, ending } from "./closecodes.js";

const $ = (id) => document.getElementById(id);
const page = document.body.dataset;
const canvas = $("console-screen"); // the one monitor shown
const ctx = canvas.getContext("2d", { alpha: false });
const stage = $("console-stage");
const monitorsBox = $("console-monitors"); // "All monitors": a canvas per monitor
// SELECT_SCREEN's "every monitor" (docs/protocol.md); also state.screen while all are shown.
const ALL = 0xff;
// Monitor id -> {canvas, ctx}: where that monitor's frames are painted (nowhere when absent).
const surfaces = new Map();

const POWER_WORDS = { 1: "log out of", 2: "lock", 3: "restart", 4: "shut down" };
const POWER_STATUS = { 0: "", 1: "Refused: ", 2: "Failed: " };
const PING_EVERY_MS = 5000;
// Wheel units per remote wheel step, by WheelEvent.deltaMode (pixels, lines, pages).
const WHEEL_STEP = [100, 3, 1];

const state = {
  ws: null,
  worker: null,
  compress: true,
  closing: false,      // the technician pressed Close
  ended: false,
  lastError: null,     // the relay's last ERROR before it closed
  permissions: permissionSet(Number(page.permissions || 0)),
  monitors: [],
  screen: null,        // the monitor id shown, ALL for every one
  buttons: 0,
  pointer: null,       // {screen, x, y} in that monitor's pixels, last sent
  look: { visible: true, css: "default" }, // the remote pointer's shape, as a CSS cursor
  pendingMove: null,
  wheel: [0, 0],
  held: new Map(),     // event.code -> keysym pressed on the remote side
  mods: new Map(),     // toolbar label -> {keysym, state: off | once | locked}
  frames: 0,
  bytes: 0,
  pings: new Map(),    // nonce -> performance.now() when sent
  nonce: 1,
};

// ------------------------------------------------------------------------------ connection
function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${page.ws}${state.compress ? "" : "?compress=none"}`;
}

function send(buffer) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(buffer);
    return true;
  }
  return false;
}

function connect() {
  hideNotice();
  state.ended = false;
  state.closing = false;
  state.lastError = null;
  state.held.clear();
  if (state.worker) state.worker.terminate();
  // One worker per connection: its zstd stream and framebuffers belong to this connection.
  state.worker = new Worker(page.worker, { type: "module" });
  state.worker.onmessage = onWorker;
  state.worker.onerror = (event) => fail(`The decoder could not start: ${event.message || "worker error"}`);
  setState("connecting", "Connecting…");
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  ws.onopen = () => setState("connecting", "Connected to the relay, waiting for the device…");
  ws.onmessage = (event) => onMessage(ws, event.data);
  ws.onclose = (event) => onClose(ws, event);
  state.ws = ws;
}

function onMessage(ws, data) {
  if (ws !== state.ws || !(data instanceof ArrayBuffer)) return;
  state.bytes += data.byteLength;
  const type = new Uint8Array(data, 0, 1)[0];
  if (type === T.FRAME_UPDATE) {
    state.worker.postMessage({ op: "frame", data }, [data]);
    return;
  }
  let msg;
  try {
    msg = decodeMessage(data);
  } catch (err) {
    if (err instanceof Malformed) return fail(`The relay sent a malformed message: ${err.message}`, 4006);
    throw err;
  }
  handle(msg);
}

function handle(msg) {
  switch (msg.type) {
    case T.WELCOME: setState("connected", "Connected"); break;
    case T.PERMISSIONS: applyPermissions(msg.permissions); break;
    case T.DEVICE_STATE:
      if (msg.online) {
        hideNotice();
        setState("connected", "Connected");
      } else {
        setState("offline", "Device offline");
        showNotice(DEVICE_OFFLINE, "", { reconnect: true });
      }
      break;
    case T.SCREEN_INFO: screens(msg.monitors); break;
    case T.STATUS:
      $("console-user").textContent = `${msg.user ? "· " + msg.user : "· nobody logged in"}${msg.locked ? " (locked)" : ""}`;
      break;
    case T.CURSOR: cursor(msg); break;
    case T.CLIPBOARD: remoteClipboard(msg.text); break;
    case T.POWER_RESULT: note(`${POWER_STATUS[msg.status] || ""}${msg.message}`); break;
    case T.PING: send(encodePong(msg.nonce)); break;
    case T.PONG: {
      const sent = state.pings.get(msg.nonce);
      if (sent !== undefined) {
        state.pings.delete(msg.nonce);
        $("console-rtt").textContent = `${Math.round(performance.now() - sent)} ms`;
      }
      break;
    }
    case T.CONFIRM_STATE:
      if (msg.state === CONFIRM.WAITING) {
        setState("waiting", "Waiting for confirmation…");
        showNotice("Waiting for confirmation…", msg.text, { reconnect: false });
      } else if (msg.state === CONFIRM.ALLOWED) {
        hideNotice();
        setState("connected", "Connected");
        note(msg.text);
      } else {
        note(msg.text); // denied or no answer: the close that follows says so in full
      }
      break;
    case T.ERROR:
      state.lastError = msg;
      if (msg.code === 4010) note(msg.message); // an input refused for lack of its permission
      break;
    default: break;
  }
}

function onClose(ws, event) {
  if (ws !== state.ws) return;
  state.ws = null;
  state.ended = true;
  releaseEverything(false);
  const code = state.closing ? 1000 : event.code;
  const relaySentence = state.lastError && state.lastError.code === code ? state.lastError.message : event.reason;
  const why = ending(code, relaySentence);
  setState("closed", "Disconnected");
  showNotice(why.text, why.detail, why);
  if (state.closing) {
    window.close(); // only works for a tab a script opened; otherwise the notice stays
  }
}

/** Close the connection ourselves for a reason the technician should read. */
function fail(message, code = 4006) {
  state.lastError = { code, message };
  if (state.ws) state.ws.close(code, message.slice(0, 120));
}

// ------------------------------------------------------------------------------ painting
function onWorker(event) {
  const msg = event.data;
  if (msg.op === "paint") {
    const surface = surfaces.get(msg.screen);
    if (surface) {
      for (const r of msg.regions) surface.ctx.putImageData(new ImageData(r.pixels, r.w, r.h), r.x, r.y);
      state.frames++;
    }
    send(encodeAck(msg.seq)); // painted (or not shown at all): the relay may send the next
    // putImageData copied the pixels: the worker reuses large buffers (fresh memory is slow).
    const used = msg.regions.map((r) => r.pixels.buffer).filter((b) => b.byteLength >= 262144);
    if (used.length) state.worker.postMessage({ op: "recycle", buffers: used }, used);
  } else if (msg.op === "error") {
    if (msg.zstd && state.compress) {
      // The zstd decoder could not follow this connection's stream: carry on uncompressed.
      state.compress = false;
      const ws = state.ws;
      state.ws = null;
      if (ws) ws.close(4006, "zstd stream not decodable here");
      note("Reconnected without compression: this browser could not decode the compressed stream.");
      connect();
      return;
    }
    fail(`A frame update could not be decoded: ${msg.message}`);
  }
}

const monitorName = (m) => `Monitor ${state.monitors.indexOf(m) + 1}${m.primary ? " (primary)" : ""} ${m.width}×${m.height}`;

function screens(monitors) {
  state.monitors = monitors;
  state.worker.postMessage({ op: "screens", monitors });
  const select = $("console-monitor");
  const options = monitors.map((m) => new Option(monitorName(m), String(m.id)));
  if (monitors.length >= 2) options.push(new Option("All monitors", "all"));
  select.replaceChildren(...options);
  select.closest("[data-needs-monitors]").hidden = monitors.length < 2;
  if (state.screen === ALL && monitors.length >= 2) {
    select.value = "all";
    showAll();
    return;
  }
  let shown = monitors.find((m) => m.id === state.screen);
  if (!shown) {
    shown = monitors.find((m) => m.primary) || monitors[0];
    if (state.screen !== null) send(encodeSelectScreen(shown.id)); // ours went away
  }
  select.value = String(shown.id);
  show(shown);
}

function show(monitor) {
  const changed = state.screen !== monitor.id || canvas.width !== monitor.width || canvas.height !== monitor.height;
  state.screen = monitor.id;
  surfaces.clear();
  surfaces.set(monitor.id, { canvas, ctx });
  monitorsBox.replaceChildren();
  monitorsBox.hidden = true;
  canvas.hidden = false;
  if (changed) {
    canvas.width = monitor.width;
    canvas.height = monitor.height;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  layout();
}

/** Every monitor, a canvas each, left to right by their X positions. A canvas whose monitor
 * kept its size keeps its pixels (the relay sends key frames only of monitors that changed). */
function showAll() {
  const kept = state.screen === ALL ? new Map(surfaces) : new Map();
  state.screen = ALL;
  surfaces.clear();
  const ordered = [...state.monitors].sort((a, b) => a.x - b.x || a.y - b.y);
  for (const m of ordered) {
    let surface = kept.get(m.id);
    if (!surface || surface.canvas.width !== m.width || surface.canvas.height !== m.height) {
      const el = document.createElement("canvas");
      el.className = "console-screen";
      el.tabIndex = 0;
      el.width = m.width;
      el.height = m.height;
      el.dataset.screen = String(m.id);
      surface = { canvas: el, ctx: el.getContext("2d", { alpha: false }) };
      surface.ctx.fillStyle = "#000";
      surface.ctx.fillRect(0, 0, m.width, m.height);
      listenForPointer(el);
      applyLook(el);
    }
    surface.canvas.setAttribute("aria-label", `${monitorName(m)} of ${$("console-hostname").textContent}`);
    surfaces.set(m.id, surface);
  }
  monitorsBox.replaceChildren(...[...surfaces.values()].map((surface) => surface.canvas));
  canvas.hidden = true;
  monitorsBox.hidden = false;
  layout();
}

/** The canvases on show: the single one, or one per monitor. */
function shownCanvases() {
  return state.screen === ALL ? [...surfaces.values()].map((surface) => surface.canvas) : [canvas];
}

const isScreen = (el) => el === canvas || (el instanceof HTMLCanvasElement && el.parentElement === monitorsBox);

/** Keyboard focus to the screen: the canvas last used, else the first one shown. */
function focusScreen() {
  const shown = shownCanvases();
  const target = shown.includes(document.activeElement) ? document.activeElement : shown[0];
  if (target) target.focus({ preventScroll: true });
}

function layout() {
  const shown = shownCanvases();
  const gap = shown.length > 1 ? parseFloat(getComputedStyle(monitorsBox).columnGap) || 0 : 0;
  const width = shown.reduce((sum, el) => sum + el.width, 0);
  const height = Math.max(...shown.map((el) => el.height));
  let scale = 1;
  if (stage.classList.contains("fit")) {
    const box = stage.getBoundingClientRect();
    scale = Math.min((box.width - gap * (shown.length - 1)) / width, box.height / height);
    if (!Number.isFinite(scale) || scale <= 0) scale = 1;
  }
  for (const el of shown) {
    el.style.width = `${Math.floor(el.width * scale)}px`;
    el.style.height = `${Math.floor(el.height * scale)}px`;
  }
}

// The remote pointer's shape is the CSS cursor of every canvas: it shows on the canvas the
// local pointer is over, the monitor the POINTER messages go to.
function cursor(msg) {
  state.look.visible = msg.visible;
  if (msg.shape) {
    const { width, height, hotX, hotY, pixels } = msg.shape;
    if (width > 128 || height > 128) {
      state.look.css = "default"; // browsers refuse larger cursor images
    } else {
      const image = document.createElement("canvas");
      image.width = width;
      image.height = height;
      image.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(pixels), width, height), 0, 0);
      state.look.css = `url(${image.toDataURL("image/png")}) ${Math.min(hotX, width - 1)} ${Math.min(hotY, height - 1)}, default`;
    }
  }
  applyLook(canvas);
  for (const surface of surfaces.values()) applyLook(surface.canvas);
}

function applyLook(el) {
  el.style.cursor = state.look.visible ? state.look.css : "none";
}

// ------------------------------------------------------------------------------ permissions
function applyPermissions(mask) {
  state.permissions = permissionSet(mask);
  for (const el of document.querySelectorAll("[data-needs]")) {
    el.hidden = !state.permissions.has(el.dataset.needs);
  }
  if (!state.permissions.has("clipboard")) $("console-clipboard").hidden = true;
  if (!may("keyboard_mouse")) releaseEverything(true);
}

const may = (permission) => state.permissions.has(permission);

// ------------------------------------------------------------------------------ mouse
const BROWSER_TO_REMOTE_BUTTONS = [[1, 1], [2, 4], [4, 2], [8, 8], [16, 16]]; // left, right, middle, back, forward

function remoteButtons(browserButtons) {
  let mask = 0;
  for (const [from, to] of BROWSER_TO_REMOTE_BUTTONS) if (browserButtons & from) mask |= to;
  return mask;
}

/** Where ``event`` is on the canvas ``el``: its monitor and the position in its pixels (the
 * canvas may be scaled). */
function position(event, el) {
  const box = el.getBoundingClientRect();
  const x = ((event.clientX - box.left) * el.width) / box.width;
  const y = ((event.clientY - box.top) * el.height) / box.height;
  const screen = el === canvas ? state.screen : Number(el.dataset.screen);
  return { screen, x: Math.max(0, Math.min(el.width - 1, Math.floor(x))), y: Math.max(0, Math.min(el.height - 1, Math.floor(y))) };
}

function sendPointer(pos, wheelX = 0, wheelY = 0) {
  if (!may("keyboard_mouse") || pos.screen === null || pos.screen === ALL) return;
  state.pointer = pos;
  send(encodePointer(pos.screen, pos.x, pos.y, state.buttons, wheelX, wheelY));
}

function flushMove() {
  const pos = state.pendingMove;
  state.pendingMove = null;
  const last = state.pointer;
  if (pos && (!last || pos.screen !== last.screen || pos.x !== last.x || pos.y !== last.y)) sendPointer(pos);
}

/** Mouse and wheel on a screen canvas become POINTER messages for its monitor. */
function listenForPointer(el) {
  el.addEventListener("pointermove", (event) => {
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    const last = events.length ? events[events.length - 1] : event;
    if (state.pendingMove === null) requestAnimationFrame(flushMove); // one move per frame
    state.pendingMove = position(last, el);
  });

  function buttonsChanged(event) {
    flushMove();
    state.buttons = remoteButtons(event.buttons);
    sendPointer(position(event, el));
  }

  el.addEventListener("pointerdown", (event) => {
    el.focus({ preventScroll: true });
    el.setPointerCapture(event.pointerId); // a drag keeps going outside the canvas
    event.preventDefault();
    buttonsChanged(event);
  });
  el.addEventListener("pointerup", (event) => { event.preventDefault(); buttonsChanged(event); });
  el.addEventListener("contextmenu", (event) => event.preventDefault());
  el.addEventListener("wheel", (event) => {
    event.preventDefault();
    const unit = WHEEL_STEP[event.deltaMode] || 1;
    state.wheel[0] += event.deltaX;
    state.wheel[1] += event.deltaY;
    const steps = state.wheel.map((value) => Math.trunc(value / unit));
    if (!steps[0] && !steps[1]) return;
    state.wheel = state.wheel.map((value, i) => value - steps[i] * unit);
    flushMove();
    sendPointer(position(event, el), steps[0], steps[1]);
  }, { passive: false });
}

listenForPointer(canvas);

// ------------------------------------------------------------------------------ keyboard
function forKeyboard(event) {
  const target = event.target;
  return (isScreen(target) || target === document.body) && may("keyboard_mouse") && state.ws !== null;
}

function key(down, keysym) {
  send(encodeKey(down, keysym));
}

function toolbarHolds(keysym) {
  for (const mod of state.mods.values()) if (mod.state !== "off" && mod.keysym === keysym) return true;
  return false;
}

document.addEventListener("keydown", (event) => {
  if (!forKeyboard(event)) return;
  const keysym = keysymFor(event);
  if (keysym === null) return; // dead keys and IME: the composed character follows
  event.preventDefault();
  if (toolbarHolds(keysym)) return;
  state.held.set(event.code || event.key, keysym);
  key(true, keysym);
});

document.addEventListener("keyup", (event) => {
  if (!forKeyboard(event)) return;
  const id = event.code || event.key;
  const keysym = state.held.get(id);
  if (keysym === undefined) return;
  event.preventDefault();
  state.held.delete(id);
  key(false, keysym);
  if (!MODIFIER_KEYSYMS.has(keysym)) releaseOnceModifiers();
});

/** Release every key and button this page holds on the remote side (focus lost, closed). */
function releaseEverything(toolbarToo) {
  for (const keysym of state.held.values()) key(false, keysym);
  state.held.clear();
  if (state.buttons && state.pointer) {
    state.buttons = 0;
    sendPointer(state.pointer);
  }
  state.buttons = 0;
  if (toolbarToo) for (const label of state.mods.keys()) setModifier(label, "off");
}

window.addEventListener("blur", () => releaseEverything(false));
document.addEventListener("visibilitychange", () => { if (document.hidden) releaseEverything(false); });

// ------------------------------------------------------------------------------ toolbar
function setModifier(label, next) {
  const mod = state.mods.get(label);
  if (!mod || mod.state === next) return;
  if (mod.state === "off") key(true, mod.keysym);
  else if (next === "off") key(false, mod.keysym);
  mod.state = next;
  mod.button.dataset.state = next;
  mod.button.setAttribute("aria-pressed", next === "off" ? "false" : "true");
  mod.button.title = `${label}: ${{ off: "off", once: "on for the next key", locked: "locked on" }[next]}`;
}

function releaseOnceModifiers() {
  for (const [label, mod] of state.mods) if (mod.state === "once") setModifier(label, "off");
}

for (const button of document.querySelectorAll(".console-mod")) {
  const label = button.dataset.mod;
  state.mods.set(label, { keysym: TOOLBAR_KEYSYMS[label], state: "off", button });
  button.dataset.state = "off";
  button.addEventListener("click", (event) => {
    const mod = state.mods.get(label);
    // A double click is two clicks, the second with detail 2: off -> once -> locked.
    if (event.detail >= 2) setModifier(label, "locked");
    else setModifier(label, mod.state === "off" ? "once" : "off");
    focusScreen();
  });
}

$("console-cad").addEventListener("click", () => {
  for (const keysym of CTRL_ALT_DEL) key(true, keysym);
  for (const keysym of [...CTRL_ALT_DEL].reverse()) key(false, keysym);
  focusScreen();
});

$("console-monitor").addEventListener("change", (event) => {
  const all = event.target.value === "all";
  const monitor = state.monitors.find((m) => String(m.id) === event.target.value);
  if (!all && !monitor) return;
  releaseEverything(false);
  send(encodeSelectScreen(all ? ALL : monitor.id));
  state.screen = null; // show()/showAll() clear the canvases for the key frames that follow
  if (all) showAll();
  else show(monitor);
  focusScreen();
});

$("console-scale").addEventListener("click", (event) => {
  const fit = stage.classList.toggle("fit");
  event.currentTarget.textContent = fit ? "Fit" : "Actual size";
  event.currentTarget.setAttribute("aria-pressed", fit ? "true" : "false");
  layout();
});
window.addEventListener("resize", layout);
document.addEventListener("fullscreenchange", layout);

$("console-fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch((err) => note(`Full screen refused: ${err.message}`));
});

function setToolbar(visible) {
  document.body.classList.toggle("toolbar-minimised", !visible);
  $("console-toolbar").hidden = !visible;
  $("console-restore").hidden = visible;
  $("console-minimise").setAttribute("aria-expanded", String(visible));
  layout();
}
$("console-minimise").addEventListener("click", () => setToolbar(false));
$("console-restore").addEventListener("click", () => setToolbar(true));

$("console-close").addEventListener("click", () => {
  state.closing = true;
  releaseEverything(true);
  if (state.ws) state.ws.close(1000, "closed by the technician");
  else window.close();
});

// Power: a confirmation, then POWER. Shown only with remote_management (applyPermissions).
let powerAction = 0;
for (const button of document.querySelectorAll("[data-power]")) {
  button.addEventListener("click", () => {
    powerAction = Number(button.dataset.power);
    $("console-power").open = false;
    $("console-confirm-text").textContent =
      `Really ${POWER_WORDS[powerAction]} ${$("console-hostname").textContent}? Whoever uses it now is affected.`;
    $("console-confirm").showModal();
  });
}
$("console-confirm").addEventListener("close", () => {
  if ($("console-confirm").returnValue === "ok" && powerAction && may("remote_management")) {
    send(encodePower(powerAction));
    note(`Asked the device to ${POWER_WORDS[powerAction]} the session…`);
  }
  powerAction = 0;
  focusScreen();
});

// ------------------------------------------------------------------------------ clipboard
const clipText = $("console-clipboard-text");

function clipNote(text) {
  $("console-clipboard-note").textContent = text;
}

$("console-clipboard-toggle").addEventListener("click", (event) => {
  const panel = $("console-clipboard");
  panel.hidden = !panel.hidden;
  event.currentTarget.setAttribute("aria-expanded", String(!panel.hidden));
  layout();
});

function sendClipboard(text) {
  if (!may("clipboard")) return;
  if (send(encodeClipboard(text))) clipNote(`Sent ${[...text].length} characters to the remote clipboard.`);
}

$("console-clipboard-send").addEventListener("click", () => sendClipboard(clipText.value));
$("console-clipboard-paste").addEventListener("click", async () => {
  try {
    clipText.value = await navigator.clipboard.readText();
    sendClipboard(clipText.value);
  } catch (err) {
    clipNote("The browser did not let this page read your clipboard: paste into the box (Ctrl+V), then Send.");
  }
});
$("console-clipboard-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(clipText.value);
    clipNote("Copied to your clipboard.");
  } catch (err) {
    clipText.select();
    clipNote("Select the text and copy it with Ctrl+C: the browser did not allow writing it.");
  }
});

async function remoteClipboard(text) {
  clipText.value = text;
  clipNote(`The remote clipboard changed (${[...text].length} characters).`);
  if (document.hasFocus() && navigator.clipboard) {
    try {
      await navigator.clipboard.writeText(text);
      clipNote(`The remote clipboard changed (${[...text].length} characters): copied to your clipboard.`);
    } catch (err) {
      // Not allowed here (no focus, or permission): the text waits in the box.
    }
  }
}

// ------------------------------------------------------------------------------ status line
function setState(name, text) {
  const el = $("console-state");
  el.dataset.state = name;
  el.textContent = text;
}

function note(text) {
  $("console-message").textContent = text;
}

function showNotice(text, detail, { reconnect = false, signIn = false } = {}) {
  $("console-notice-text").textContent = text;
  $("console-notice-detail").textContent = detail || "";
  $("console-reconnect").hidden = !reconnect;
  $("console-signin").hidden = !signIn;
  $("console-notice").hidden = false;
}

function hideNotice() {
  $("console-notice").hidden = true;
}

$("console-reconnect").addEventListener("click", () => {
  const ws = state.ws; // still open while the device is offline: a fresh connection replaces it
  state.ws = null;
  if (ws) ws.close(1000, "reconnecting");
  connect();
});

let lastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  const seconds = (now - lastTick) / 1000;
  lastTick = now;
  $("console-fps").textContent = `${Math.round(state.frames / seconds)} fps`;
  $("console-rate").textContent = `${Math.round((state.bytes * 8) / 1000 / seconds)} kbit/s`;
  state.frames = 0;
  state.bytes = 0;
}, 1000);

setInterval(() => {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
  const nonce = state.nonce++;
  state.pings.set(BigInt(nonce), performance.now());
  if (state.pings.size > 20) state.pings.delete(state.pings.keys().next().value);
  send(encodePing(nonce));
}, PING_EVERY_MS);

applyPermissions(Number(page.permissions || 0));
connect();
focusScreen();
