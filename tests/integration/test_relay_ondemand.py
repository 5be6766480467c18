"""OnDemand sessions through the real relay (``tessera run`` on its own database): a scripted
OnDemand agent and the technician's console over real websockets (relay_harness), the console
page over HTTP.

The agent is admitted by its one-time key (unknown or used: 4001, expired: 4015, too many
attempts: HTTP 429 before the upgrade), must be recent enough (4002), spends the key with HELLO
and may show nothing before consent (4007). The technician's console waits while the person at
the computer is asked; what they allow is what the technician gets (input without Keyboard and
mouse is refused). Endings reach the console at once with their own codes (4013 ended at the
computer, 4016 the computer went away, 4014 rejected, 4015 waited too long) and the session is
deleted with its audit events. Device N and OnDemand session N never meet.
"""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
import requests

from agents.common import protocol as p
from tests.integration.relay_world import PASSWORD, FakeAgent, Viewer, close_code, start_relay_server, wait_for
from tests.relay_harness import _connect, relay_server_process, stop_process, wait_until_up

websockets = pytest.importorskip("websockets")

MIN_VERSION = "0.2.0"
CONSENT_TIMEOUT = 2
ASKS = ("view_screen", "keyboard_mouse", "clipboard")
WAITING = "Waiting for the person at the computer to allow the session…"


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory):
    # The checker drops sessions that waited too long every second here (30 s by default), so
    # that backdating connected_at in the database (the controllable clock) shows within it.
    yield from start_relay_server(
        tmp_path_factory, TESSERA_ONDEMAND_CHECK_EVERY="1",
        TESSERA_ONDEMAND_CONSENT_TIMEOUT=str(CONSENT_TIMEOUT),
        TESSERA_ONDEMAND_MIN_AGENT_VERSION=MIN_VERSION,
        TESSERA_ONDEMAND_KEY_LIMIT_PER_ADDRESS="10000 per hour",
        TESSERA_ONDEMAND_KEY_LIMIT_GLOBAL="10000 per hour")


class World:
    """An account whose technician may use OnDemand sessions (the flag on, an OnDemand role
    allowing ``asks`` assigned to everyone), and helpers for its sessions."""

    def __init__(self, server, asks=ASKS):
        self.server = server
        self.account_id, self.tech, _ = server.account()
        self.enable(self.tech.user_id)
        self.assignment_id = self.ondemand_role(asks)
        self._http: requests.Session | None = None
        self.keys: dict[int, str] = {}

    # ------------------------------------------------------------------ set-up
    def enable(self, user_id: int, on: bool = True) -> None:
        from sqlalchemy import select

        from app.extensions import db
        from app.models import Membership

        with self.server.app.app_context():
            membership = db.session.scalar(select(Membership).where(
                Membership.user_id == user_id, Membership.account_id == self.account_id))
            membership.ondemand_enabled = on
            db.session.commit()

    def ondemand_role(self, permissions) -> int:
        from app.assignments.services import AssignmentValues, create_assignment
        from app.models import RoleType
        from app.roles.services import RoleInput, create_role

        with self.server.app.app_context():
            name = f"OnDemand {uuid.uuid4().hex[:6]}"
            role = create_role(self.account_id, RoleInput(name, RoleType.ondemand, permissions=list(permissions)))
            return create_assignment(self.account_id, AssignmentValues(
                name=f"Assign {name}", role_id=role.id, everyone=True)).id

    def colleague(self) -> tuple[int, str]:
        """Another technician of the account, OnDemand enabled too: (user id, username)."""
        from app.extensions import db
        from app.models import Account, UserType
        from app.users.services import create_user

        with self.server.app.app_context():
            account = db.session.get(Account, self.account_id)
            membership = create_user(account, f"colleague-{uuid.uuid4().hex[:6]}@example.com", PASSWORD,
                                     UserType.user, first_name="Carl", last_name="Colleague")
            user_id, username = membership.user.id, membership.user.username
        self.enable(user_id)
        return user_id, username

    def session(self) -> tuple[int, str]:
        """A new session of the technician: (id, key)."""
        from sqlalchemy import select

        from app.extensions import db
        from app.models import Membership
        from app.ondemand.services import create_session

        with self.server.app.app_context():
            membership = db.session.scalar(select(Membership).where(
                Membership.user_id == self.tech.user_id, Membership.account_id == self.account_id))
            row = create_session(membership)
            self.keys[row.id] = row.key
            return row.id, row.key

    def row(self, session_id: int):
        from app.extensions import db
        from app.models.ondemand import OnDemandSession

        with self.server.app.app_context():
            row = db.session.get(OnDemandSession, session_id)
            if row is not None:
                db.session.expunge(row)
            return row

    def backdate(self, session_id: int, **ago: timedelta) -> None:
        """Move the session's ``created_at``/``expires_at``/``connected_at`` into the past."""
        from app.extensions import db
        from app.models.ondemand import OnDemandSession

        with self.server.app.app_context():
            row = db.session.get(OnDemandSession, session_id)
            for name, delta in ago.items():
                setattr(row, name, getattr(row, name) - delta)
            db.session.commit()

    def audit(self, action: str) -> list:
        return self.server.audit(self.account_id, action)

    def details(self, action: str, session_id: int) -> dict:
        import json

        events = [json.loads(e.details) for e in self.audit(action)]
        found = [d for d in events if d.get("session") == session_id]
        assert found, f"no {action} event for session {session_id} in {events}"
        return found[-1]

    # ------------------------------------------------------------------ people and agents
    @property
    def http(self) -> requests.Session:
        if self._http is None:
            self._http = self.server.sign_in(self.tech.username)
        return self._http

    def agent(self, key: str | None, version: str = MIN_VERSION, hostname: str = "visitor-pc",
              hello: bool = True) -> FakeAgent:
        agent = ondemand_agent(self.server, key)
        if hello:
            agent.send(p.Hello(agent_version=version, os="Debian GNU/Linux 12", hostname=hostname,
                               user="vera"))
            agent.sync()  # the relay has handled the HELLO: the key is spent
        return agent

    def console(self, session_id: int, http: requests.Session | None = None) -> Viewer:
        http = http or self.http
        cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        return Viewer(_connect(f"{self.server.ws_url}/relay/ondemand/{session_id}/view", {"Cookie": cookie}))


