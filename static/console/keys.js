// Browser keyboard events -> X11 keysyms for KEY messages (docs/console.md, "Keyboard").
//
// The choice, in short:
// * Keys that do not produce a character (modifiers, Enter, arrows, F-keys, the keypad's
//   operators ...) are taken from `event.code`, the PHYSICAL key, so Shift_L and Shift_R,
//   Control, Alt and Super arrive as themselves whatever the local layout.
// * Keys that produce a character are sent as the keysym of that character (`event.key`),
//   the character the technician's own layout gives: a French or German technician types
//   what their keycaps say, and the agent finds the key for that keysym on the remote
//   keyboard (adding Shift itself when needed). With Ctrl or Alt held, Chrome still reports
//   the character (Ctrl+C gives "c"), so shortcuts work on any layout.
// * Dead keys are composed locally: the browser reports "Dead" and then the composed
//   character ("é") on the next key; we send nothing for the dead key and the composed
//   character's keysym afterwards. IME composition (key "Process", isComposing) is ignored.
// * A key is released with the keysym it was pressed with (remembered by `event.code`), even
//   when a modifier changed what `event.key` says in between.

// event.code -> keysym for keys that do not type a character.
export const CODE_KEYSYMS = Object.freeze({
  Backspace: 0xff08, Tab: 0xff09, Enter: 0xff0d, Escape: 0xff1b, Delete: 0xffff,
  Insert: 0xff63, Home: 0xff50, End: 0xff57, PageUp: 0xff55, PageDown: 0xff56,
  ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54,
  ShiftLeft: 0xffe1, ShiftRight: 0xffe2, ControlLeft: 0xffe3, ControlRight: 0xffe4,
  AltLeft: 0xffe9, AltRight: 0xffea, MetaLeft: 0xffeb, MetaRight: 0xffec, OSLeft: 0xffeb,
  OSRight: 0xffec, CapsLock: 0xffe5, NumLock: 0xff7f, ScrollLock: 0xff14, Pause: 0xff13,
  PrintScreen: 0xff61, ContextMenu: 0xff67,
  NumpadEnter: 0xff8d, NumpadAdd: 0xffab, NumpadSubtract: 0xffad, NumpadMultiply: 0xffaa,
  NumpadDivide: 0xffaf,
});

// Keypad digits and the decimal key depend on NumLock: the character when it types one,
// otherwise the navigation keysym.
const KEYPAD = Object.freeze({
  Numpad0: [0xffb0, 0xff9e], Numpad1: [0xffb1, 0xff9c], Numpad2: [0xffb2, 0xff99],
  Numpad3: [0xffb3, 0xff9b], Numpad4: [0xffb4, 0xff96], Numpad5: [0xffb5, 0xff9d],
  Numpad6: [0xffb6, 0xff98], Numpad7: [0xffb7, 0xff95], Numpad8: [0xffb8, 0xff97],
  Numpad9: [0xffb9, 0xff9a], NumpadDecimal: [0xffae, 0xff9f],
});

// event.key names for keys whose code the browser could not tell (virtual keyboards).
const KEY_KEYSYMS = Object.freeze({
  Backspace: 0xff08, Tab: 0xff09, Enter: 0xff0d, Escape: 0xff1b, Delete: 0xffff,
  Home: 0xff50, End: 0xff57, PageUp: 0xff55, PageDown: 0xff56, ArrowLeft: 0xff51,
  ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54, Insert: 0xff63,
  Shift: 0xffe1, Control: 0xffe3, Alt: 0xffe9, Meta: 0xffeb, AltGraph: 0xfe03,
  CapsLock: 0xffe5,
});

export const MODIFIER_KEYSYMS = new Set([0xffe1, 0xffe2, 0xffe3, 0xffe4, 0xffe9, 0xffea,
  0xffeb, 0xffec, 0xffe7, 0xffe8, 0xfe03]);

/** The keysym of one character: Latin-1 as itself, anything else as 0x01000000 + code point. */
export function charKeysym(ch) {
  const cp = ch.codePointAt(0);
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  if (cp === 0x0a || cp === 0x0d) return 0xff0d;
  if (cp === 0x09) return 0xff09;
  return 0x01000000 + cp;
}

function isOneCharacter(key) {
  return typeof key === "string" && key.length > 0 && [...key].length === 1;
}

/**
 * The keysym for a keydown (null: send nothing). `event` needs `code`, `key` and optionally
 * `isComposing` / `keyCode` (229 while an IME composes).
 */
export function keysymFor(event) {
  if (event.isComposing || event.keyCode === 229 || event.key === "Process" || event.key === "Dead") return null;
  if (event.code === "AltRight" && event.key === "AltGraph") return 0xfe03; // ISO_Level3_Shift
  if (event.code in CODE_KEYSYMS) return CODE_KEYSYMS[event.code];
  if (event.code in KEYPAD) {
    const [withNumLock, without] = KEYPAD[event.code];
    return isOneCharacter(event.key) ? withNumLock : without;
  }
  if (isOneCharacter(event.key)) return charKeysym(event.key);
  if (/^F([1-9]|1[0-9]|2[0-4])$/.test(event.key)) return 0xffbe + Number(event.key.slice(1)) - 1;
  if (/^F([1-9]|1[0-9]|2[0-4])$/.test(event.code)) return 0xffbe + Number(event.code.slice(1)) - 1;
  if (event.key in KEY_KEYSYMS) return KEY_KEYSYMS[event.key];
  return null;
}

/** Keysyms for the toolbar's modifier buttons, per remote OS family (console.html). */
export const TOOLBAR_KEYSYMS = Object.freeze({
  Super: 0xffeb, Win: 0xffeb, Cmd: 0xffeb, Ctrl: 0xffe3, Control: 0xffe3, Alt: 0xffe9,
  Option: 0xffe9, Shift: 0xffe1,
});

export const CTRL_ALT_DEL = Object.freeze([0xffe3, 0xffe9, 0xffff]);
