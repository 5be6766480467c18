"""One viewer's connection to a device (``/relay/devices/<id>/view``, docs/protocol.md), with
its flow control and its permission checks.

``serve_viewer`` runs in the request's greenlet and is the reader: it admits the technician
(signed-in session, effective permissions allowing ``remote_session`` and ``view_screen``),
greets the viewer, starts the session (audits ``session.started``) at once or, under a
Confirm-access role, once somebody allowed it (``app.relay.confirm``: until then the reader
answers pings and drops input, and no frame is sent), then handles what the viewer sends:
acks, input (each checked against permissions at most about a second old), screen choice. A
writer greenlet sends everything else.

A viewer watches one screen, or every screen (``SELECT_SCREEN`` 0xFF, the console's "All
monitors"); each screen watched has its own key-frame and dirty-tile state, and one flow-control
window covers them all.

Flow control: at most ``IN_FLIGHT`` frame updates are sent and not yet acked, whatever their
screen. While the viewer keeps up, the agent's updates are forwarded as they are (the rectangle
bytes the agent sent, shared by every viewer); once it has ``IN_FLIGHT`` outstanding, new
changes only mark the screen's :class:`~app.relay.framebuffer.TileSet`, and it gets one frame
at a time until it catches up (an ack leaves nothing in flight and nothing dirty): each is built
from the relay's framebuffer for all dirty tiles of one screen when the previous one is acked,
the screens taking turns. So a slow viewer is about a frame behind, never a queue behind, and
what the relay holds for it is bounded by the screens' sizes.

Called by ``app.relay.views.view``.
"""
from __future__ import annotations

import logging
import time
from collections import deque

import gevent
from gevent.event import Event
from gevent.queue import Empty, Full, Queue

from agents.common import protocol as p
from app.confirm.services import confirm_rules
from app.relay import confirm, services
from app.relay.framebuffer import TileSet
from app.relay.hub import PERMISSION_EVERY, DeviceLink, get_hub
from app.relay.wsio import Channel, Closed

log = logging.getLogger(__name__)

IN_FLIGHT = 2
QUEUE_SIZE = 256
INPUT_NEEDS = {
    p.MsgType.POINTER: "keyboard_mouse",
    p.MsgType.KEY: "keyboard_mouse",
    p.MsgType.CLIPBOARD: "clipboard",
    p.MsgType.POWER: "remote_management",
}
INPUT_LABELS = {"keyboard_mouse": "Keyboard and mouse", "clipboard": "Clipboard",
                "remote_management": "Power actions (remote management)"}
SEQ_MOD = 1 << 32
WAITER_STOP = 30.0  # seconds a confirmation still waiting gets to wind down (an SMTP send)


class _Idle(Exception):
    pass


def _compressor():
    try:
        from relay_ext import FrameCompressor

        return FrameCompressor()
    except ImportError:
        return p.StreamCompressor()