def ondemand_agent(server, key: str | None) -> FakeAgent:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return FakeAgent(_connect(f"{server.ws_url}/relay/ondemand", headers))


def refusal(ws, timeout: float = 5.0) -> tuple[int, str]:
    """The relay's ERROR sentence and close code of a refused connection."""
    from websockets.exceptions import ConnectionClosed

    sentence = ""
    try:
        while True:
            msg = p.decode(ws.recv(timeout=timeout))
            if isinstance(msg, p.Error):
                sentence = msg.message
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else 1006), sentence


def waiting_console(world: World):
    """A session whose agent waits, and its console asked for consent: (session id, agent,
    console, the CONSENT_REQUEST the agent got)."""
    session_id, key = world.session()
    agent = world.agent(key)
    console = world.console(session_id)
    greeting = console.start()
    assert greeting["welcome"].device == session_id
    assert greeting["permissions"].mask == p.permission_mask({"remote_session"})
    assert greeting["state"].online
    state = console.expect(p.ConfirmState)
    assert (state.state, state.text) == (p.ConfirmOutcome.WAITING, WAITING)
    return session_id, agent, console, agent.expect(p.ConsentRequest)


def started(world: World, allow=("view_screen",), size=(96, 64)):
    """A running session: the person at the computer allowed ``allow``; with View screen the
    agent has shown a key frame and the console painted it."""
    session_id, agent, console, _ = waiting_console(world)
    agent.send(p.Consent(p.permission_mask(allow)))
    assert console.expect(p.Permissions).mask == p.permission_mask({"remote_session", *allow})
    assert console.expect(p.ConfirmState).state is p.ConfirmOutcome.ALLOWED
    joined = agent.expect(p.Session)
    assert joined.event is p.SessionEvent.JOINED
    if "view_screen" in allow:
        agent.screen_info(size)
        assert agent.expect(p.RequestKeyframe).screen == p.ALL_SCREENS
        agent.keyframe()
        console.expect(p.FrameUpdate)
    return session_id, agent, console


@pytest.fixture
def world(relay_server):
    return World(relay_server)


# ---------------------------------------------------------------------------- the agent's key
def test_the_agent_endpoint_wants_a_websocket(relay_server):
    answer = requests.get(f"{relay_server.url}/relay/ondemand", timeout=10)
    assert answer.status_code == 400 and "websocket" in answer.text


