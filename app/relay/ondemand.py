"""OnDemand sessions in the relay (docs/protocol.md, "OnDemand sessions"; spec D1–D3).

A ``tessera-ondemand`` agent has no device record and no token: it connects to
``/relay/ondemand`` with the one-time key of a session, and the session's technician watches it
through ``/relay/ondemand/<session id>/view``. :func:`serve_agent` and :func:`serve_viewer`
(called by ``app.relay.views``) run those connections, joined by an :class:`OnDemandLink`: a
:class:`~app.relay.hub.DeviceLink` (screens, framebuffers, cursor: the device code serves both)
kept in ``Hub.ondemand`` by session id, apart from ``Hub.links`` by device id, so that device N
and session N never meet; it writes no device presence.

**The agent.** The key is checked (every attempt audited as ``ondemand.key_tried``, and
rate-limited before the upgrade by ``app.relay.views``): unknown or used → 4001, expired → 4015.
HELLO within 15 s, from an agent no older than ``ONDEMAND_MIN_AGENT_VERSION`` (else 4002, "download
it again"); then the key is spent and the session waits in its technician's queue. Nothing of
the screen (``SCREEN_INFO``, ``FRAME_UPDATE``, ``CURSOR``) may come before the person at the
computer allowed "View screen" (4007).

**The viewer.** Only the session's own technician, with OnDemand enabled and an OnDemand role
applying now (``app.ondemand.services.technician_access``, the console page's rule too), one
console at a time (4008). After its greeting the viewer waits (``CONFIRM_STATE`` waiting) while
the agent shows its consent window (``CONSENT_REQUEST``: what the technician's roles allow among
View screen, Keyboard and mouse, Clipboard). Declined, or no answer in time: ``CONFIRM_STATE``
denied / no answer and 4012; the session waits again. Allowed: the viewer's permissions are the
technician's OnDemand permissions and what was allowed (``remote_session`` implied), the session
is *active*, and from then on it is an ordinary :class:`~app.relay.viewer.ViewerConn` (flow
control, input checked against its permissions, which the hub's checker re-evaluates about every
second: the technician losing OnDemand or its role closes it with 4010). When the console closes
and the agent stays, the session waits again; the next Start asks the person again.

**Endings.** The person at the computer ends it (the agent closes with 4013: the console is
closed with 4013 at once); the agent goes otherwise (4016); the technician rejects it
(:func:`rejected`: the agent gets 4014); it waited over an hour (the hub's checker,
:func:`check`: 4015). Each time the session is deleted, with its ``ondemand.*`` audit event.
A relay that starts forgets the sessions it held before (:func:`forget_node`).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

import gevent
from gevent.event import Event

from agents.common import protocol as p
from app.errors import Forbidden, NotFound
from app.extensions import db
from app.models import utcnow
from app.models.ondemand import OnDemandState
from app.ondemand import services as ondemand
from app.relay import services
from app.relay.agent import HELLO_TIMEOUT, AgentConn, read_loop, refuse
from app.relay.hub import PERMISSION_EVERY, DeviceLink, get_hub
from app.relay.viewer import WAITER_STOP, ViewerConn
from app.relay.viewer import _read_loop as viewer_read_loop
from app.relay.wsio import Channel, Closed

log = logging.getLogger(__name__)

IMPLIED = "remote_session"  # an allowed session implies it (the console's own checks use it)
CONSENT_GRACE = 5.0  # how much longer than the consent window the relay waits (the network)
LABELS = {"view_screen": "View screen", "keyboard_mouse": "Keyboard and mouse", "clipboard": "Clipboard"}
SCREEN_MESSAGES = frozenset({p.MsgType.SCREEN_INFO, p.MsgType.FRAME_UPDATE, p.MsgType.CURSOR})
# What an OnDemand agent may send once it said HELLO (no confirm-access answers, no power results).
AGENT_MAY = p.FROM_AGENT - {p.MsgType.HELLO, p.MsgType.CONFIRM_ANSWER, p.MsgType.POWER_RESULT}

WAITING = "Waiting for the person at the computer to allow the session…"
DECLINED = "The person at the computer declined the session."
NO_ANSWER = "Nobody at the computer answered in time."
NOT_YET = "The visitor has not connected yet: they need to start the OnDemand app with the key."
ELSEWHERE = "The visitor's computer is connected to another relay node ({node}); open the console there."
GONE = "The visitor's computer is no longer connected: the session is over."
BUSY = "This session is already open in another console."
# To the viewer, by how the agent's connection ended (else AGENT_GONE).
VIEWER_ENDINGS = {
    p.CloseCode.ENDED_BY_HOST: (p.CloseCode.ENDED_BY_HOST, "The person at the computer ended the session."),
    p.CloseCode.REJECTED: (p.CloseCode.REJECTED, "The session was rejected: its key no longer works."),
    p.CloseCode.EXPIRED: (p.CloseCode.EXPIRED, "The session waited more than an hour: it has ended."),
}
AGENT_GONE = "The visitor's computer disconnected: the session is over."
# To the agent.
REJECTED = "The technician rejected this session: its key no longer works."
EXPIRED = "Nobody started this session within an hour: it has ended. Ask the technician for a new key."
VANISHED = "This session was rejected or has ended: its key no longer works."
# In the audit log (ondemand.ended), by the close code of the agent's connection.
HOW = {
    p.CloseCode.ENDED_BY_HOST: "Ended at the computer (Disconnect or Ctrl+Shift+X).",
    p.CloseCode.NORMAL: "The OnDemand app closed its connection.",
    p.CloseCode.GOING_AWAY: "The OnDemand app closed its connection.",
    p.CloseCode.IDLE: "The visitor's connection went silent.",
    p.CloseCode.SERVER_ERROR: "The relay failed.",
}


class _Idle(Exception):
    pass


def too_old(version: str, minimum: str) -> bool:
    """Whether an agent reporting ``version`` is older than ``minimum`` (PEP 440 versions with
    ``packaging`` when it is installed, else dotted numbers); an unreadable version is too old."""
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return _numbers(version) < _numbers(minimum)
    try:
        return Version(version) < Version(minimum)
    except InvalidVersion:
        return True


def _numbers(text: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text or "")
    numbers = [int(n) for n in match.group(1).split(".")] if match else []
    while numbers and numbers[-1] == 0:  # 1.0 == 1.0.0
        numbers.pop()
    return tuple(numbers)


# ------------------------------------------------------------------------------ the link
@dataclass
class ConsentQuestion:
    """A ``CONSENT_REQUEST`` sent to one agent connection; ``answer`` is the mask of its
    ``CONSENT`` (None while it has not answered)."""

    agent: AgentConn
    mask: int
    answer: int | None = None
    event: Event = field(default_factory=Event)


class OnDemandLink(DeviceLink):
    """One OnDemand session on this relay: its agent, the technician's console (at most one),
    the consent question, and what the person at the computer let through."""

    def __init__(self, hub, session_id: int, account_id: int):
        super().__init__(hub, session_id, account_id)
        self.session_id = session_id
        self.console: OnDemandViewer | None = None
        self.question: ConsentQuestion | None = None
        self.shows_screen = False  # the person at the computer allowed View screen
        self.used: set[str] = set()  # permissions used by the technician, for the record

    def set_status(self, status: p.Status) -> None:
        self.status = status  # no device to write presence to
        self.to_viewers(status.encode())

    def ask(self, asks: frozenset[str], technician: str, timeout: int) -> ConsentQuestion:
        question = self.question = ConsentQuestion(self.agent, p.permission_mask(asks))
        self.shows_screen = False  # nothing of the screen until this is answered
        self.agent.post(p.ConsentRequest(question.mask, timeout, p.clip_str8(technician)).encode())
        return question

    def consent(self, conn: AgentConn, consent: p.Consent) -> None:
        """The agent's ``CONSENT``; one that answers no open question is ignored, one allowing
        what was not asked for is malformed."""
        question = self.question
        if question is None or question.agent is not conn or question.answer is not None:
            return
        if consent.permissions & ~question.mask:
            raise p.ProtocolError(p.CloseCode.MALFORMED,
                                  "a CONSENT allowing a permission that was not asked for")
        question.answer = consent.permissions
        self.shows_screen = "view_screen" in p.permission_keys(consent.permissions)
        question.event.set()

    def agent_gone(self, conn: AgentConn, close_code: int | None) -> None:
        """The agent's connection ended: close the console at once, saying how."""
        if self.agent is not conn:
            return
        self.agent = None
        if self.question is not None:
            self.question.event.set()
        code, message = VIEWER_ENDINGS.get(close_code, (p.CloseCode.AGENT_GONE, AGENT_GONE))
        if self.console is not None:
            self.console.terminate(code, message)

    def close_agent(self, code: int, message: str) -> None:
        if self.agent is not None:
            self.agent.terminate(code, message)