class ViewerConn:
    def __init__(self, link: DeviceLink, channel: Channel, viewer_id: int,
                 grant: services.ViewerGrant, compress: bool):
        self.link = link
        self.channel = channel
        self.id = viewer_id
        self.grant = grant
        self.checked_at = time.monotonic()
        self.control: Queue = Queue(maxsize=QUEUE_SIZE)
        self.wake = Event()
        self.compressor = _compressor() if compress else None
        # The screen watched (p.ALL_SCREENS: every one), None while there is no SCREEN_INFO.
        self.screen: int | None = None
        self.wanted_screen: int | None = None
        self.needs_key: set[int] = set()  # watched screens whose next frame is a key frame
        self.tiles: dict[int, TileSet] = {}  # per screen, what changed while it was behind
        self.turn = -1  # the screen last built from dirty tiles: the others go first next
        self.forward: deque = deque()  # (screen, rectangle bytes, keyframe) to send as they are
        self.in_flight: deque = deque()
        self.window = IN_FLIGHT  # frames it may have in flight now: 1 while it is behind
        self.last_seq = 0
        self.cursor: p.Cursor | None = None
        self.refused_notice: set[str] = set()
        self.used: set[str] = {"view_screen"}  # permissions this session used (its record)
        self.writer: gevent.Greenlet | None = None
        self.terminating = False
        self.started = False  # the session runs: frames and input flow
        self.session_id: int | None = None  # its RemoteSession record
        self.gone = Event()  # the reader has ended (a confirmation still waiting is cancelled)

    # --------------------------------------------------------------- called by the link
    def post(self, data: bytes) -> None:
        try:
            self.control.put_nowait(data)
        except Full:
            self.terminate(p.CloseCode.POLICY, "The viewer stopped reading its messages.")
            return
        self.wake.set()

    def set_cursor(self, cursor: p.Cursor) -> None:
        pending = self.cursor
        if pending is not None and pending.shape is not None and cursor.shape is None:
            # A newer position must not lose a shape the viewer has not been sent yet.
            cursor = p.Cursor(cursor.x, cursor.y, cursor.visible, pending.shape)
        self.cursor = cursor
        self.wake.set()

    def screens_changed(self, info: p.ScreenInfo | None, changed: set[int]) -> None:
        if info is None:
            self.screen = None
            self._start_over()
        else:
            wanted = self.wanted_screen if self.wanted_screen is not None else self.screen
            if wanted is None or (wanted != p.ALL_SCREENS and info.by_id(wanted) is None):
                wanted = info.primary.id
            if wanted != self.screen:
                self.screen = wanted
                self._start_over()
            else:  # the same choice: key frames of the screens that changed size or came
                self._start_over(changed)
        self.wake.set()

    def select(self, screen: int) -> None:
        """The viewer chose a screen (or every one): key frames of what it watches now."""
        self.wanted_screen = screen
        if self.link.screens is not None:
            self.screen = screen
            self._start_over()
            self.wake.set()

    def watched(self) -> set[int]:
        info = self.link.screens
        if self.screen is None or info is None:
            return set()
        if self.screen == p.ALL_SCREENS:
            return {m.id for m in info.monitors}
        return {self.screen}

    def _start_over(self, screens: set[int] | None = None) -> None:
        """The next frame of each of ``screens`` (default: every screen watched) is a key
        frame, and what was queued or marked for them is dropped; so is everything about
        screens no longer watched."""
        watched = self.watched()
        screens = watched if screens is None else screens & watched
        self.needs_key = (self.needs_key & watched) | screens
        self.tiles = {s: t for s, t in self.tiles.items() if s in watched and s not in screens}
        if self.forward:
            self.forward = deque(f for f in self.forward if f[0] in watched and f[0] not in screens)

    def behind(self) -> bool:
        """Some screen has changes marked that were not sent yet."""
        return any(self.tiles.values())

    def on_update(self, screen: int, fb, update: p.FrameUpdate) -> None:
        if screen != self.screen and self.screen != p.ALL_SCREENS:
            return
        if screen in self.needs_key or not fb.complete:
            self.wake.set()  # the key frame it waits for includes this change (and may be due)
            return
        if not self.behind() and len(self.in_flight) + len(self.forward) < self.window:
            self.forward.append((screen, update.payload, update.keyframe))
        else:
            # Behind: one frame at a time from now on, each built when the last is acked, so
            # what it gets is never older than the frame it is painting.
            tiles = self.tiles.get(screen)
            if tiles is None:
                tiles = self.tiles[screen] = fb.tiles()
            fb.mark(tiles, update.rects)
            self.window = 1
        self.wake.set()

    def terminate(self, code: int, message: str) -> None:
        """End the connection from another greenlet without waiting (the caller may be the
        agent's reader fanning out, or the checker): the close runs in a greenlet of its own,
        and the reader wakes up and cleans up."""
        if not self.terminating:
            self.terminating = True
            gevent.spawn(self.channel.close, code, message, p.Error(code, message).encode())

    def may(self, permission: str) -> bool:
        return permission in self.grant.keys

    # --------------------------------------------------------------- permissions
    def permissions_age(self) -> float:
        return time.monotonic() - self.checked_at

    def refresh_permissions(self) -> services.Refused | None:
        """Re-evaluate what this technician may do on this device now. Returns the refusal
        (its code 4010 where view was withdrawn) when they may no longer view it; the caller
        closes the connection."""
        try:
            grant = self.current_grant()
        except services.Refused as refusal:
            if refusal.close_code == p.CloseCode.NOT_PERMITTED:
                refusal.close_code = p.CloseCode.PERMISSION_WITHDRAWN
            return refusal
        self.checked_at = time.monotonic()
        if grant.keys != self.grant.keys:
            self.grant = grant
            self.refused_notice.clear()
            self.post(p.Permissions(grant.mask).encode())
            self.link.viewer_changed(self)
        return None

    def current_grant(self) -> services.ViewerGrant:
        """What the technician may do now, or :class:`~app.relay.services.Refused`. An OnDemand
        viewer (``app.relay.ondemand``) computes it from its session instead of a device."""
        return services.viewer_grant(self.grant.sid, self.grant.user_id, self.grant.device_id)

    def allowed(self, permission: str) -> bool:
        """Called by the reader for each input message."""
        if self.permissions_age() > PERMISSION_EVERY:
            refusal = self.refresh_permissions()
            if refusal is not None:
                _refuse(self.channel, refusal.close_code, refusal.message)
                raise Closed(refusal.close_code, refusal.message)
        return self.may(permission)

    # --------------------------------------------------------------- flow control
    def on_ack(self, seq: int) -> None:
        if seq in self.in_flight:
            while self.in_flight and self.in_flight.popleft() != seq:
                pass
            if not self.in_flight and not self.forward and not self.behind():
                self.window = IN_FLIGHT  # caught up
            self.wake.set()
        elif (self.last_seq - seq) % SEQ_MOD >= SEQ_MOD // 2 or self.last_seq == 0:
            raise p.ProtocolError(p.CloseCode.MALFORMED, f"an ACK for frame {seq}, never sent")

    def _next_frame(self) -> bytes | None:
        """The next frame to send: a key frame a screen waits for (once the relay has that
        screen whole), else an update to forward, else one screen's dirty tiles."""
        framebuffers = self.link.framebuffers
        for screen in sorted(self.needs_key):
            fb = framebuffers.get(screen)
            if fb is not None and fb.complete:
                self.needs_key.discard(screen)
                self.tiles.pop(screen, None)
                return self._frame(screen, fb.keyframe(), True)
        if self.forward:
            return self._frame(*self.forward.popleft())
        dirty = sorted(s for s, tiles in self.tiles.items() if tiles)
        if not dirty:
            return None
        self.turn = next((s for s in dirty if s > self.turn), dirty[0])
        tiles = self.tiles[self.turn]
        payload = framebuffers[self.turn].encode_tiles(tiles)
        tiles.clear()
        return self._frame(self.turn, payload, False)

    def _frame(self, screen: int, payload: bytes, keyframe: bool) -> bytes:
        self.last_seq = self.last_seq % (SEQ_MOD - 1) + 1
        self.in_flight.append(self.last_seq)
        return p.encode_frame_update(screen, self.last_seq, payload, keyframe, self.compressor)

    def write_loop(self) -> None:
        channel = self.channel
        try:
            while not channel.closed:
                woken = self.wake.wait(self.link.hub.ping_every)
                self.wake.clear()
                if not woken:
                    channel.send(p.Ping(int(time.time() * 1000)).encode())
                while True:
                    try:
                        channel.send(self.control.get_nowait())
                    except Empty:
                        break
                if self.cursor is not None:
                    cursor, self.cursor = self.cursor, None
                    channel.send(cursor.encode())
                # Updates already queued to forward were accepted within IN_FLIGHT; a frame
                # built from dirty tiles waits for the (smaller) window of a viewer behind.
                while len(self.in_flight) < (IN_FLIGHT if self.forward else self.window):
                    frame = self._next_frame()
                    if frame is None:
                        break
                    channel.send(frame)
        except Closed:
            pass

    # --------------------------------------------------------------- the start
    def greet(self) -> None:
        """What a viewer gets first: who it is, what it may do, and the device's state."""
        self.post(p.Welcome(self.id, self.grant.device_id).encode())
        self.post(p.Permissions(self.grant.mask).encode())
        self.post(p.DeviceState(self.link.online).encode())

    def begin(self, after_confirmation: bool = False) -> None:
        """Start the session: record it, join the device's link, and send the screens. After
        a confirmation (which may have taken minutes) the permissions and the device's state
        are looked at again first."""
        if self.gone.is_set() or self.terminating:
            return
        if after_confirmation:
            refusal = self.refresh_permissions()
            if refusal is not None:
                self.terminate(refusal.close_code, refusal.message)
                return
            # The link may have been dropped and made anew while the agent was away.
            self.link = self.link.hub.link(self.grant.device_id, self.grant.account_id)
        # Join the link before recording the session: on PostgreSQL the write lets other
        # greenlets run, and an agent's frames must already count this viewer as watching.
        link = self.link
        self.started = True
        link.add_viewer(self)
        if after_confirmation:
            self.post(p.DeviceState(link.online).encode())
        if link.status is not None:
            self.post(link.status.encode())
        if link.screens is not None:
            self.post(link.screens.encode())
            self.screens_changed(link.screens, set())
        if link.cursor is not None:
            c = link.cursor
            self.set_cursor(p.Cursor(c.x, c.y, c.visible, link.cursor_shape))
        session_id = self.record_started()
        if session_id is None:
            return
        if self.gone.is_set():  # the reader ended while it was recorded: record the end too
            services.session_ended(session_id, self.grant, self.id, self.used,
                                   self.channel.close_code, self.channel.close_reason)
            return
        self.session_id = session_id

    def record_started(self) -> int | None:
        """Record the session (its RemoteSession id). An OnDemand viewer records its session
        elsewhere and returns None."""
        return services.session_started(self.grant, self.id)