def test_an_unknown_key_is_refused_with_4001_and_the_attempt_is_audited(relay_server):
    from sqlalchemy import select

    from app.extensions import db
    from app.models import AuditEvent

    code, sentence = refusal(ondemand_agent(relay_server, "000 000 001").ws)
    assert code == p.CloseCode.UNAUTHENTICATED and "not valid" in sentence
    assert refusal(ondemand_agent(relay_server, None).ws)[0] == p.CloseCode.UNAUTHENTICATED
    with relay_server.app.app_context():
        tried = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "ondemand.key_tried",
                                                            AuditEvent.account_id.is_(None))).all()
        assert any('"ok": false' in e.details and e.ip == "127.0.0.1" for e in tried)


def test_a_key_works_for_one_connection_only(world):
    session_id, key = world.session()
    first = world.agent(key)
    row = world.row(session_id)
    assert row.state.value == "waiting" and row.hostname == "visitor-pc" and row.connected_at is not None
    assert world.details("ondemand.connected", session_id)["hostname"] == "visitor-pc"
    code, sentence = refusal(world.agent(key, hello=False).ws)
    assert code == p.CloseCode.UNAUTHENTICATED and "already used" in sentence
    first.sync()  # the first connection is unaffected


def test_an_expired_key_is_refused_with_4015(world):
    session_id, key = world.session()
    world.backdate(session_id, created_at=timedelta(hours=25), expires_at=timedelta(hours=25))
    code, sentence = refusal(world.agent(key, hello=False).ws)
    assert code == p.CloseCode.EXPIRED and "expired" in sentence


def test_an_agent_older_than_the_minimum_is_told_to_download_it_again(world):
    session_id, key = world.session()
    agent = ondemand_agent(world.server, key)
    agent.send(p.Hello(agent_version="0.1.9", os="Debian", hostname="old-pc"))
    code, sentence = refusal(agent.ws)
    assert code == p.CloseCode.UNSUPPORTED_VERSION and "download it again" in sentence
    assert world.row(session_id).state.value == "created"  # the key was not spent
    world.agent(key, version="0.10.0").sync()  # 0.10 is newer than 0.2: versions, not strings


def test_nothing_of_the_screen_may_come_before_consent(world):
    session_id, key = world.session()
    agent = world.agent(key)
    agent.screen_info((96, 64))
    assert refusal(agent.ws)[0] == p.CloseCode.UNEXPECTED
    wait_for(lambda: world.row(session_id) is None, message="the session was deleted")


def test_many_key_attempts_get_429_before_the_upgrade(tmp_path):
    from websockets.exceptions import InvalidStatus

    with relay_server_process(tmp_path, TESSERA_ONDEMAND_KEY_LIMIT_PER_ADDRESS="3 per 10 minutes") as server:
        for n in range(3):
            assert refusal(ondemand_agent(server, f"{n:09d}").ws)[0] == p.CloseCode.UNAUTHENTICATED
        with pytest.raises(InvalidStatus) as refused:
            ondemand_agent(server, "123456789")
        assert refused.value.response.status_code == 429
        assert int(refused.value.response.headers["Retry-After"]) > 0
        assert len(server.audit(None, "ondemand.key_throttled")) == 1  # audited like every attempt


# ---------------------------------------------------------------------------- consent
def test_view_only_consent_shows_the_screen_and_refuses_input(world):
    session_id, agent, console, asked = waiting_console(world)
    assert asked.permissions == p.permission_mask(ASKS)
    assert asked.timeout == CONSENT_TIMEOUT
    assert asked.technician == f"Tina Tech ({world.tech.username})"
    agent.send(p.Consent(p.permission_mask({"view_screen"})))
    assert console.expect(p.Permissions).mask == p.permission_mask({"remote_session", "view_screen"})
    allowed = console.expect(p.ConfirmState)
    assert allowed.state is p.ConfirmOutcome.ALLOWED and "View screen" in allowed.text
    joined = agent.expect(p.Session)
    assert joined.event is p.SessionEvent.JOINED and joined.technician == "Tina Tech"
    assert joined.permissions == p.permission_mask({"remote_session", "view_screen"})
    agent.screen_info((96, 64))
    agent.expect(p.RequestKeyframe)
    agent.keyframe()
    console.expect(p.FrameUpdate)
    assert console.frames[0] == agent.frames[0]

    console.send(p.Pointer(0, 5, 5, buttons=1))
    notice = console.expect(p.Error)
    assert notice.code == p.CloseCode.PERMISSION_WITHDRAWN and "Keyboard and mouse" in notice.message
    console.send(p.Key(0x61, True))
    console.sync()
    assert not agent.quiet(0.5, (p.Pointer, p.Key))  # nothing reached the computer

    row = world.row(session_id)
    assert row.state.value == "active" and row.granted == ["view_screen"] and row.started_at is not None
    assert world.details("ondemand.consent", session_id)["allowed"] == ["view_screen"]
    assert world.details("ondemand.started", session_id)["granted"] == ["view_screen"]