# ------------------------------------------------------------------------------ the agent
def serve_agent(app, ws, key: str | None, address: str) -> None:
    channel = Channel(ws, p.MAX_AGENT_MESSAGE)
    try:
        row = ondemand.check_key(key or "", address)  # audited as ondemand.key_tried
        session_id, account_id = row.id, row.account_id
    except ondemand.KeyRefused as refusal:
        refuse(channel, p.CloseCode.EXPIRED if refusal.expired else p.CloseCode.UNAUTHENTICATED,
               refusal.message)
        return
    except Exception:
        log.exception("relay: checking an OnDemand key failed")
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; try again later.")
        return
    finally:
        db.session.rollback()  # no database connection held while the agent waits
    hello = _hello(app, channel)
    if hello is None:
        return
    hub = get_hub(app)
    try:
        ondemand.claim(session_id, ondemand.Visitor(hello.hostname, hello.os, hello.user,
                                                    hello.agent_version), hub.node)
    except ondemand.KeyRefused as refusal:
        refuse(channel, p.CloseCode.EXPIRED if refusal.expired else p.CloseCode.UNAUTHENTICATED,
               refusal.message)
        return
    except Exception:
        log.exception("relay: OnDemand session %s could not be marked connected", session_id)
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; try again later.")
        return
    finally:
        db.session.rollback()
    conn = AgentConn(channel, services.AgentGrant(session_id, account_id, hello.hostname), hub)
    link = OnDemandLink(hub, session_id, account_id)
    hub.ondemand[session_id] = link
    link.attach_agent(conn, hello)
    conn.writer = gevent.spawn(conn.write_loop)
    try:
        _agent_read_loop(conn, link)
    except p.ProtocolError as err:
        refuse(channel, err.close_code, err.message)
    except Closed:
        pass
    except Exception:
        log.exception("relay: OnDemand agent of session %s failed", session_id)
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed.")
    finally:
        channel.close(p.CloseCode.NORMAL)  # a no-op when it is closed already
        code = channel.close_code
        link.agent_gone(conn, code)
        if hub.ondemand.get(session_id) is link:
            del hub.ondemand[session_id]
        channel.linger()
        conn.writer.kill(block=False)
        _ended(session_id, code, link)