def serve_viewer(app, ws, sid: str | None, user_id: int | None, device_id: int,
                 compress: bool, origin_ok: bool) -> None:
    channel = Channel(ws, p.MAX_VIEWER_MESSAGE)
    if not origin_ok:
        _refuse(channel, p.CloseCode.POLICY, "Connections from another site are not accepted.")
        return
    hub = get_hub(app)
    try:
        grant = services.viewer_grant(sid, user_id, device_id)
        viewer_id = hub.next_viewer_id()
        rules = confirm_rules(grant.membership_id, grant.device_id)
    except services.Refused as refusal:
        _refuse(channel, refusal.close_code, refusal.message)
        return
    except Exception:
        log.exception("relay: admitting a viewer of device %s failed", device_id)
        _refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; try again.")
        return
    link = hub.link(grant.device_id, grant.account_id)
    viewer = ViewerConn(link, channel, viewer_id, grant, compress)
    viewer.greet()
    viewer.writer = gevent.spawn(viewer.write_loop)
    waiter = None
    try:
        plan = confirm.plan_for(viewer, rules)
        if plan is None:
            viewer.begin()
        else:
            waiter = confirm.spawn(app, viewer, plan)
        _read_loop(viewer)
    except p.ProtocolError as err:
        _refuse(channel, err.close_code, err.message)
    except Closed:
        pass
    except Exception:
        log.exception("relay: viewer %s of device %s failed", viewer.id, device_id)
        _refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; reconnect.")
    finally:
        viewer.gone.set()
        if waiter is not None:
            waiter.join(WAITER_STOP)  # it marks the request cancelled
            waiter.kill(block=False)
        channel.close(p.CloseCode.NORMAL)  # a no-op when it is closed already
        channel.linger()
        viewer.writer.kill(block=False)
        viewer.link.remove_viewer(viewer)
        if viewer.session_id is not None:
            services.session_ended(viewer.session_id, viewer.grant, viewer.id, viewer.used,
                                   channel.close_code, channel.close_reason)


