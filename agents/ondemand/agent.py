"""The OnDemand agent's connection: one key, one connection, nothing sent before consent.

``agents.ondemand.windows`` (the Tk program) builds an :class:`OnDemandAgent` once it has a key
and runs :meth:`OnDemandAgent.run` on a worker thread; what happens is told to the windows as
events (:class:`Waiting`, :class:`ConsentAsked`, ...) through the ``notify`` callback, and the
windows answer with :meth:`OnDemandAgent.answer` and :meth:`OnDemandAgent.disconnect`.

It is the Host agent's :class:`agents.host.agent.Connection` (capture, frame encoding, flow
control, input, clipboard, the receive loop) with the differences of docs/protocol.md,
*OnDemand sessions*:

* ``/relay/ondemand`` with ``Authorization: Bearer <9-digit key>``; only ``HELLO`` at first:
  no ``SCREEN_INFO``, frame, cursor, status or clipboard until the person at the computer
  allowed something and the relay said ``SESSION``.
* ``CONSENT_REQUEST`` is asked in the consent window; the answer (``CONSENT``, the bits the
  person ticked, 0 for declined or no answer within the request's timeout) decides what the
  session may do: the screen (``SCREEN_INFO`` and frames) only with "View screen", input only
  with "Keyboard and mouse", the clipboard both ways only with "Clipboard". The relay enforces
  this too; the agent does it again here (defence in depth), and :meth:`OnDemandConnection.send`
  drops anything the person did not allow, whatever asked for it.
* One connection per key: there is no reconnecting once the websocket opened (the key is spent
  from ``HELLO`` on). Only a connection that never opened may be tried again, and a refused
  key (4001) may be replaced by another one the person types.
* Disconnect, Ctrl+Shift+X (``agents.ondemand.hotkey``) or closing the program's window close
  the connection with 4013 at once.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from agents.common import protocol as P
from agents.common.transport import Transport, TransportClosed, WebsocketTransport
from agents.host.agent import Connection, Desktop, open_x11_desktop
from agents.host.state import websocket_url
from agents.ondemand.consent import consent_mask, offered

log = logging.getLogger("tessera.ondemand")

EXIT_ENDED, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

# What each kind of message needs the person to have allowed before it may leave the computer.
_NEEDS = {P.MsgType.SCREEN_INFO: "view_screen", P.MsgType.FRAME_UPDATE: "view_screen",
          P.MsgType.CURSOR: "view_screen", P.MsgType.CLIPBOARD: "clipboard"}

PERSON_ENDED = "the person at the computer ended the session"
DOWNLOAD_AGAIN = "Download it again from the link your technician sent you, then start it again."
# The relay's refusals: (outcome kind, title, the sentence when the relay's ERROR gave none).
REFUSALS = {
    P.CloseCode.UNAUTHENTICATED: ("key", "Session key not accepted", "This session key is not "
                                  "valid: check the digits, or ask the technician for a new one."),
    P.CloseCode.UNSUPPORTED_VERSION: ("stop", "This program is out of date", DOWNLOAD_AGAIN),
    P.CloseCode.REJECTED: ("stop", "The technician rejected this session",
                           "The technician rejected this session; its key can no longer be used."),
    P.CloseCode.EXPIRED: ("stop", "This session has expired",
                          "This session expired: ask the technician for a new one."),
}


@dataclass(frozen=True)
class OnDemandConfig:
    server: str    # the Portal's base URL (agents.host.state.normalise_server)
    key: str       # 9 digits
    display: str   # ":N"

    @property
    def relay_url(self) -> str:
        return websocket_url(self.server, "/relay/ondemand")


# --- what the windows are told -----------------------------------------------------------

@dataclass(frozen=True)
class Waiting:
    """HELLO went out: the session waits in the technician's queue."""

    hotkey: bool          # Ctrl+Shift+X is grabbed
    note: str = ""        # why it waits again, e.g. after a decline


@dataclass(frozen=True)
class ConsentAsked:
    seq: int              # answer with OnDemandAgent.answer(seq, ...)
    technician: str       # attacker-influenced text: shown as plain text only
    offered: tuple[str, ...]
    timeout: int


@dataclass(frozen=True)
class ConsentSettled:
    seq: int
    permissions: int      # what was sent (0 declined or unanswered)


