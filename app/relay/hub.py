"""The relay hub: which agents and viewers are connected to this process, per device.

One :class:`Hub` per Portal process (``get_hub(app)``), created when the server starts
(``app/server.py``) or at the first websocket. It keeps a :class:`DeviceLink` per device with a
connection: the agent (at most one; a newer connection of the same device replaces the older
with 4008), the screens it reported, one :class:`~app.relay.framebuffer.Framebuffer` per screen
while anybody watches, and the viewers. Agent updates are painted into the framebuffer once and
handed to every viewer of that screen (the one capture serves them all); each viewer's flow
control lives in ``app.relay.viewer``.

Everything here runs in the connections' greenlets and never blocks: messages for a peer go to
that peer's bounded queue and its writer greenlet sends them. The one database user is the
checker greenlet (:meth:`Hub.check_loop`): about once a second it re-evaluates every viewer's
effective permissions and writes batched presence; every few seconds it checks that connected
devices are still allowed to be; every half minute it drops OnDemand sessions that waited too
long (``app.relay.ondemand.check``). No SQL runs per message.

OnDemand sessions (``app.relay.ondemand``) have links of their own, kept in ``Hub.ondemand`` by
session id, never in ``Hub.links``.
"""
from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

import gevent

from agents.common import protocol as p
from app.relay.framebuffer import Framebuffer

if TYPE_CHECKING:
    from app.relay.agent import AgentConn
    from app.relay.confirm import HostQuestion
    from app.relay.ondemand import OnDemandLink
    from app.relay.viewer import ViewerConn

PERMISSION_EVERY = 1.0
DEVICE_CHECK_EVERY = 5.0
PRESENCE_EVERY = 60.0
STATUS_FLUSH_EVERY = 5.0


