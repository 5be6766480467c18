"""The Host agent's main loop: enrol once, connect to the relay, serve viewers, reconnect.

``__main__`` builds an :class:`Agent` from the configuration and calls :meth:`Agent.run`; tests
build one with an injected transport and desktop and drive it against a real server.

One connection is a :class:`Connection` (names from ``docs/protocol.md``):

* ``HELLO`` and ``SCREEN_INFO`` first; then the receive loop (this thread) answers the relay:
  ``SESSION`` (viewers come and go), ``REQUEST_KEYFRAME``, ``ACK``, ``POINTER``/``KEY``
  (XTest), ``CLIPBOARD``, ``POWER``, ``PING``, ``CONFIRM_REQUEST`` (the allow/deny prompt of
  ``agents.host.prompt``, in a process of its own, answered from a worker thread) and
  ``CONFIRM_CANCEL`` (that prompt closed, its answer never sent).
* A capture thread grabs every screen while at least one viewer watches, at up to 30 fps
  while the screen changes and 2 fps while it does not, keeps at most 2 frame updates
  unacknowledged, and sends the changed tiles zstd-compressed through the connection's stream.
  It also sends ``CURSOR`` when the pointer moves and ``STATUS`` when the logged-in user or the
  lock state changes.
* Text copied on the machine goes to the viewers (``clipboard.X11Clipboard.watch``).

With ``display = auto`` the agent finds the display itself (``xsession.discover``: the active
session's, else the login screen's) before it opens the desktop, and looks again every few
seconds while connected: when the choice changes (a user logged in, or out), or the X server
goes away, the connection ends and the agent comes back on the display found then.

How a connection ends decides what happens next (close codes of ``docs/protocol.md``):
revoked (4004) stops the agent for good and says so; pending (4003), replaced (4008) and an
unsupported version (4002) retry slowly; an unknown token (4001, e.g. the device was removed)
enrols again with the enrolment key; anything else reconnects with jittered backoff 1-30 s.
"""
from __future__ import annotations

import functools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Callable

from agents import agent_version
from agents.common import protocol as P
from agents.common.transport import Backoff, Transport, TransportClosed, WebsocketTransport
from agents.host import xsession
from agents.host.capture import DamageUnavailable, DamageWatch, RateGovernor, X11Capture
from agents.host.desktop import current_session, hostname, os_description
from agents.host.frames import ScreenEncoder, split_payloads
from agents.host.power import FAILED, PowerActions, PowerResult
from agents.host.prompt import ALLOW, DENY, Prompts
from agents.host.state import AgentConfig, Credential, StateDir

log = logging.getLogger("tessera.agent")

EXIT_OK, EXIT_CONFIG, EXIT_REVOKED = 0, 2, 3
MAX_IN_FLIGHT = 2           # docs/protocol.md: unacknowledged frame updates per agent
STATUS_EVERY = 5.0          # seconds between checks of the logged-in user and lock state
                            # (and, with display = auto, of which display to share)
MONITORS_EVERY = 5.0        # seconds between checks of the monitor layout
STABLE_AFTER = 10.0         # a connection that lasted this long resets the backoff

# POINTER's button mask bit -> X button: left, middle, right, back, forward.
BUTTON_BITS = ((0, 1), (1, 2), (2, 3), (3, 8), (4, 9))


class Stop(Exception):
    """The agent must not go on (revoked, unusable configuration); ``exit_code`` says why."""

    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


class EnrolmentRefused(Exception):
    """The Portal answered the enrolment with an error; ``retry`` says whether waiting helps."""

    def __init__(self, status: int, message: str, retry: bool):
        super().__init__(message)
        self.status, self.retry = status, retry