@dataclass(frozen=True)
class SessionRunning:
    technician: str
    allowed: frozenset[str]   # what the session may do now
    started: bool             # True the first time, False when only the permissions changed


@dataclass(frozen=True)
class SessionLeft:
    technician: str


@dataclass(frozen=True)
class Outcome:
    """How a run ended. ``kind``: ``ended`` the session is over; ``key`` the relay refused the
    key (the person may type another); ``retry`` the connection never opened (trying again
    spends nothing); ``stop`` refused for good (outdated, rejected, expired, no display)."""

    kind: str
    title: str
    sentence: str
    code: int | None = None
    exit_code: int = EXIT_ENDED


def refused_before_opening(closed: TransportClosed, server: str) -> Outcome:
    """The websocket did not open: an HTTP answer instead of the upgrade, or no answer."""
    if closed.status == 429:
        return Outcome("key", "Too many tries",
                       "Too many session keys were tried from this network. Wait a few minutes, "
                       "then try again.", None, EXIT_REFUSED)
    if closed.status in (401, 403, 404):
        return Outcome("key", "Session key not accepted",
                       closed.reason or "This session key is not valid.", None, EXIT_REFUSED)
    if closed.status is not None:
        return Outcome("retry", "The server refused the connection",
                       f"{server} answered HTTP {closed.status}: {closed.reason}", None, EXIT_REFUSED)
    return Outcome("retry", "Cannot reach the server",
                   f"Could not reach {server}: {closed.reason or 'no answer'}.", None, EXIT_REFUSED)


def after_connection(closed: TransportClosed, error: P.Error | None, person_ended: bool,
                     had_session: bool) -> Outcome:
    """What a connection that opened ended with (docs/protocol.md, close codes). ``error`` is
    the relay's last ``ERROR`` message: its sentence is shown when it is about this close."""
    code = closed.code
    said = error.message if error is not None and error.message and (
        code is None or error.code == code) else ""
    if person_ended:
        return Outcome("ended", "The session has ended",
                       "You ended the session. The technician can no longer see or control this "
                       "computer.", P.CloseCode.ENDED_BY_HOST, EXIT_ENDED)
    if code == P.CloseCode.UNSUPPORTED_VERSION and "download" not in said.lower():
        said = f"{said} {DOWNLOAD_AGAIN}".strip()
    if code in REFUSALS:
        kind, title, sentence = REFUSALS[code]
        return Outcome(kind, title, said or sentence, code, EXIT_REFUSED)
    reason = said or closed.reason or "The connection to the server ended."
    if not had_session and code not in (P.CloseCode.NORMAL, P.CloseCode.ENDED_BY_HOST):
        return Outcome("stop", "The connection ended", f"{reason} (code {code})", code, EXIT_REFUSED)
    return Outcome("ended", "The session has ended", reason, code, EXIT_ENDED)


# --- the connection ----------------------------------------------------------------------