class DeviceLink:
    """What the relay holds for one device: agent, screens, framebuffers, viewers."""

    def __init__(self, hub: "Hub", device_id: int, account_id: int):
        self.hub = hub
        self.device_id = device_id
        self.account_id = account_id
        self.agent: AgentConn | None = None
        self.hello: p.Hello | None = None
        self.status: p.Status | None = None
        self.screens: p.ScreenInfo | None = None
        self.framebuffers: dict[int, Framebuffer] = {}
        self.viewers: dict[int, ViewerConn] = {}
        self.cursor: p.Cursor | None = None
        self.cursor_shape: p.CursorShape | None = None
        # Confirm access: CONFIRM_REQUESTs sent to the agent, by request id (app.relay.confirm).
        self.questions: dict[int, HostQuestion] = {}

    @property
    def online(self) -> bool:
        return self.agent is not None

    # ------------------------------------------------------------------ the agent side
    def attach_agent(self, conn: "AgentConn", hello: p.Hello) -> None:
        old, self.agent = self.agent, conn
        if old is not None:
            old.terminate(p.CloseCode.REPLACED, "Replaced by a newer connection of this device.")
        self.hello = hello
        self.status = p.Status(hello.user, hello.locked)
        self._reset_screens()
        for viewer in self.viewers.values():
            viewer.post(p.DeviceState(True).encode())
            viewer.post(self.status.encode())
            conn.post(self._session(p.SessionEvent.JOINED, viewer))

    def detach_agent(self, conn: "AgentConn") -> bool:
        """Forget the agent if it is still this device's; True when it was (presence goes
        offline only then: a replaced connection leaves its successor online)."""
        if self.agent is not conn:
            return False
        self.agent = None
        self._reset_screens()
        for viewer in self.viewers.values():
            viewer.post(p.DeviceState(False).encode())
        self.hub.drop_if_idle(self)
        return True

    def _reset_screens(self) -> None:
        self.screens = None
        self.framebuffers = {}
        self.cursor = self.cursor_shape = None
        for viewer in self.viewers.values():
            viewer.screens_changed(None, set())

    def set_screens(self, info: p.ScreenInfo) -> None:
        changed = set()
        kept: dict[int, Framebuffer] = {}
        for monitor in info.monitors:
            fb = self.framebuffers.get(monitor.id)
            if fb is not None and (fb.width, fb.height) == (monitor.width, monitor.height):
                kept[monitor.id] = fb
            else:
                changed.add(monitor.id)
                if self.viewers:
                    kept[monitor.id] = Framebuffer(monitor.width, monitor.height)
        self.screens = info
        self.framebuffers = kept
        encoded = info.encode()
        for viewer in self.viewers.values():
            viewer.post(encoded)
            viewer.screens_changed(info, changed)
        if self.viewers and changed and self.agent is not None:
            self.agent.post(p.RequestKeyframe(p.ALL_SCREENS).encode())

    def frame_update(self, update: p.FrameUpdate) -> None:
        monitor = self.screens.by_id(update.screen) if self.screens else None
        if monitor is None:
            raise p.ProtocolError(p.CloseCode.MALFORMED,
                                  f"a frame update for screen {update.screen}, not in SCREEN_INFO")
        p.check_bounds(update.rects, monitor.width, monitor.height)
        fb = self.framebuffers.get(update.screen)
        if fb is None:  # nobody watches: nothing to keep
            return
        fb.apply(update.rects)
        if update.keyframe:
            fb.complete = True
        for viewer in self.viewers.values():
            viewer.on_update(update.screen, fb, update)

    def set_cursor(self, cursor: p.Cursor) -> None:
        self.cursor = cursor
        if cursor.shape is not None:
            self.cursor_shape = cursor.shape
        for viewer in self.viewers.values():
            viewer.set_cursor(cursor)

    def set_status(self, status: p.Status) -> None:
        self.status = status
        self.hub.pending_status[self.device_id] = status.user
        encoded = status.encode()
        for viewer in self.viewers.values():
            viewer.post(encoded)

    def confirm_answer(self, conn: "AgentConn", answer: p.ConfirmAnswer) -> None:
        """The person at the host answered; the viewer's waiter records it. An answer to a
        question this connection was not asked (or no longer waited for) is ignored."""
        question = self.questions.get(answer.request)
        if question is not None and question.agent is conn and question.answer is None:
            question.answer = answer.answer
            question.event.set()

    def to_viewers(self, data: bytes, needs: str | None = None) -> None:
        for viewer in self.viewers.values():
            if needs is None or viewer.may(needs):
                viewer.post(data)

    # ------------------------------------------------------------------ the viewer side
    def add_viewer(self, viewer: "ViewerConn") -> None:
        first = not self.viewers
        self.viewers[viewer.id] = viewer
        if self.screens is not None and first:
            self.framebuffers = {m.id: Framebuffer(m.width, m.height) for m in self.screens.monitors}
        if self.agent is not None:
            self.agent.post(self._session(p.SessionEvent.JOINED, viewer))
            if first and self.screens is not None:
                self.agent.post(p.RequestKeyframe(p.ALL_SCREENS).encode())

    def remove_viewer(self, viewer: "ViewerConn") -> None:
        if self.viewers.pop(viewer.id, None) is None:
            return
        if self.agent is not None:
            self.agent.post(self._session(p.SessionEvent.LEFT, viewer))
        if not self.viewers:
            self.framebuffers = {}  # the agent stops capturing; start afresh next time
        self.hub.drop_if_idle(self)

    def viewer_changed(self, viewer: "ViewerConn") -> None:
        if self.agent is not None:
            self.agent.post(self._session(p.SessionEvent.CHANGED, viewer))

    def _session(self, event: p.SessionEvent, viewer: "ViewerConn") -> bytes:
        return p.Session(event, viewer.id, len(self.viewers), viewer.grant.mask,
                         p.clip_str8(viewer.grant.technician)).encode()


