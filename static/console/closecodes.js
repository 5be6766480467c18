// Why a console session ended, in words: one sentence per close code of docs/protocol.md's
// "Close codes" table (keep the two in step), and whether offering Reconnect makes sense.

export const ENDINGS = Object.freeze({
  1000: { text: "You closed the session.", reconnect: true },
  1001: { text: "The relay is restarting. Reconnect in a moment.", reconnect: true },
  1002: { text: "The connection broke (a websocket protocol error).", reconnect: true },
  1003: { text: "The relay refused a message this page sent.", reconnect: true },
  1006: { text: "The connection to the relay was lost.", reconnect: true },
  1008: { text: "The relay ended the session: this page fell too far behind or came from another site.", reconnect: true },
  1009: { text: "The relay refused a message that was too big.", reconnect: true },
  1011: { text: "The relay had an internal error.", reconnect: true },
  4001: { text: "Your sign-in has ended. Sign in again to continue.", reconnect: false, signIn: true },
  4004: { text: "This device was revoked or removed: it can no longer be controlled.", reconnect: false },
  4005: { text: "The relay did not understand a message from this page (unknown type).", reconnect: true },
  4006: { text: "A message was malformed, so the connection was closed.", reconnect: true },
  4007: { text: "A message came at the wrong moment, so the connection was closed.", reconnect: true },
  4008: { text: "This OnDemand session is already open in another console.", reconnect: false },
  4009: { text: "You may not view this device (no Remote session and View screen permission now).", reconnect: false },
  4010: { text: "Your permission to view this device was withdrawn.", reconnect: true },
  4011: { text: "The connection was idle for too long.", reconnect: true },
  4012: { text: "Access to this device was not confirmed.", reconnect: true },
  4013: { text: "The person at the computer ended the session.", reconnect: false },
  4014: { text: "The session was rejected: its key no longer works.", reconnect: false },
  4015: { text: "The session expired: it waited more than an hour, or its key was not used within 24 hours.", reconnect: false },
  4016: { text: "The visitor's computer disconnected: the session is over.", reconnect: false },
});

/** {text, reconnect, signIn} for a close code (and the relay's own sentence, when it sent one). */
export function ending(code, relaySentence = "") {
  const known = ENDINGS[code];
  if (known) return { ...known, detail: relaySentence && relaySentence !== known.text ? relaySentence : "" };
  return { text: relaySentence || `The session ended (code ${code}).`, reconnect: true, detail: "" };
}

export const DEVICE_OFFLINE = "The device went offline (its agent disconnected). The screen comes back by itself when it reconnects.";