def enrol(config: AgentConfig, hardware_id: str, timeout: float = 20.0) -> tuple[int, str, str]:
    """``POST /api/v1/agent/enroll`` -> (device id, token, state). Raises
    :class:`EnrolmentRefused` for an answer that is an error, OSError when unreachable."""
    body = json.dumps({
        "enrollment_key": config.enrollment_key, "hostname": hostname(), "os": os_description(),
        "agent_version": agent_version(), "hardware_id": hardware_id,
    }).encode("utf-8")
    request = urllib.request.Request(config.enroll_url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json",
        "User-Agent": f"tessera-agent/{agent_version()}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read(64 * 1024).decode("utf-8"))
            return int(answer["device_id"]), str(answer["device_token"]), str(answer.get("state", ""))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read(16 * 1024).decode("utf-8")).get("error") or exc.reason
        except (ValueError, AttributeError, UnicodeDecodeError):
            message = str(exc.reason)
        # 400 malformed and 404 unknown key do not get better by waiting; a package that is
        # disabled, expired or not yet valid (403), a full licence (409) or the rate limit
        # (429) may.
        raise EnrolmentRefused(exc.code, str(message), retry=exc.code not in (400, 404)) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrolmentRefused(0, f"the Portal's answer is not an enrolment: {exc}", retry=True) from None


@dataclass
class Desktop:
    """What the agent drives on the machine; built once per X display, injectable for tests."""

    capture: object            # X11Capture-like: screens(), grab(screen), refresh(), close()
    input: object | None       # X11Input-like, None when XTEST is missing
    clipboard: object | None   # X11Clipboard-like, None when xclip is missing
    power: PowerActions
    session: Callable[[], object]   # -> DesktopSession (user, locked)
    pointer: Callable[[], tuple[int, int] | None] = lambda: None
    # -> the cursor image when it changed (or when forced), else None
    cursor_shape: Callable[[bool], P.CursorShape | None] = lambda force=False: None
    changes: object | None = None   # DamageWatch-like: wait(timeout, stop) -> drawn?; None: poll

    def close(self) -> None:
        for part in (self.clipboard, self.input, self.capture, self.pointer, self.changes):
            if part is not None and hasattr(part, "close"):
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - closing what may already be gone
                    log.debug("closing %r failed", part, exc_info=True)


def open_x11_desktop(display: str, power_commands: dict[str, tuple[str, ...]] | None = None) -> Desktop:
    """The real desktop on an X display. Raises OSError-like errors when X is not there yet.
    ``power_commands``: agent.conf's own commands for power actions (``AgentConfig``)."""
    from agents.host.clipboard import ClipboardUnavailable, X11Clipboard
    from agents.host.input import InputError, X11Input

    capture = X11Capture(display)
    try:
        injector = X11Input(display)
    except InputError as exc:
        log.warning("keyboard and mouse input are not available: %s", exc)
        injector = None
    try:
        clipboard = X11Clipboard(display)
    except ClipboardUnavailable as exc:
        log.warning("the clipboard is not available: %s", exc)
        clipboard = None

    def press_keys(keysyms) -> bool:
        if injector is None:
            return False
        ok = all(injector.key(k, True) for k in keysyms)
        for k in reversed(keysyms):
            injector.key(k, False)
        return ok

    try:
        changes = DamageWatch(display)
    except DamageUnavailable as exc:
        log.warning("%s: polling for changes", exc)
        changes = None
    pointer = PointerReader(display)
    return Desktop(capture=capture, input=injector, clipboard=clipboard,
                   power=PowerActions(display, press_keys=press_keys, commands=power_commands),
                   session=lambda: current_session(display), pointer=pointer,
                   cursor_shape=pointer.shape, changes=changes)