class Hub:
    def __init__(self, app):
        from app.relay.services import node_name

        self.app = app
        self.node = node_name()
        self.ping_every = float(app.config.get("RELAY_PING_EVERY", p.PING_EVERY))
        self.idle_timeout = float(app.config.get("RELAY_IDLE_TIMEOUT", p.IDLE_TIMEOUT))
        self.links: dict[int, DeviceLink] = {}
        # OnDemand sessions by session id (app.relay.ondemand): apart from the devices, so that
        # device N and OnDemand session N never share a link.
        self.ondemand: dict[int, OnDemandLink] = {}
        self.ondemand_check_every = float(app.config.get("ONDEMAND_CHECK_EVERY", 30))
        self.pending_status: dict[int, str] = {}
        self._viewer_ids = itertools.count(1)
        self._checker: gevent.Greenlet | None = None

    def start(self) -> None:
        if self._checker is not None:
            return
        from app.relay.services import forget_node

        with self.app.app_context():
            forget_node(self.node)
            from app.relay.ondemand import forget_node as forget_ondemand

            forget_ondemand(self.node)
        self._checker = gevent.spawn(self.check_loop)

    def next_viewer_id(self) -> int:
        return next(self._viewer_ids)

    def link(self, device_id: int, account_id: int) -> DeviceLink:
        link = self.links.get(device_id)
        if link is None:
            link = self.links[device_id] = DeviceLink(self, device_id, account_id)
        return link

    def drop_if_idle(self, link: DeviceLink) -> None:
        if link.agent is None and not link.viewers and self.links.get(link.device_id) is link:
            del self.links[link.device_id]

    # ------------------------------------------------------------------ the checker
    def check_loop(self) -> None:
        last_devices = last_presence = last_status = last_ondemand = time.monotonic()
        while True:
            gevent.sleep(PERMISSION_EVERY / 2)
            now = time.monotonic()
            try:
                with self.app.app_context():
                    self.check_viewers()
                    if now - last_status >= STATUS_FLUSH_EVERY:
                        last_status = now
                        self.flush_status()
                    if now - last_devices >= DEVICE_CHECK_EVERY:
                        last_devices = now
                        self.check_devices()
                    if now - last_presence >= PRESENCE_EVERY:
                        last_presence = now
                        self.touch_presence()
                    if now - last_ondemand >= self.ondemand_check_every:
                        last_ondemand = now
                        from app.relay.ondemand import check

                        check(self)
            except Exception:  # keep checking: a database hiccup must not end enforcement
                self.app.logger.exception("relay checker round failed")

    def check_viewers(self) -> None:
        for link in [*self.links.values(), *self.ondemand.values()]:
            for viewer in list(link.viewers.values()):
                if viewer.permissions_age() >= PERMISSION_EVERY * 0.9 and not viewer.terminating:
                    refusal = viewer.refresh_permissions()
                    if refusal is not None:
                        viewer.terminate(refusal.close_code, refusal.message)

    def check_devices(self) -> None:
        from app.relay.services import refused_devices

        connected = {d for d, link in self.links.items() if link.agent is not None or link.viewers}
        for device_id, refusal in refused_devices(connected).items():
            link = self.links.get(device_id)
            if link is None:
                continue
            if link.agent is not None:
                link.agent.terminate(refusal.close_code, refusal.message)
            if refusal.close_code == p.CloseCode.DEVICE_REVOKED:
                for viewer in list(link.viewers.values()):
                    viewer.terminate(refusal.close_code, refusal.message)

    def flush_status(self) -> None:
        from app.relay.services import agent_status

        pending, self.pending_status = self.pending_status, {}
        for device_id, user in pending.items():
            agent_status(device_id, user)

    def touch_presence(self) -> None:
        from app.relay.services import touch_agents

        touch_agents([d for d, link in self.links.items() if link.agent is not None])


def get_hub(app) -> Hub:
    """This process's hub, started on first use."""
    hub = app.extensions.get("tessera.relay")
    if hub is None:
        hub = app.extensions["tessera.relay"] = Hub(app)
        hub.start()
    return hub