def _refuse(channel: Channel, code: int, message: str) -> None:
    """Close from the reading greenlet, saying why, and wait for the peer to take it in."""
    channel.close(code, message, p.Error(code, message).encode())
    channel.linger()


def _read_loop(viewer: ViewerConn) -> None:
    channel, link = viewer.channel, viewer.link
    idle = link.hub.idle_timeout
    while True:
        try:
            with gevent.Timeout(idle, _Idle):
                data = channel.recv()
        except _Idle:
            _refuse(channel, p.CloseCode.IDLE, f"Nothing received for {idle:g} seconds.")
            return
        kind = p.message_type(data)
        if kind not in p.FROM_VIEWER:
            raise p.ProtocolError(p.CloseCode.UNEXPECTED, f"a viewer may not send {kind.name}")
        msg = p.decode(data)
        if not viewer.started:
            _before_start(viewer, msg)
            continue
        need = INPUT_NEEDS.get(kind)
        if need is not None:
            if not viewer.allowed(need):
                if need not in viewer.refused_notice:  # say it once, not for every mouse move
                    viewer.refused_notice.add(need)
                    viewer.post(p.Error(p.CloseCode.PERMISSION_WITHDRAWN,
                                        f"{INPUT_LABELS[need]}: not permitted.").encode())
                continue
            if link.agent is None:
                continue
            if isinstance(msg, p.Pointer) and (link.screens is None or link.screens.by_id(msg.screen) is None):
                continue
            link.agent.post(data)
            viewer.used.add(need)
            if isinstance(msg, p.Power):
                services.audit_power(viewer.grant, msg.action)
        elif isinstance(msg, p.Ack):
            viewer.on_ack(msg.seq)
        elif isinstance(msg, p.SelectScreen):
            if (msg.screen != p.ALL_SCREENS and link.screens is not None
                    and link.screens.by_id(msg.screen) is None):
                raise p.ProtocolError(p.CloseCode.MALFORMED, f"there is no screen {msg.screen}")
            viewer.select(msg.screen)
        elif isinstance(msg, p.Ping):
            viewer.post(p.Pong(msg.nonce).encode())


def _before_start(viewer: ViewerConn, msg) -> None:
    """While a confirmation is awaited: pings are answered, a screen choice is remembered,
    input is dropped (nothing may reach the host before somebody allowed it)."""
    if isinstance(msg, p.Ping):
        viewer.post(p.Pong(msg.nonce).encode())
    elif isinstance(msg, p.SelectScreen):
        viewer.wanted_screen = msg.screen
    elif isinstance(msg, p.Ack):
        viewer.on_ack(msg.seq)  # no frame was sent yet: malformed