def test_keyboard_and_mouse_when_allowed_reach_the_computer(world):
    _, agent, console = started(world, allow=("view_screen", "keyboard_mouse"))
    console.send(p.Pointer(0, 7, 8, buttons=1))
    assert agent.expect(p.Pointer) == p.Pointer(0, 7, 8, buttons=1)


def test_declining_closes_the_console_with_4012_and_the_session_waits_again(world):
    session_id, agent, console, _ = waiting_console(world)
    agent.send(p.Consent(0))
    denied = console.expect(p.ConfirmState)
    assert denied.state is p.ConfirmOutcome.DENIED and "declined" in denied.text
    assert refusal(console.ws)[0] == p.CloseCode.ACCESS_DENIED
    assert world.row(session_id).state.value == "waiting"
    assert world.details("ondemand.consent", session_id)["answer"] == "declined"

    again = world.console(session_id)  # Reconnect: the person is asked again
    again.start()
    again.expect(p.ConfirmState)
    agent.expect(p.ConsentRequest)


def test_no_answer_in_time_closes_the_console_with_4012(world):
    session_id, agent, console, _ = waiting_console(world)
    # The relay waits the consent window's timeout and a grace of 5 s.
    state = console.expect(p.ConfirmState, timeout=CONSENT_TIMEOUT + 10)
    assert state.state is p.ConfirmOutcome.NO_ANSWER
    assert refusal(console.ws)[0] == p.CloseCode.ACCESS_DENIED
    assert world.row(session_id).state.value == "waiting"
    agent.sync()  # the agent is still connected; it may be started again


def test_allowing_what_was_not_asked_for_is_malformed(relay_server):
    world = World(relay_server, asks=("view_screen",))
    session_id, agent, console, asked = waiting_console(world)
    assert asked.permissions == p.permission_mask({"view_screen"})
    agent.send(p.Consent(p.permission_mask({"view_screen", "keyboard_mouse"})))
    assert refusal(agent.ws)[0] == p.CloseCode.MALFORMED
    assert refusal(console.ws)[0] == p.CloseCode.AGENT_GONE
    wait_for(lambda: world.row(session_id) is None, message="the session was deleted")


def test_closing_the_console_lets_the_session_wait_for_the_next_start(world):
    session_id, agent, console = started(world)
    console.close()
    assert agent.expect(p.Session).event is p.SessionEvent.LEFT
    wait_for(lambda: world.row(session_id).state.value == "waiting", message="the session waits again")
    again = world.console(session_id)
    again.start()
    again.expect(p.ConfirmState)
    agent.expect(p.ConsentRequest)


def test_a_technician_leaving_before_the_answer_withdraws_the_question(world):
    session_id, agent, console, _ = waiting_console(world)
    console.close()
    left = agent.expect(p.Session)  # the agent closes its consent window
    assert (left.event, left.viewers) == (p.SessionEvent.LEFT, 0)
    agent.send(p.Consent(p.permission_mask({"view_screen"})))  # a late click: ignored
    agent.sync()
    assert world.row(session_id).state.value == "waiting"


def test_a_technician_losing_ondemand_is_closed_with_4010(world):
    _, _, console = started(world)
    world.enable(world.tech.user_id, on=False)
    code, sentence = refusal(console.ws)
    assert code == p.CloseCode.PERMISSION_WITHDRAWN and "not enabled" in sentence


# ---------------------------------------------------------------------------- who may watch
def test_a_second_console_gets_4008(world):
    session_id, _, _, _ = waiting_console(world)
    code, sentence = refusal(world.console(session_id).ws)
    assert code == p.CloseCode.REPLACED and "another console" in sentence