class OnDemandConnection(Connection):
    """The Host agent's connection, held back until consent (see the module docstring)."""

    def __init__(self, agent: "OnDemandAgent", conn, desktop: Desktop):
        super().__init__(agent, conn, desktop)
        self.granted: frozenset[str] = frozenset()   # the last CONSENT sent
        self.active: frozenset[str] = frozenset()    # granted, and in the running SESSION
        self.in_session = False
        self.had_session = False
        self.last_error: P.Error | None = None
        self._refused_input = False

    def send(self, message) -> None:
        data = message if isinstance(message, bytes) else message.encode()
        needs = _NEEDS.get(data[0])
        if (needs is not None and needs not in self.active) or \
                (data[0] == P.MsgType.STATUS and not self.in_session):
            # Never on the wire without the person's consent, whoever asked for it.
            (log.warning if data[0] == P.MsgType.FRAME_UPDATE else log.debug)(
                "not sent without consent: %s", P.MsgType(data[0]).name)
            return
        self.conn.send(data)

    def _greet(self, session) -> None:
        self.send(self._hello(session))
        self.agent.greeted()

    def _handle(self, message) -> None:
        if isinstance(message, P.ConsentRequest):
            self.agent.consent_asked(self, message)
        elif isinstance(message, P.Session):
            self._session(message)
        elif isinstance(message, (P.Pointer, P.Key)):
            if "keyboard_mouse" in self.active:
                super()._handle(message)
            elif not self._refused_input:
                self._refused_input = True
                log.info("input from the technician ignored: Keyboard and mouse was not allowed")
        elif isinstance(message, P.Clipboard):
            if "clipboard" in self.active:
                super()._handle(message)
        elif isinstance(message, P.RequestKeyframe):
            if "view_screen" in self.active:   # else nothing is captured at all
                super()._handle(message)
        elif isinstance(message, P.Power):
            # Not an OnDemand permission: the relay never forwards it (nor takes a POWER_RESULT).
            log.info("power action %s ignored: not part of an OnDemand session", message.action)
        elif isinstance(message, (P.ConfirmRequest, P.ConfirmCancel)):
            self.close(P.CloseCode.UNEXPECTED, f"{type(message).__name__} is not for an OnDemand agent")
        else:
            if isinstance(message, P.Error):
                self.last_error = message
            super()._handle(message)

    def _session(self, message: P.Session) -> None:
        if message.event is P.SessionEvent.LEFT or message.viewers == 0:
            self.agent.consent_withdrawn(message.technician)  # left before an answer
            was = self.in_session
            self.in_session, self.active, self.granted = False, frozenset(), frozenset()
            self._stop_watching()
            self._release_input()
            if was:
                log.info("the technician %s left the session", message.technician)
                self.agent.notify(SessionLeft(message.technician))
            return
        allowed = self.granted & P.permission_keys(message.permissions)
        started = not self.in_session
        self.in_session, self.had_session = True, True
        showing = "view_screen" in self.active
        self.active = allowed
        if "view_screen" in allowed:
            if not showing:
                with self._lock:
                    self._in_flight.clear()   # nothing of an earlier session is acked now
                    self._viewers = 0          # so that the Host agent's handler sends key frames
                self.send(self._screen_info())
            super()._handle(message)   # viewers > 0: capture, key frames, changes
        else:
            self._stop_watching()
        if "keyboard_mouse" not in allowed:
            self._release_input()
        log.info("session %s with %s: %s", "started" if started else "changed", message.technician,
                 ", ".join(sorted(allowed)) or "nothing allowed")
        self.agent.notify(SessionRunning(message.technician, allowed, started))

    def _stop_watching(self) -> None:
        with self._lock:
            self._viewers = 0
            self._keyframes.clear()
            self._lock.notify_all()

    def local_clipboard(self, text: str) -> None:
        if "clipboard" in self.active and not self.closed.is_set():
            self._try_send(P.Clipboard(text))

    def _check_status(self) -> None:
        if self.in_session:
            super()._check_status()


# --- the agent ---------------------------------------------------------------------------

def grab_hotkey(display: str, on_press: Callable[[], None]):
    from agents.ondemand.hotkey import HotkeyGrab

    return HotkeyGrab(display, on_press)