def _hello(app, channel: Channel) -> p.Hello | None:
    """The agent's HELLO, or None when it was refused (and told why)."""
    try:
        with gevent.Timeout(HELLO_TIMEOUT, _Idle):
            hello = p.decode(channel.recv())
    except _Idle:
        refuse(channel, p.CloseCode.IDLE, f"No HELLO within {HELLO_TIMEOUT:g} seconds.")
        return None
    except p.ProtocolError as err:
        refuse(channel, err.close_code, err.message)
        return None
    except Closed:
        return None
    if not isinstance(hello, p.Hello):
        refuse(channel, p.CloseCode.UNEXPECTED, "The first message must be HELLO.")
        return None
    if hello.version != p.PROTOCOL_VERSION:
        refuse(channel, p.CloseCode.UNSUPPORTED_VERSION,
               f"This relay speaks protocol version {p.PROTOCOL_VERSION}, not {hello.version}.")
        return None
    minimum = app.config.get("ONDEMAND_MIN_AGENT_VERSION", "0")
    if too_old(hello.agent_version, minimum):
        refuse(channel, p.CloseCode.UNSUPPORTED_VERSION,
               f"This OnDemand app (version {hello.agent_version[:40] or 'unknown'}) is too old for "
               f"this server, which needs {minimum} or later: download it again from the link "
               "the technician sent.")
        return None
    return hello