def test_a_colleague_who_did_not_create_the_session_gets_4009_and_a_404_page(world):
    session_id, key = world.session()
    world.agent(key)
    _, username = world.colleague()
    colleague = world.server.sign_in(username)
    code, _ = refusal(world.console(session_id, http=colleague).ws)
    assert code == p.CloseCode.NOT_PERMITTED
    assert colleague.get(f"{world.server.url}/sessions/{session_id}/console", timeout=10).status_code == 404


def test_a_console_before_the_visitor_connected_gets_4009(world):
    session_id, _ = world.session()
    code, sentence = refusal(world.console(session_id).ws)
    assert code == p.CloseCode.NOT_PERMITTED and "not connected yet" in sentence


def test_the_console_page_shows_the_visitors_computer_escaped(world):
    session_id, key = world.session()
    page = world.http.get(f"{world.server.url}/sessions/{session_id}/console", timeout=10)
    assert page.status_code == 403 and "has not connected" in page.text
    world.agent(key, hostname="<b>pc</b>")
    page = world.http.get(f"{world.server.url}/sessions/{session_id}/console", timeout=10)
    assert page.status_code == 200
    assert f'data-ws="/relay/ondemand/{session_id}/view"' in page.text
    assert "&lt;b&gt;pc&lt;/b&gt;" in page.text and "<b>pc</b>" not in page.text
    assert re.search(r'href="/sessions">My sessions<', page.text)

    world.server.set_assignment_active(world.assignment_id, False)
    page = world.http.get(f"{world.server.url}/sessions/{session_id}/console", timeout=10)
    assert page.status_code == 403 and "OnDemand" in page.text
    assert refusal(world.console(session_id).ws)[0] == p.CloseCode.NOT_PERMITTED


# ---------------------------------------------------------------------------- endings
def test_the_person_at_the_computer_ending_it_closes_the_console_with_4013(world):
    session_id, agent, console = started(world, allow=("view_screen", "keyboard_mouse"))
    console.send(p.Pointer(0, 1, 1))
    agent.expect(p.Pointer)
    agent.ws.close(p.CloseCode.ENDED_BY_HOST, "Ctrl+Shift+X")
    code, sentence = refusal(console.ws)
    assert code == p.CloseCode.ENDED_BY_HOST and "ended the session" in sentence
    wait_for(lambda: world.row(session_id) is None, message="the session was deleted")
    ended = world.details("ondemand.ended", session_id)
    assert "Ctrl+Shift+X" in ended["how"]
    assert ended["used"] == ["keyboard_mouse", "view_screen"] and ended["duration_seconds"] >= 0


@pytest.mark.parametrize("how", ["close", "drop"])
def test_the_agent_going_away_closes_the_console_with_4016(world, how):
    session_id, agent, console = started(world)
    if how == "close":
        agent.close()
    else:
        agent.ws.socket.shutdown(socket.SHUT_RDWR)
    code, sentence = refusal(console.ws)
    assert code == p.CloseCode.AGENT_GONE and "disconnected" in sentence
    wait_for(lambda: world.row(session_id) is None, message="the session was deleted")
    assert world.details("ondemand.ended", session_id)["used"] == ["view_screen"]
    # The key went with it.
    assert refusal(world.agent(world.keys[session_id], hello=False).ws)[0] == p.CloseCode.UNAUTHENTICATED