class OnDemandAgent:
    """One run with one key (see the module docstring). ``notify`` gets the events, from the
    worker thread: it must only hand them over (the windows poll a queue)."""

    def __init__(self, config: OnDemandConfig, notify: Callable[[object], None], *,
                 transport: Transport | None = None,
                 desktop_factory: Callable[[str], Desktop] = open_x11_desktop,
                 hotkey_factory: Callable[[str, Callable[[], None]], object] | None = grab_hotkey,
                 fast_fps: float = 30.0, idle_fps: float = 2.0):
        self.config = config
        self.notify = notify
        self.transport = transport or WebsocketTransport()
        self.desktop_factory = desktop_factory
        self.hotkey_factory = hotkey_factory
        self.fast_fps, self.idle_fps = fast_fps, idle_fps
        self.display = config.display
        self.connections = 0
        self.connection: OnDemandConnection | None = None
        self.hotkey_held = False
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._person_ended = False
        self._pending: tuple[int, P.ConsentRequest, OnDemandConnection] | None = None
        self._asked = 0

    # What agents.host.agent.Connection asks of its agent.
    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def desktop_moved(self) -> None:
        return None   # the OnDemand agent shares the display it was started on, no other

    # --- the run -------------------------------------------------------------------------

    def run(self) -> Outcome:
        try:
            desktop = self.desktop_factory(self.display)
        except Exception as exc:  # noqa: BLE001 - no X server, no permission to it
            return Outcome("stop", "Cannot share this screen",
                           f"The display {self.display} cannot be opened: {exc}", None, EXIT_REFUSED)
        hotkey = None
        try:
            if desktop.clipboard is not None:
                desktop.clipboard.watch(self._local_clipboard)
            if self._person_ended or self.stopping:   # closed while the display opened
                return after_connection(TransportClosed(None), None, True, False)
            try:
                conn = self.transport.connect(self.config.relay_url, self.config.key)
            except TransportClosed as closed:
                return refused_before_opening(closed, self.config.server)
            connection = OnDemandConnection(self, conn, desktop)
            with self._lock:
                self.connection = connection
                ended = self._person_ended or self.stopping
            if ended:
                connection.close(P.CloseCode.ENDED_BY_HOST, PERSON_ENDED)
            else:
                hotkey = self._grab_hotkey()
            closed = connection.serve()
            with self._lock:
                self.connection, self._pending = None, None
            return after_connection(closed, connection.last_error, self._person_ended,
                                    connection.had_session)
        finally:
            if hotkey is not None:
                hotkey.close()
            desktop.close()

    def _grab_hotkey(self):
        if self.hotkey_factory is None:
            return None
        try:
            grab = self.hotkey_factory(self.display, self.disconnect)
        except Exception as exc:  # noqa: BLE001 - taken by another program, no such key
            log.warning("Ctrl+Shift+X cannot end the session on this display: %s", exc)
            return None
        self.hotkey_held = True
        log.info("Ctrl+Shift+X ends the session")
        return grab

    def greeted(self) -> None:
        """HELLO is out: the key is spent, the session waits for its technician."""
        log.info("connected to %s; waiting for a technician", self.config.server)
        self.notify(Waiting(self.hotkey_held))

    def _local_clipboard(self, text: str) -> None:
        connection = self.connection
        if connection is not None:
            connection.local_clipboard(text)

    # --- what the person does ------------------------------------------------------------

    def consent_asked(self, connection: OnDemandConnection, request: P.ConsentRequest) -> None:
        """From the receive loop: show the consent window; no answer in time declines."""
        with self._lock:
            self._asked += 1
            seq = self._asked
            self._pending = (seq, request, connection)
        choices = offered(request.permissions)
        log.info("%s asks for %s", request.technician, ", ".join(choices) or "nothing")
        timer = threading.Timer(request.timeout, self.answer, args=(seq, ()))
        timer.daemon = True
        timer.start()
        self.notify(ConsentAsked(seq, request.technician, choices, request.timeout))

    def answer(self, seq: int, chosen: Iterable[str]) -> bool:
        """The person's answer to consent question ``seq`` (nothing chosen: declined). False
        when that question is no longer open (answered, timed out, replaced, disconnected)."""
        with self._lock:
            if self._pending is None or self._pending[0] != seq:
                return False
            _, request, connection = self._pending
            self._pending = None
        mask = consent_mask(request.permissions, chosen)
        connection.granted = P.permission_keys(mask)   # before CONSENT: SESSION follows it
        connection._try_send(P.Consent(mask))
        log.info("consent: %s", ", ".join(sorted(connection.granted)) or "declined")
        self.notify(ConsentSettled(seq, mask))
        if not mask:
            self.notify(Waiting(self.hotkey_held, "You declined the session."))
        return True

    def consent_withdrawn(self, technician: str) -> None:
        """The technician left (``SESSION`` left) while the consent window was open: close it
        unanswered and wait again; a late click on it is then ignored (:meth:`answer`)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        log.info("the technician %s left before the consent was answered", technician)
        self.notify(ConsentSettled(pending[0], 0))
        self.notify(Waiting(self.hotkey_held, f"{technician} left before you answered."))

    def disconnect(self) -> None:
        """End everything now (Disconnect, Ctrl+Shift+X, the window closed): close 4013."""
        with self._lock:
            if self._person_ended:
                return
            self._person_ended = True
            self._pending = None
            connection = self.connection
        log.info("the person at the computer ended the session")
        if connection is not None:
            connection.close(P.CloseCode.ENDED_BY_HOST, PERSON_ENDED)

    def stop(self) -> None:
        """The program is being stopped (SIGTERM): going away, 1001."""
        self._stopping.set()
        connection = self.connection
        if connection is not None:
            connection.close(P.CloseCode.GOING_AWAY, "the program is stopping")