def _agent_read_loop(conn: AgentConn, link: OnDemandLink) -> None:
    def check(kind: p.MsgType) -> None:
        if kind not in AGENT_MAY:
            raise p.ProtocolError(p.CloseCode.UNEXPECTED, f"an OnDemand agent may not send {kind.name} now")
        if kind in SCREEN_MESSAGES and not link.shows_screen:
            raise p.ProtocolError(p.CloseCode.UNEXPECTED,
                                  f"{kind.name} before the person at the computer allowed View screen")

    def consent(conn: AgentConn, link: OnDemandLink, msg, data) -> None:
        if isinstance(msg, p.Consent):
            link.consent(conn, msg)

    read_loop(conn, link, check, consent, who=f"OnDemand agent of session {link.session_id}")


def _ended(session_id: int, close_code: int | None, link: OnDemandLink) -> None:
    """Delete the session and audit how it ended (unless it was rejected or expired, which
    deleted and audited it already)."""
    if close_code in (p.CloseCode.REJECTED, p.CloseCode.EXPIRED):
        return
    if close_code in HOW:
        how = HOW[close_code]
    elif close_code in (None, 1005, 1006):
        how = "The connection to the visitor's computer was lost."
    else:
        how = f"The relay closed the visitor's connection (code {close_code})."
    used = link.used | (link.console.used if link.console is not None else set())  # still closing
    try:
        ondemand.finish(session_id, how, used)
    except Exception:
        log.exception("relay: the end of OnDemand session %s could not be recorded", session_id)
        db.session.rollback()


# ------------------------------------------------------------------------------ the viewer
@dataclass(frozen=True)
class SessionView:
    """What the relay needs of the session row when a console connects."""

    state: OnDemandState
    relay_node: str
    asks: frozenset[str]


def ondemand_grant(sid: str | None, user_id: int | None, session_id: int, allowed: frozenset[str],
                   at=None) -> tuple[services.ViewerGrant, SessionView]:
    """What the technician may do in the session now, given what the person at the computer
    ``allowed``, or :class:`~app.relay.services.Refused`: 4001 not (or no longer) signed in,
    4009 not their session or no OnDemand now (the reason said)."""
    at = at or utcnow()
    try:
        row, user = services.signed_in(sid, user_id, at)
        try:
            access = ondemand.technician_access(user_id, session_id, at)
        except (NotFound, Forbidden) as err:
            raise services.Refused(p.CloseCode.NOT_PERMITTED, err.message) from None
        session = access.session
        grant = services.ViewerGrant(sid, user_id, access.membership.id, user.display_name,
                                     user.username, session.id, session.account_id,
                                     session.hostname, (access.asks & allowed) | {IMPLIED})
        view = SessionView(session.state, session.relay_node, access.asks)
        services.keep_signed_in(row, at)
        return grant, view
    finally:
        db.session.rollback()


class OnDemandViewer(ViewerConn):
    """The technician's console of an OnDemand session: a viewer whose permissions come from
    their OnDemand roles and the consent, and whose session is recorded on the OnDemand row."""

    link: OnDemandLink

    def __init__(self, link: OnDemandLink, channel: Channel, viewer_id: int,
                 grant: services.ViewerGrant, compress: bool, asks: frozenset[str]):
        super().__init__(link, channel, viewer_id, grant, compress)
        self.asks = asks  # what the consent window asks for
        self.consented: frozenset[str] = frozenset()  # what the person at the computer allowed
        self.used = set()

    def current_grant(self) -> services.ViewerGrant:
        try:
            return ondemand_grant(self.grant.sid, self.grant.user_id, self.link.session_id,
                                  self.consented)[0]
        except services.Refused as refusal:
            if refusal.close_code != p.CloseCode.NOT_PERMITTED or ondemand.existing([self.link.session_id]):
                raise
        # The session was deleted (rejected or expired, here or through another node) before
        # the checker closed its agent: close it now; its ending closes this console, saying so.
        self.link.close_agent(p.CloseCode.REJECTED, VANISHED)
        return self.grant

    def record_started(self) -> None:
        return None  # ondemand.started recorded it