def test_rejecting_in_the_queue_closes_the_agent_with_4014(world):
    session_id, key = world.session()
    agent = world.agent(key)
    page = world.http.get(f"{world.server.url}/sessions", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(r'"X-CSRFToken": "([^"]+)"', page)
    answer = world.http.post(f"{world.server.url}/sessions/{session_id}/reject",
                             data={"csrf_token": token.group(1)}, timeout=10)
    assert answer.status_code == 200
    code, sentence = refusal(agent.ws)
    assert code == p.CloseCode.REJECTED and "rejected" in sentence
    assert world.row(session_id) is None
    assert world.details("ondemand.rejected", session_id)
    assert not [e for e in world.audit("ondemand.ended") if f'"session": {session_id}' in e.details]


def test_a_session_rejected_through_another_node_is_closed_too(world):
    """Another Portal node deleted the row: the relay's checker notices within a round."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Membership
    from app.ondemand.services import reject

    session_id, key = world.session()
    agent = world.agent(key)
    console = world.console(session_id)
    console.start()
    with world.server.app.app_context():
        reject(db.session.scalar(select(Membership).where(Membership.user_id == world.tech.user_id)), session_id)
    assert refusal(agent.ws, timeout=10)[0] == p.CloseCode.REJECTED
    assert refusal(console.ws)[0] == p.CloseCode.REJECTED


def test_a_session_waiting_over_an_hour_is_closed_with_4015(world):
    session_id, key = world.session()
    agent = world.agent(key)
    world.backdate(session_id, connected_at=timedelta(minutes=61))
    code, sentence = refusal(agent.ws, timeout=10)  # the checker runs every second here
    assert code == p.CloseCode.EXPIRED and "within an hour" in sentence
    assert world.row(session_id) is None
    assert "hour" in world.details("ondemand.expired", session_id)["how"]


# ---------------------------------------------------------------------------- devices apart
def test_device_n_and_ondemand_session_n_never_meet(relay_server, world):
    """A device and an OnDemand session with the same id: each agent's frames reach only its
    own viewer, and the OnDemand agent's HELLO writes nothing to the device."""
    device = relay_server.device(world.account_id)
    session_id, key = world.session()
    while session_id != device.id:  # ids are per table: make more of the lower one
        if session_id < device.id:
            session_id, key = world.session()
        else:
            device = relay_server.device(world.account_id)
    device_agent = relay_server.agent(device.token)
    device_agent.hello(hostname=device.hostname)
    device_agent.screen_info((64, 48))
    device_viewer = relay_server.viewer(device.id, world.http)
    device_viewer.start()
    device_agent.expect(p.Session)
    device_agent.expect(p.RequestKeyframe)
    device_agent.keyframe(seed=7)
    device_viewer.expect(p.FrameUpdate)

    ondemand_agent_ = world.agent(key, hostname="visitor-box")
    console = world.console(session_id)
    console.start()
    console.expect(p.ConfirmState)
    ondemand_agent_.expect(p.ConsentRequest)
    ondemand_agent_.send(p.Consent(p.permission_mask({"view_screen"})))
    console.expect(p.Permissions)
    console.expect(p.ConfirmState)
    ondemand_agent_.expect(p.Session)
    ondemand_agent_.screen_info((96, 64))
    ondemand_agent_.expect(p.RequestKeyframe)
    ondemand_agent_.keyframe(seed=9)
    console.expect(p.FrameUpdate)

    assert console.frames[0] == ondemand_agent_.frames[0]
    assert device_viewer.frames[0] == device_agent.frames[0]
    assert console.screens[0] == (96, 64) and device_viewer.screens[0] == (64, 48)
    assert not device_viewer.quiet(0.5, (p.FrameUpdate, p.ScreenInfo))
    assert device_agent.quiet(0.3, (p.ConsentRequest, p.Session)) == []
    row = relay_server.device_row(device.id)
    assert row.hostname == device.hostname and row.online

    ondemand_agent_.close()  # the session ends; the device's viewer stays
    assert refusal(console.ws)[0] == p.CloseCode.AGENT_GONE
    device_agent.update([p.FillRect(0, 0, 8, 8, b"\x01\x02\x03\xff")])
    device_viewer.expect(p.FrameUpdate)
    assert relay_server.device_row(device.id).online


# ---------------------------------------------------------------------------- a relay restart
def test_a_restarted_relay_ends_the_sessions_it_held(tmp_path):
    """Sessions waiting on a relay that died (kill -9) are over: the next start of that node
    deletes them, audited."""
    with relay_server_process(tmp_path) as server:
        world = World(server)
        session_id, key = world.session()
        world.agent(key)
        assert world.row(session_id).relay_node == "relay-test-node"
        server.process.kill()
        server.process.wait()
        port = server.url.rsplit(":", 1)[1]
        env = {**_server_env(server), "TESSERA_BASE_URL": server.url}
        again = subprocess.Popen([sys.executable, "-m", "app", "run", "--port", port], env=env,
                                 cwd=str(_root()), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_until_up(server.url, again)
            assert world.row(session_id) is None
            assert "relay restarted" in world.details("ondemand.ended", session_id)["how"]
        finally:
            stop_process(again)


def _root():
    from tests.relay_harness import ROOT

    return ROOT


def _server_env(server) -> dict:
    import os

    config = server.app.config
    return {**os.environ, "TESSERA_INSTANCE": config["INSTANCE_PATH"],
            "TESSERA_DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
            "TESSERA_RELAY_NODE": "relay-test-node", "TESSERA_ARGON2_TIME_COST": "1",
            "TESSERA_ARGON2_MEMORY_COST": "1024"}
