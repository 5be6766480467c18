"""One Host agent's connection to the relay (``/relay/agent``, docs/protocol.md).

``serve_agent`` runs in the request's greenlet and is the connection's reader: it admits the
agent by its bearer token, waits for HELLO, writes presence, attaches the agent to its
:class:`~app.relay.hub.DeviceLink`, then reads messages until the connection ends. A second
greenlet writes: input, control and acks for the agent go through a bounded queue.

Called by ``app.relay.views.agent``.
"""
from __future__ import annotations

import logging

import gevent
from gevent.queue import Empty, Full, Queue

from agents.common import protocol as p
from app.relay import services
from app.relay.hub import get_hub
from app.relay.wsio import Channel, Closed

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 15.0
# Input and control for one agent; an agent that lets this many pile up is not reading.
QUEUE_SIZE = 1024


class _Idle(Exception):
    pass


class AgentConn:
    def __init__(self, channel: Channel, grant: services.AgentGrant, hub):
        self.channel = channel
        self.hub = hub
        self.grant = grant
        self.queue: Queue = Queue(maxsize=QUEUE_SIZE)
        self.decompressor = p.StreamDecompressor()
        self.writer: gevent.Greenlet | None = None
        self.terminating = False

    def post(self, data: bytes) -> None:
        """Queue a message for the agent; never blocks the caller."""
        try:
            self.queue.put_nowait(data)
        except Full:
            self.terminate(p.CloseCode.POLICY, "The agent stopped reading its messages.")

    def terminate(self, code: int, message: str) -> None:
        """End the connection from another greenlet (replaced, revoked, not reading) without
        waiting: the close runs in a greenlet of its own, and the reader wakes up and cleans up."""
        if not self.terminating:
            self.terminating = True
            gevent.spawn(self.channel.close, code, message, p.Error(code, message).encode())

    def write_loop(self) -> None:
        channel = self.channel
        try:
            while not channel.closed:
                try:
                    data = self.queue.get(timeout=self.hub.ping_every)
                except Empty:
                    data = p.Ping(int(gevent.get_hub().loop.now() * 1000)).encode()
                channel.send(data)
        except Closed:
            pass


def refuse(channel: Channel, code: int, message: str) -> None:
    """Close from the reading greenlet, saying why, and wait for the peer to take it in."""
    channel.close(code, message, p.Error(code, message).encode())
    channel.linger()


def serve_agent(app, ws, token: str | None) -> None:
    channel = Channel(ws, p.MAX_AGENT_MESSAGE)
    try:
        grant = services.admit_agent(token)
    except services.Refused as refusal:
        refuse(channel, refusal.close_code, refusal.message)
        return
    except Exception:
        log.exception("relay: admitting an agent failed")
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; reconnect later.")
        return
    try:
        with gevent.Timeout(HELLO_TIMEOUT, _Idle):
            hello = p.decode(channel.recv())
    except _Idle:
        refuse(channel, p.CloseCode.IDLE, "No HELLO within 15 seconds.")
        return
    except p.ProtocolError as err:
        refuse(channel, err.close_code, err.message)
        return
    except Closed:
        return
    if not isinstance(hello, p.Hello):
        refuse(channel, p.CloseCode.UNEXPECTED, "The first message must be HELLO.")
        return
    if hello.version != p.PROTOCOL_VERSION:
        refuse(channel, p.CloseCode.UNSUPPORTED_VERSION,
               f"This relay speaks protocol version {p.PROTOCOL_VERSION}, not {hello.version}.")
        return

    hub = get_hub(app)
    try:
        services.agent_online(grant.device_id, hello, hub.node)
    except Exception:
        log.exception("relay: presence of device %s could not be written", grant.device_id)
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; reconnect later.")
        return
    conn = AgentConn(channel, grant, hub)
    link = hub.link(grant.device_id, grant.account_id)
    link.attach_agent(conn, hello)
    conn.writer = gevent.spawn(conn.write_loop)
    try:
        read_loop(conn, link)
    except p.ProtocolError as err:
        refuse(channel, err.close_code, err.message)
    except Closed:
        pass
    except Exception:
        log.exception("relay: agent of device %s failed", grant.device_id)
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; reconnect.")
    finally:
        channel.close(p.CloseCode.NORMAL)  # a no-op when it is closed already
        channel.linger()
        conn.writer.kill(block=False)
        if link.detach_agent(conn):
            services.agent_offline(grant.device_id)


def _may_send(kind: p.MsgType) -> None:
    """A Host agent may send what docs/protocol.md lists from agents, HELLO only first."""
    if kind not in p.FROM_AGENT or kind is p.MsgType.HELLO:
        raise p.ProtocolError(p.CloseCode.UNEXPECTED, f"an agent may not send {kind.name} now")


def _host_message(conn: AgentConn, link, msg, data) -> None:
    """What only a Host agent sends (an OnDemand agent has its own, ``app.relay.ondemand``)."""
    if isinstance(msg, p.PowerResult):
        link.to_viewers(data)
    elif isinstance(msg, p.ConfirmAnswer):
        link.confirm_answer(conn, msg)


def read_loop(conn: AgentConn, link, check=_may_send, other=_host_message, who: str = "") -> None:
    """An agent's messages until its connection ends: ``check(kind)`` raises for a message it
    may not send now; frames, screens, cursor, status, clipboard, pings and errors go to
    ``link``, anything else to ``other(conn, link, msg, data)``."""
    channel, idle = conn.channel, conn.hub.idle_timeout
    who = who or f"agent of device {conn.grant.device_id}"
    while True:
        try:
            with gevent.Timeout(idle, _Idle):
                data = channel.recv()
        except _Idle:
            refuse(channel, p.CloseCode.IDLE, f"Nothing received for {idle:g} seconds.")
            return
        check(p.message_type(data))
        msg = p.decode(data, conn.decompressor)
        if isinstance(msg, p.FrameUpdate):
            link.frame_update(msg)
            conn.post(p.Ack(msg.seq).encode())
        elif isinstance(msg, p.ScreenInfo):
            link.set_screens(msg)
        elif isinstance(msg, p.Cursor):
            link.set_cursor(msg)
        elif isinstance(msg, p.Status):
            link.set_status(msg)
        elif isinstance(msg, p.Clipboard):
            link.to_viewers(data, needs="clipboard")  # an OnDemand link holds no viewer before consent
        elif isinstance(msg, p.Ping):
            conn.post(p.Pong(msg.nonce).encode())
        elif isinstance(msg, p.Error):
            log.info("relay: %s reports error %s: %s", who, msg.code, msg.message)
        else:
            other(conn, link, msg, data)