def serve_viewer(app, ws, sid: str | None, user_id: int | None, session_id: int,
                 compress: bool, origin_ok: bool) -> None:
    channel = Channel(ws, p.MAX_VIEWER_MESSAGE)
    if not origin_ok:
        refuse(channel, p.CloseCode.POLICY, "Connections from another site are not accepted.")
        return
    hub = get_hub(app)
    try:
        grant, view = ondemand_grant(sid, user_id, session_id, frozenset())
    except services.Refused as refusal:
        refuse(channel, refusal.close_code, refusal.message)
        return
    except Exception:
        log.exception("relay: admitting a console of OnDemand session %s failed", session_id)
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; try again.")
        return
    # From here to claiming the console nothing yields: two consoles cannot both get it.
    link = hub.ondemand.get(session_id)
    if view.state is OnDemandState.created:
        refuse(channel, p.CloseCode.NOT_PERMITTED, NOT_YET)
        return
    if link is None or link.agent is None:
        if view.relay_node and view.relay_node != hub.node:
            refuse(channel, p.CloseCode.NOT_PERMITTED, ELSEWHERE.format(node=view.relay_node))
        else:
            refuse(channel, p.CloseCode.AGENT_GONE, GONE)
        return
    if link.console is not None:
        refuse(channel, p.CloseCode.REPLACED, BUSY)
        return
    viewer = link.console = OnDemandViewer(link, channel, hub.next_viewer_id(), grant, compress, view.asks)
    viewer.greet()
    viewer.writer = gevent.spawn(viewer.write_loop)
    waiter = gevent.spawn(consent_then_begin, app, viewer)
    try:
        viewer_read_loop(viewer)
    except p.ProtocolError as err:
        refuse(channel, err.close_code, err.message)
    except Closed:
        pass
    except Exception:
        log.exception("relay: console %s of OnDemand session %s failed", viewer.id, session_id)
        refuse(channel, p.CloseCode.SERVER_ERROR, "The relay failed; reconnect.")
    finally:
        viewer.gone.set()
        waiter.join(WAITER_STOP)
        waiter.kill(block=False)
        channel.close(p.CloseCode.NORMAL)  # a no-op when it is closed already
        channel.linger()
        viewer.writer.kill(block=False)
        link.remove_viewer(viewer)
        link.used |= viewer.used
        if viewer.started and link.agent is not None:
            try:  # the agent stays: the session waits for the next Start
                ondemand.stopped_viewing(session_id)
            except Exception:
                log.exception("relay: OnDemand session %s could not wait again", session_id)
                db.session.rollback()
        if link.console is viewer:
            link.console = None


def consent_timeout(app) -> int:
    return max(1, min(0xFFFF, int(app.config.get("ONDEMAND_CONSENT_TIMEOUT", 120))))


def consent_then_begin(app, viewer: OnDemandViewer) -> None:
    """The console's waiting greenlet: ask the person at the computer, then start the session or
    close the console with 4012."""
    with app.app_context():
        try:
            _consent_then_begin(app, viewer)
        except Exception:  # noqa: BLE001 - the technician must hear about it, the relay go on
            log.exception("relay: asking consent for OnDemand console %s failed", viewer.id)
            viewer.terminate(p.CloseCode.SERVER_ERROR, "The relay failed while asking the person at "
                             "the computer; try again.")