def unpremultiply_argb(pixels, width: int, height: int) -> bytes:
    """XFixes cursor pixels (32-bit ARGB, premultiplied alpha) as the protocol's RGBA with
    straight alpha, what a browser's ImageData takes."""
    out = bytearray(width * height * 4)
    for i, value in enumerate(pixels[:width * height]):
        a = value >> 24 & 0xFF
        if a:
            r, g, b = value >> 16 & 0xFF, value >> 8 & 0xFF, value & 0xFF
            if a != 0xFF:
                r, g, b = min(255, r * 255 // a), min(255, g * 255 // a), min(255, b * 255 // a)
            out[i * 4:i * 4 + 4] = bytes((r, g, b, a))
    return bytes(out)


class PointerReader:
    """Where the X pointer is and what it looks like, on a display connection of its own (the
    capture thread's). The shape is fetched only when XFixes says it changed."""

    def __init__(self, display: str):
        from Xlib import display as xdisplay

        self.d = xdisplay.Display(display)
        self.root = self.d.screen().root
        self.xfixes = self.d.has_extension("XFIXES")
        self._shape_changed = True
        if self.xfixes:
            from Xlib.ext import xfixes

            self.d.xfixes_query_version()
            self.d.xfixes_select_cursor_input(self.root, xfixes.XFixesDisplayCursorNotifyMask)
            self.d.flush()

    def __call__(self) -> tuple[int, int] | None:
        try:
            reply = self.root.query_pointer()
        except Exception:  # noqa: BLE001 - the X server went away; capture reports it
            return None
        return reply.root_x, reply.root_y

    def shape(self, force: bool = False) -> P.CursorShape | None:
        """The cursor image when it changed since the last call (or ``force``), else None."""
        if not self.xfixes:
            return None
        while self.d.pending_events():
            self.d.next_event()  # only cursor notifications are selected on this connection
            self._shape_changed = True
        if not (self._shape_changed or force):
            return None
        self._shape_changed = False
        image = self.d.xfixes_get_cursor_image(self.root)
        width, height = min(image.width, P.MAX_CURSOR_SIDE), min(image.height, P.MAX_CURSOR_SIDE)
        if not width or not height:
            return None
        if width != image.width:  # an oversized cursor: keep its top-left part, row by row
            pixels = [v for row in range(height) for v in image.cursor_image[row * image.width:row * image.width + width]]
        else:
            pixels = image.cursor_image
        return P.CursorShape(min(image.xhot, width - 1), min(image.yhot, height - 1), width, height,
                             unpremultiply_argb(pixels, width, height))

    def close(self) -> None:
        self.d.close()


class Agent:
    def __init__(self, config: AgentConfig, *, transport: Transport | None = None,
                 desktop_factory: Callable[[str], Desktop] | None = None,
                 discover: Callable[[], xsession.FoundDisplay] = xsession.discover,
                 enroller: Callable[[AgentConfig, str], tuple[int, str, str]] = enrol,
                 sleep: Callable[[float], bool] | None = None, backoff: Backoff | None = None,
                 fast_fps: float = 30.0, idle_fps: float = 2.0):
        self.config = config
        self.state = StateDir(config.state_dir)
        self.transport = transport or WebsocketTransport()
        self.desktop_factory = desktop_factory or functools.partial(
            open_x11_desktop, power_commands=config.power_commands)
        self.discover = discover
        self.follows = config.display == xsession.AUTO   # find the display, and follow it
        self.display: str | None = None                  # the display of the open desktop
        self.enroller = enroller
        self.backoff = backoff or Backoff()
        self.fast_fps, self.idle_fps = fast_fps, idle_fps
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self.desktop: Desktop | None = None
        self.connection: Connection | None = None
        self.connections = 0  # connections that got through HELLO (tests watch it)

    # --- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        conn = self.connection
        if conn is not None:
            conn.close(P.CloseCode.GOING_AWAY, "the agent is stopping")

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _wait(self, seconds: float, why: str) -> None:
        log.info("%s; trying again in %.1f s", why, seconds)
        self._sleep(seconds)

    def run(self) -> int:
        """Serve until stopped; the process exit code."""
        try:
            reason = self.state.revoked_reason()
            if reason is not None:
                raise Stop(EXIT_REVOKED, f"This device was revoked ({reason}); the agent does not "
                           f"connect. Remove {self.state.path / 'revoked'} to enrol it again.")
            self.state.ensure()
            while not self.stopping:
                credential = self._credential()
                if credential is None:
                    break
                if not self._ensure_desktop():
                    continue
                self._connect_once(credential)
            return EXIT_OK
        except Stop as stop:
            log.error("%s", stop)
            return stop.exit_code
        finally:
            if self.desktop is not None:
                self.desktop.close()
                self.desktop = None

    def _credential(self) -> Credential | None:
        """The device credential, enrolling (with backoff) until there is one."""
        while not self.stopping:
            credential = self.state.load_credential()
            if credential is not None and credential.server == self.config.server:
                return credential
            if not self.config.enrollment_key:
                raise Stop(EXIT_CONFIG, "This device holds no device token for "
                           f"{self.config.server} and no enrolment key was given "
                           "(--enroll-key or enrollment_key in the configuration file).")
            hardware_id = self.config.hardware_id or self.state.hardware_id()
            try:
                device_id, token, state = self.enroller(self.config, hardware_id)
            except EnrolmentRefused as refused:
                if not refused.retry:
                    raise Stop(EXIT_CONFIG, f"Enrolment refused by {self.config.server}: "
                               f"{refused}") from None
                self._wait(self.backoff.slow_delay() if refused.status in (403, 409) else
                           self.backoff.next_delay(), f"enrolment refused: {refused}")
                continue
            except OSError as exc:
                self._wait(self.backoff.next_delay(), f"cannot reach {self.config.server}: {exc}")
                continue
            credential = Credential(device_id, token, self.config.server)
            self.state.save_credential(credential)
            log.info("enrolled as device %s (%s)", device_id, state or "state unknown")
            self.backoff.reset()
            return credential
        return None

    def _ensure_desktop(self) -> bool:
        if self.desktop is not None:
            return True
        display = self.config.display
        if self.follows:
            try:
                found = self.discover()
                # Before the desktop's X connections open (and none of the old one's is left).
                xsession.adopt(found, self.state.path / "xauthority")
            except xsession.NoDisplay as exc:  # boot, a display manager restarting, Wayland
                self._wait(self.backoff.next_delay(), f"no X display to share: {exc}")
                return False
            except Exception as exc:  # noqa: BLE001 - odd /proc or loginctl, a full disk: retry
                log.exception("finding the X display failed")
                self._wait(self.backoff.next_delay(), f"finding the X display failed: {exc}")
                return False
            display = found.display
            log.info("sharing display %s: %s", display, found.describe())
        try:
            self.desktop = self.desktop_factory(display)
        except Exception as exc:  # noqa: BLE001 - X not up yet (boot, display manager restart)
            self._wait(self.backoff.next_delay(), f"cannot open the X display {display}: {exc}")
            return False
        self.display = display
        if self.desktop.clipboard is not None:
            self.desktop.clipboard.watch(self._local_clipboard)
        return True

    def desktop_moved(self) -> str | None:
        """With ``display = auto``: the display discovery picks now, when it is not the one
        shared; else None (also when nothing can be found now: the open desktop may still
        work, and capture notices when it does not)."""
        if not self.follows or self.display is None:
            return None
        try:
            found = self.discover()
        except Exception as exc:  # noqa: BLE001 - NoDisplay, or /proc and loginctl misbehaving
            log.debug("display discovery: %s", exc)
            return None
        return found.display if found.display != self.display else None

    def _local_clipboard(self, text: str) -> None:
        connection = self.connection
        if connection is not None:
            connection.local_clipboard(text)

    def _connect_once(self, credential: Credential) -> None:
        try:
            conn = self.transport.connect(self.config.relay_url, credential.token)
        except TransportClosed as closed:
            if closed.status == 401:  # a relay refusing before the upgrade: the token
                closed = TransportClosed(P.CloseCode.UNAUTHENTICATED, closed.reason, closed.status)
            self._after_close(closed, lived=0.0)
            return
        connection = Connection(self, conn, self.desktop)
        self.connection = connection
        started = time.monotonic()
        try:
            closed = connection.serve()
        finally:
            self.connection = None
        if connection.desktop_failed:
            # The X server went away under us: build the desktop again before reconnecting.
            self.desktop.close()
            self.desktop = None
            self.display = None
        if connection.moved_to is not None and not self.stopping:
            log.info("the desktop is now on display %s: reconnecting there", connection.moved_to)
            return
        self._after_close(closed, lived=time.monotonic() - started)

    def _after_close(self, closed: TransportClosed, lived: float) -> None:
        if self.stopping:
            return
        code = closed.code
        if lived >= STABLE_AFTER:
            self.backoff.reset()
        if code == P.CloseCode.DEVICE_REVOKED:
            self.state.mark_revoked(closed.reason or "revoked by an administrator")
            raise Stop(EXIT_REVOKED, "The relay refused this device: it was revoked, removed or "
                       f"its deployment package was revoked ({closed.reason or 'no reason given'}). "
                       "The agent stops.")
        if code == P.CloseCode.UNAUTHENTICATED:
            # The token is unknown (the device was removed, the Portal's database restored):
            # enrol again, as a new device, if this agent has a key.
            log.warning("the relay does not know this device's token (%s)", closed.reason)
            self.state.forget_credential()
            self._wait(self.backoff.slow_delay(), "enrolling again")
            return
        if code == P.CloseCode.DEVICE_PENDING:
            self._wait(self.backoff.slow_delay(),
                       "this device waits for an administrator to Enroll it in the Portal")
            return
        if code == P.CloseCode.REPLACED:
            self._wait(self.backoff.slow_delay(), "another copy of this agent connected as this device")
            return
        if code == P.CloseCode.UNSUPPORTED_VERSION:
            self._wait(self.backoff.slow_delay(),
                       f"the relay does not speak protocol version {P.PROTOCOL_VERSION}: update the agent")
            return
        self._wait(self.backoff.next_delay(),
                   f"disconnected from the relay (code {code}: {closed.reason or 'no reason'})")


class Connection:
    """One websocket session with the relay (see the module docstring)."""

    def __init__(self, agent: Agent, conn, desktop: Desktop):
        self.agent, self.conn, self.desktop = agent, conn, desktop
        self.compressor = P.StreamCompressor()
        self.closed = threading.Event()
        self.desktop_failed = False
        self.moved_to: str | None = None   # display = auto: the display to share instead
        self._lock = threading.Condition()
        self._seq = 0
        self._in_flight: deque[int] = deque()
        self._viewers = 0
        self._keyframes: set[int] = set()
        self._buttons = 0
        self.governor = RateGovernor(fast_fps=agent.fast_fps, idle_fps=agent.idle_fps)
        self._close_info: TransportClosed | None = None
        self.screens = []
        self.encoders: dict[int, ScreenEncoder] = {}
        self.prompts = Prompts()

    # --- sending -------------------------------------------------------------------------

    def send(self, message) -> None:
        self.conn.send(message if isinstance(message, bytes) else message.encode())

    def close(self, code: int, reason: str) -> None:
        with self._lock:
            if self._close_info is None:
                self._close_info = TransportClosed(code, reason)
            self._lock.notify_all()
        self.closed.set()
        self.conn.close(code, reason)

    def _screen_info(self) -> P.ScreenInfo:
        return P.ScreenInfo(tuple(P.Monitor(s.index, s.left, s.top, s.width, s.height, s.primary)
                                  for s in self.screens))

    def _hello(self, session) -> P.Hello:
        return P.Hello(agent_version=agent_version(), os=P.clip_str8(os_description()),
                       hostname=P.clip_str8(hostname()), user=P.clip_str8(session.user),
                       locked=session.locked)

    def _greet(self, session) -> None:
        """The start of a connection: HELLO, then SCREEN_INFO (docs/protocol.md, *Order of a
        connection*). The OnDemand agent sends only HELLO here (agents/ondemand/agent.py)."""
        self.send(self._hello(session))
        self.send(self._screen_info())

    def serve(self) -> TransportClosed:
        desktop = self.desktop
        session = desktop.session()
        self.screens = desktop.capture.screens()
        self.encoders = {s.index: ScreenEncoder(s.width, s.height) for s in self.screens}
        try:
            self._greet(session)
        except TransportClosed as closed:
            return closed
        self.agent.connections += 1
        log.info("connected to %s", self.agent.config.relay_url)
        self._status = (session.user, session.locked)
        capture = threading.Thread(target=self._capture_loop, name="capture", daemon=True)
        capture.start()
        try:
            return self._receive_loop()
        finally:
            self.closed.set()
            self.prompts.close()
            with self._lock:
                self._lock.notify_all()
            capture.join(timeout=5)
            if desktop.input is not None:
                try:
                    desktop.input.release_all()  # never leave a key held down
                except Exception:  # noqa: BLE001
                    self.desktop_failed = True

    # --- receiving -----------------------------------------------------------------------

    def _receive_loop(self) -> TransportClosed:
        last_heard = time.monotonic()
        while not self.closed.is_set():
            if self.agent.stopping:  # stop() may have come before this connection was known
                self.close(P.CloseCode.GOING_AWAY, "the agent is stopping")
                break
            try:
                data = self.conn.recv(timeout=0.5)
            except TransportClosed as closed:
                return self._close_info or closed
            now = time.monotonic()
            if data is None:
                if now - last_heard > P.PING_EVERY:
                    # Keep the relay's idle timer (75 s) from firing on a quiet connection.
                    self._try_send(P.Ping(int(now * 1000)))
                    last_heard = now
                continue
            last_heard = now
            try:
                message = P.decode(data)
            except P.ProtocolError as err:
                log.warning("the relay sent a message this agent cannot read: %s", err)
                self.close(err.close_code, err.message[:120])
                return self._close_info
            try:
                self._handle(message)
            except TransportClosed as closed:
                return self._close_info or closed
        return self._close_info or TransportClosed(None, "closed")

    def _try_send(self, message) -> None:
        try:
            self.send(message)
        except TransportClosed:
            self.closed.set()

    def _handle(self, message) -> None:
        if isinstance(message, P.Ack):
            with self._lock:
                if message.seq in self._in_flight:
                    while self._in_flight and self._in_flight.popleft() != message.seq:
                        pass
                self._lock.notify_all()
        elif isinstance(message, P.Session):
            with self._lock:
                joined = self._viewers == 0 and message.viewers > 0
                self._viewers = message.viewers
                if joined:
                    self._keyframes = {s.index for s in self.screens}
                self._lock.notify_all()
            log.info("%s: %s (%d viewer(s))", message.event.name.lower(), message.technician, message.viewers)
            if message.event is P.SessionEvent.LEFT or "keyboard_mouse" not in P.permission_keys(message.permissions):
                self._release_input()
        elif isinstance(message, P.RequestKeyframe):
            with self._lock:
                if message.screen == P.ALL_SCREENS:
                    self._keyframes = {s.index for s in self.screens}
                elif message.screen in self.encoders:
                    self._keyframes.add(message.screen)
                self._lock.notify_all()
        elif isinstance(message, P.Pointer):
            self._pointer(message)
        elif isinstance(message, P.Key):
            if self.desktop.input is not None:
                keysym = message.keysym
                if 0x01000020 <= keysym <= 0x010000FF:
                    keysym -= 0x01000000  # Latin-1 keysyms are their own code points
                self._input(lambda: self.desktop.input.key(keysym, message.down))
        elif isinstance(message, P.Clipboard):
            if self.desktop.clipboard is not None:
                threading.Thread(target=self._set_clipboard, args=(message.text,), daemon=True).start()
        elif isinstance(message, P.Power):
            threading.Thread(target=self._power, args=(message.action,), daemon=True).start()
        elif isinstance(message, P.ConfirmRequest):
            log.info("confirm access: asking whether %s may connect", message.technician)
            self.prompts.start(message.request, message.technician, message.timeout,
                               self.agent.display, lambda word: self._confirm(message, word))
        elif isinstance(message, P.ConfirmCancel):
            if self.prompts.cancel(message.request):
                log.info("confirm access: request %s was settled elsewhere; its prompt is closed",
                         message.request)
        elif isinstance(message, P.Ping):
            self.send(P.Pong(message.nonce))
        elif isinstance(message, P.Error):
            log.warning("the relay reports error %s: %s", message.code, message.message)
        elif isinstance(message, P.Pong):
            pass
        else:
            # A message the relay must not send an agent (docs/protocol.md: 4007).
            self.close(P.CloseCode.UNEXPECTED, f"{type(message).__name__} is not for an agent")

    def _input(self, action) -> None:
        try:
            action()
        except ValueError as exc:
            log.info("input ignored: %s", exc)
        except Exception:  # noqa: BLE001 - the X connection broke: start over
            log.exception("input injection failed")
            self.desktop_failed = True
            self.close(P.CloseCode.SERVER_ERROR, "the agent lost its X display")
        self.governor.poke()

    def _release_input(self) -> None:
        """A viewer left or lost Keyboard and mouse: let go of whatever keys and buttons are
        down, so nothing stays held on the host (every viewer presses through one injector)."""
        injector = self.desktop.input
        if injector is None:
            return

        def act():
            injector.release_all()
            self._buttons = 0

        self._input(act)

    def _pointer(self, message: P.Pointer) -> None:
        injector = self.desktop.input
        screen = next((s for s in self.screens if s.index == message.screen), None)
        if injector is None or screen is None:
            return
        x = screen.left + min(message.x, screen.width - 1)
        y = screen.top + min(message.y, screen.height - 1)

        def act():
            injector.move(x, y)
            changed = self._buttons ^ message.buttons
            for bit, number in BUTTON_BITS:
                if changed >> bit & 1:
                    injector.button(number, bool(message.buttons >> bit & 1))
            self._buttons = message.buttons
            if message.wheel_x or message.wheel_y:
                injector.wheel(message.wheel_x, message.wheel_y)

        self._input(act)

    def _set_clipboard(self, text: str) -> None:
        try:
            self.desktop.clipboard.set_text(text)
        except Exception as exc:  # noqa: BLE001 - xclip failed: the session goes on
            log.warning("could not set the clipboard: %s", exc)

    def local_clipboard(self, text: str) -> None:
        """Text copied on the machine: to the viewers, if there are any."""
        with self._lock:
            watched = self._viewers > 0
        if watched and not self.closed.is_set():
            self._try_send(P.Clipboard(text))

    def _power(self, action: int) -> None:
        try:
            result = self.desktop.power.perform(int(action))
        except Exception as exc:  # noqa: BLE001 - report, never crash the connection
            log.exception("power action %s failed", action)
            result = PowerResult(int(action), FAILED, f"The action failed on the machine: {exc}")
        message = result.message.encode("utf-8")[:P.MAX_TEXT].decode("utf-8", "ignore")
        self._try_send(P.PowerResult(P.PowerAction(result.action), P.PowerStatus(result.status), message))

    def _confirm(self, request: P.ConfirmRequest, word: str) -> None:
        """The person at this computer answered (on the prompt's worker thread): tell the
        relay (UNANSWERED when nobody clicked in time or the prompt could not be shown)."""
        answer = {ALLOW: P.Answer.ALLOW, DENY: P.Answer.DENY}.get(word, P.Answer.UNANSWERED)
        log.info("confirm access: %s for %s", answer.name.lower(), request.technician)
        if not self.closed.is_set():
            self._try_send(P.ConfirmAnswer(request.request, answer))

    # --- capturing -----------------------------------------------------------------------

    def _wait_for_slot(self) -> bool:
        """Block until fewer than MAX_IN_FLIGHT updates are unacknowledged; False on close."""
        with self._lock:
            while len(self._in_flight) >= MAX_IN_FLIGHT and not self.closed.is_set():
                self._lock.wait(0.5)
            return not self.closed.is_set()

    def _send_update(self, screen: int, payload: bytes, keyframe: bool) -> bool:
        if not self._wait_for_slot():
            return False
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            self._in_flight.append(seq)
        try:
            self.send(P.encode_frame_update(screen, seq, payload, keyframe, self.compressor))
        except TransportClosed:
            self.closed.set()
            return False
        return True

    def _wait_for_change(self, desktop: Desktop, looked_at: float) -> None:
        """Sleep until the next look: the governor's interval, cut short when the X server
        reports drawing (DAMAGE), but never sooner than the fast rate allows after the last
        look began."""
        interval = self.governor.interval()
        if desktop.changes is None:
            self.closed.wait(interval)
            return
        if desktop.changes.wait(interval, self.closed):
            self.governor.changed()
            self.closed.wait(max(0.0, self.governor.fast - (time.monotonic() - looked_at)))

    def _capture_loop(self) -> None:
        desktop = self.desktop
        started = time.monotonic()
        next_status, next_monitors = started + STATUS_EVERY, started + MONITORS_EVERY
        cursor = None
        try:
            while not self.closed.is_set():
                # Who is logged in, whether the session is locked and the monitor layout are
                # followed even while nobody watches: the Portal's device list shows them.
                now = time.monotonic()
                if now >= next_status:
                    next_status = now + STATUS_EVERY
                    self._check_status()
                    if self._follow_desktop():
                        return
                forced = set()
                if now >= next_monitors:
                    next_monitors = now + MONITORS_EVERY
                    if desktop.capture.refresh():
                        self._monitors_changed()
                        forced = {s.index for s in self.screens}
                with self._lock:
                    if self._viewers == 0 and not self._keyframes:
                        self._lock.wait(1.0)
                        continue
                    wanted = set(self._keyframes) | forced
                    self._keyframes.clear()
                    watching = self._viewers > 0
                if self.closed.is_set():
                    return
                changed = False
                for screen in self.screens:
                    if not (watching or screen.index in wanted):
                        continue
                    frame = desktop.capture.grab(screen)
                    encoder = self.encoders[screen.index]
                    key = screen.index in wanted
                    rects = encoder.keyframe(frame) if key else encoder.diff(frame)
                    if not rects:
                        continue
                    changed = True
                    payloads = split_payloads(rects)
                    for payload in payloads:
                        if not self._send_update(screen.index, payload, key and len(payloads) == 1):
                            return
                position = desktop.pointer()
                shape = desktop.cursor_shape(bool(wanted))  # a new viewer gets the shape too
                if position is not None and (position != cursor or shape is not None):
                    cursor = position
                    self._try_send(P.Cursor(position[0], position[1], True, shape))
                if changed:
                    self.governor.changed()
                self._wait_for_change(desktop, looked_at=now)
        except Exception:  # noqa: BLE001 - X went away (or a bug): end this connection
            if not self.closed.is_set():
                log.exception("screen capture failed")
                self.desktop_failed = True
                self.close(P.CloseCode.SERVER_ERROR, "the agent's screen capture failed")

    def _monitors_changed(self) -> None:
        self.screens = self.desktop.capture.screens()
        self.encoders = {s.index: ScreenEncoder(s.width, s.height) for s in self.screens}
        log.info("monitors changed: %s", ", ".join(f"{s.width}x{s.height}" for s in self.screens))
        self._try_send(self._screen_info())

    def _follow_desktop(self) -> bool:
        """display = auto: end this connection when another display should be shared now."""
        moved_to = self.agent.desktop_moved()
        if moved_to is None:
            return False
        self.moved_to = moved_to
        self.desktop_failed = True
        self.close(P.CloseCode.GOING_AWAY, f"the desktop moved to display {moved_to}")
        return True

    def _check_status(self) -> None:
        session = self.desktop.session()
        status = (session.user, session.locked)
        if status != self._status:
            self._status = status
            self._try_send(P.Status(user=P.clip_str8(session.user), locked=session.locked))