def _consent_then_begin(app, viewer: OnDemandViewer) -> None:
    link = viewer.link
    viewer.post(p.ConfirmState(p.ConfirmOutcome.WAITING, p.ConfirmVia.NONE, WAITING).encode())
    if link.agent is None:
        return  # the agent's ending closes the console
    timeout = consent_timeout(app)
    technician = f"{viewer.grant.technician} ({viewer.grant.username})"
    question = link.ask(viewer.asks, technician, timeout)
    deadline = time.monotonic() + timeout + CONSENT_GRACE
    try:
        while not question.event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            gevent.wait([question.event, viewer.gone], timeout=min(PERMISSION_EVERY, left), count=1)
            if viewer.gone.is_set() or viewer.terminating:
                return
            if viewer.permissions_age() >= PERMISSION_EVERY:
                refusal = viewer.refresh_permissions()
                if refusal is not None:
                    viewer.terminate(refusal.close_code, refusal.message)
                    return
    finally:
        if link.question is question:
            link.question = None
            if question.answer is None and link.agent is question.agent and link.agent is not None:
                # The technician left (or was refused) before an answer: the agent closes its
                # consent window (docs/protocol.md, OnDemand sessions).
                link.agent.post(p.Session(p.SessionEvent.LEFT, viewer.id, 0, 0,
                                          p.clip_str8(technician)).encode())
    if viewer.gone.is_set() or viewer.terminating or link.agent is not question.agent:
        return  # the technician left, or the agent went (its ending closes the console)
    allowed = p.permission_keys(question.answer or 0) & viewer.asks
    answer = "allowed" if allowed else ("declined" if question.answer is not None else "no answer")
    ondemand.consent_answered(link.session_id, viewer.asks, allowed, technician, answer)
    if not allowed:
        outcome, text = ((p.ConfirmOutcome.DENIED, DECLINED) if question.answer is not None
                         else (p.ConfirmOutcome.NO_ANSWER, NO_ANSWER))
        try:  # straight away, so that it goes before the ERROR and the close
            viewer.channel.send(p.ConfirmState(outcome, p.ConfirmVia.HOST, text).encode())
        except Closed:
            return
        viewer.terminate(p.CloseCode.ACCESS_DENIED, text)
        return
    viewer.consented = allowed
    try:
        grant = viewer.current_grant()
    except services.Refused as refusal:
        if refusal.close_code == p.CloseCode.NOT_PERMITTED:
            refusal.close_code = p.CloseCode.PERMISSION_WITHDRAWN
        viewer.terminate(refusal.close_code, refusal.message)
        return
    if not ondemand.started(link.session_id, allowed, grant.user_id):
        viewer.terminate(p.CloseCode.AGENT_GONE, "The session ended before it could start.")
        return
    viewer.grant, viewer.checked_at = grant, time.monotonic()
    viewer.refused_notice.clear()
    if "view_screen" in allowed:
        viewer.used.add("view_screen")
    words = ", ".join(LABELS[key] for key in ondemand.CONSENT_PERMISSIONS if key in allowed)
    viewer.post(p.Permissions(grant.mask).encode())
    viewer.post(p.ConfirmState(p.ConfirmOutcome.ALLOWED, p.ConfirmVia.HOST,
                               f"Allowed at the computer: {words}.").encode())
    viewer.begin()  # joins the link: the agent gets SESSION and starts sending what it may


# ------------------------------------------------------------------------------ the Portal and the checker
def rejected(session_id: int) -> None:
    """The technician rejected the session (``app.ondemand.services.reject`` deleted it): close
    its agent with 4014 when it is connected to this relay (its console, if any, with it).
    Called by the Portal's Reject view; a no-op otherwise."""
    link = _here(session_id)
    if link is not None:
        link.close_agent(p.CloseCode.REJECTED, REJECTED)


def expired(session_ids) -> None:
    """Sessions the Portal's pages found expired (``app.ondemand.services.expire`` ran there and
    deleted them): close their agents connected to this relay with 4015."""
    for session_id in session_ids:
        link = _here(session_id)
        if link is not None:
            link.close_agent(p.CloseCode.EXPIRED, EXPIRED)


def _here(session_id: int) -> OnDemandLink | None:
    """The session's link in this process's relay, if it runs one (Portal pages run in the
    relay's process under ``tessera run``)."""
    from flask import current_app

    hub = current_app.extensions.get("tessera.relay")
    return hub.ondemand.get(session_id) if hub is not None else None


def check(hub) -> None:
    """The hub's checker, every ``ONDEMAND_CHECK_EVERY`` seconds: drop sessions waiting over an
    hour and keys unused for 24 hours (their agents get 4015), and close agents whose session
    is gone (rejected or expired through another relay node: 4014)."""
    for session_id in ondemand.expire():
        link = hub.ondemand.get(session_id)
        if link is not None:
            link.close_agent(p.CloseCode.EXPIRED, EXPIRED)
    connected = [sid for sid, link in hub.ondemand.items() if link.agent is not None]
    for session_id in set(connected) - ondemand.existing(connected):
        link = hub.ondemand.get(session_id)
        if link is not None and link.agent is not None and not link.agent.terminating:
            link.close_agent(p.CloseCode.REJECTED, VANISHED)


def forget_node(node: str) -> None:
    """When the relay starts: the sessions this node held before are over (their agents'
    connections died with the previous process)."""
    cleared = ondemand.clear_node(node)
    if cleared:
        log.info("relay: %d OnDemand sessions of a previous run ended", len(cleared))
