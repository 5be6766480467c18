"""Confirm access (spec B8) through the real relay: ``tessera run`` on its own database with a
real SMTP listener, a programmatic agent and viewer over real websockets (relay_harness), and
the emailed answer page over HTTP with ``requests``.

The host prompt allows (the session starts), denies (4012 with the sentence), or is not
answered (4012 after the timeout, shortened with TESSERA_CONFIRM_TIMEOUT); the exceptions
(locked, nobody logged in) skip it; a viewer leaving cancels the request. By email, every member
of the role's groups gets a link (the technician does not); the first member to allow starts the
waiting session, the next sees it was answered; a tampered link or another member's link is
refused. Whatever settles a question the host was asked before the host answers (an emailed
answer, the relay's deadline, the viewer leaving) sends the agent CONFIRM_CANCEL; an answer
from the host never does.
"""
from __future__ import annotations

import re
import uuid

import pytest
import requests

from agents.common import protocol as p
from tests.fixtures_live import SmtpSink
from tests.integration.relay_world import PASSWORD, close_code, start_relay_server, wait_for

pytest.importorskip("websockets")
pytest.importorskip("aiosmtpd")

HOST_TIMEOUT = 2


@pytest.fixture(scope="module")
def smtp():
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


@pytest.fixture(scope="module")
def relay_server(tmp_path_factory, smtp):
    yield from start_relay_server(tmp_path_factory, TESSERA_SMTP_URL=smtp.url,
                                  TESSERA_CONFIRM_TIMEOUT=str(HOST_TIMEOUT),
                                  TESSERA_CONFIRM_EMAIL_TIMEOUT="30")


class Setup:
    """An account with a technician allowed to view its devices, and helpers for the
    confirm-access side: roles, groups, members."""

    def __init__(self, server):
        self.server = server
        self.account_id, self.tech, _ = server.account()

    def member(self, first_name: str) -> tuple[int, str]:
        from app.models import Account, UserType
        from app.users.services import create_user

        with self.server.app.app_context():
            from app.extensions import db

            account = db.session.get(Account, self.account_id)
            membership = create_user(account, f"{first_name.lower()}-{uuid.uuid4().hex[:6]}@example.com",
                                     PASSWORD, UserType.user, first_name=first_name, last_name="Helper")
            return membership.user.id, membership.user.username

    def group(self, user_ids) -> int:
        from app.groups.services import attach_users, create_group
        from app.models import GroupKind

        with self.server.app.app_context():
            group = create_group(self.account_id, GroupKind.user, f"Approvers {uuid.uuid4().hex[:6]}")
            attach_users(group.id, list(user_ids), self.account_id)
            return group.id

    def confirm_role(self, **options) -> None:
        """A Confirm-access role assigned to everyone on everything."""
        from app.assignments.services import AssignmentValues, create_assignment
        from app.models import RoleType
        from app.roles.services import RoleInput, create_role

        with self.server.app.app_context():
            name = f"Confirm {uuid.uuid4().hex[:6]}"
            role = create_role(self.account_id, RoleInput(name, RoleType.confirm, **options))
            create_assignment(self.account_id, AssignmentValues(
                name=f"Assign {name}", role_id=role.id, everyone=True, everything=True))

    def online_agent(self, user="ann", locked=False):
        device = self.server.device(self.account_id)
        agent = self.server.agent(device.token)
        agent.hello(hostname=device.hostname, user=user, locked=locked)
        agent.screen_info((96, 64))
        agent.sync()
        return device, agent

    def viewer(self, device_id):
        viewer = self.server.viewer(device_id, self.server.sign_in(self.tech.username))
        viewer.start()
        return viewer

    def request_row(self, device_id):
        from sqlalchemy import select

        from app.extensions import db
        from app.models import AccessRequest

        with self.server.app.app_context():
            row = db.session.scalars(select(AccessRequest).where(AccessRequest.device_id == device_id)
                                     .order_by(AccessRequest.id.desc())).first()
            if row is not None:
                db.session.expunge(row)
            return row

    def audit(self, action):
        return [r for r in self.server.audit(self.account_id, action)]


@pytest.fixture
def world(relay_server):
    return Setup(relay_server)


def started(viewer, agent) -> None:
    """The session runs: the agent is asked for a key frame, and the viewer gets it."""
    viewer.expect(p.ScreenInfo, skip=(p.Ping, p.Pong, p.Status, p.Cursor, p.DeviceState))
    agent.expect(p.RequestKeyframe, skip=(p.Ping, p.Pong, p.Ack, p.Session))
    agent.keyframe(seed=3)
    update = viewer.expect(p.FrameUpdate)
    assert update.keyframe


def denied(viewer, via, sentence: str) -> str:
    state = _last_state(viewer)
    expected = (p.ConfirmOutcome.DENIED, via) if via else (p.ConfirmOutcome.NO_ANSWER, p.ConfirmVia.NONE)
    assert (state.state, state.via) == expected
    error = viewer.expect(p.Error)
    assert error.code == p.CloseCode.ACCESS_DENIED and sentence in error.message, error
    assert viewer.close_code == p.CloseCode.ACCESS_DENIED
    return error.message


# ------------------------------------------------------------------------------ on the host
def test_host_allows_and_only_then_the_session_starts(world):
    world.confirm_role(confirm_on_host=True)
    device, agent = world.online_agent(user="ann")
    viewer = world.viewer(device.id)
    waiting = viewer.expect(p.ConfirmState)
    assert waiting.state is p.ConfirmOutcome.WAITING and "at the device" in waiting.text
    question = agent.expect(p.ConfirmRequest)
    assert question.timeout == HOST_TIMEOUT
    assert "Tina Tech" in question.technician and world.tech.username in question.technician

    viewer.send(p.Key(0x61, True))  # nothing reaches the host before it is allowed
    assert agent.quiet(0.5, kinds=(p.Key, p.Session, p.RequestKeyframe)) == []
    assert [m for m in viewer.quiet(0.3) if isinstance(m, (p.FrameUpdate, p.ScreenInfo))] == []

    agent.send(p.ConfirmAnswer(question.request, p.Answer.ALLOW))
    outcome = viewer.expect(p.ConfirmState)
    assert (outcome.state, outcome.via) == (p.ConfirmOutcome.ALLOWED, p.ConfirmVia.HOST)
    assert outcome.text == "Allowed at the device by ann."
    started(viewer, agent)  # RequestKeyframe came next: no CONFIRM_CANCEL for an answered question
    viewer.send(p.Key(0x62, True))
    assert agent.expect(p.Key).keysym == 0x62

    row = world.request_row(device.id)
    assert (row.state.value, row.answered_via, row.answered_by) == ("allowed", "host", "ann")
    assert len(world.audit("confirm.requested")) == 1
    [allowed] = world.audit("confirm.allowed")
    assert '"via": "host"' in allowed.details and '"answered_by": "ann"' in allowed.details
    assert len(world.audit("session.started")) == 1
    viewer.close()
    agent.close()


def test_host_denies_and_the_viewer_is_closed_with_4012(world):
    world.confirm_role(confirm_on_host=True)
    device, agent = world.online_agent(user="bob")
    viewer = world.viewer(device.id)
    question = agent.expect(p.ConfirmRequest)
    agent.send(p.ConfirmAnswer(question.request, p.Answer.DENY))
    message = denied(viewer, p.ConfirmVia.HOST, "Access denied at the device by bob.")
    assert world.request_row(device.id).state.value == "denied"
    assert world.audit("confirm.denied") and not world.audit("session.started")
    assert message
    agent.close()


def test_nobody_answering_on_the_host_closes_the_viewer_after_the_timeout(world):
    world.confirm_role(confirm_on_host=True)
    device, agent = world.online_agent()
    viewer = world.viewer(device.id)
    question = agent.expect(p.ConfirmRequest)  # and the agent never answers
    denied(viewer, None, "nobody confirmed the connection in time")
    # The relay stopped waiting (the timeout + 5 s): a prompt still open on the host closes.
    assert agent.expect(p.ConfirmCancel).request == question.request
    assert world.request_row(device.id).state.value == "expired"
    assert world.audit("confirm.expired")
    agent.close()


def test_an_agent_saying_nobody_answered_denies_at_once(world):
    world.confirm_role(confirm_on_host=True)
    device, agent = world.online_agent()
    viewer = world.viewer(device.id)
    question = agent.expect(p.ConfirmRequest)
    agent.send(p.ConfirmAnswer(question.request, p.Answer.UNANSWERED))
    denied(viewer, None, "nobody confirmed the connection in time")
    agent.close()


def test_an_offline_device_cannot_be_asked_so_the_viewer_is_refused(world):
    world.confirm_role(confirm_on_host=True)
    device = world.server.device(world.account_id)
    viewer = world.viewer(device.id)
    denied(viewer, None, "nobody could be asked")


@pytest.mark.parametrize("option, hello", [
    ("except_when_locked", {"user": "ann", "locked": True}),
    ("except_when_nobody_logged_in", {"user": ""}),
])
def test_exceptions_skip_the_prompt(world, option, hello):
    world.confirm_role(confirm_on_host=True, **{option: True})
    device, agent = world.online_agent(**hello)
    viewer = world.viewer(device.id)
    started(viewer, agent)
    assert not [m for m in agent.quiet(0.3) if isinstance(m, p.ConfirmRequest)]
    assert world.request_row(device.id) is None
    assert world.audit("confirm.skipped")
    viewer.close()
    agent.close()


def test_the_exception_does_not_apply_when_its_condition_is_not_met(world):
    world.confirm_role(confirm_on_host=True, except_when_locked=True)
    device, agent = world.online_agent(user="ann", locked=False)
    world.viewer(device.id)
    agent.expect(p.ConfirmRequest)
    agent.close()


def test_the_viewer_leaving_cancels_the_request(world):
    world.confirm_role(confirm_on_host=True)
    device, agent = world.online_agent()
    viewer = world.viewer(device.id)
    question = agent.expect(p.ConfirmRequest)
    viewer.expect(p.ConfirmState)
    viewer.close()
    wait_for(lambda: world.request_row(device.id).state.value == "cancelled", 10,
             message="the request to be cancelled")
    assert agent.expect(p.ConfirmCancel).request == question.request
    agent.send(p.ConfirmAnswer(question.request, p.Answer.ALLOW))  # too late: changes nothing
    agent.sync()
    assert world.request_row(device.id).state.value == "cancelled"
    assert world.audit("confirm.cancelled") and not world.audit("session.started")
    agent.close()


# ------------------------------------------------------------------------------ by email
def link_of(message) -> str:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"(http://\S+/confirm-access/\d+\?t=\S+)", body).group(1)


def page_form(http, link):
    page = http.get(link, timeout=10)
    form = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    shell = re.search(r'"X-CSRFToken": "([^"]+)"', page.text)  # every page's, for a forged post
    return page, (form or shell).group(1), bool(form)


def answer_by_link(world, username: str, link: str, answer: str):
    """``username`` signs in, opens the emailed ``link`` and presses Allow or Deny."""
    http = world.server.sign_in(username)
    _, csrf, _ = page_form(http, link)
    return http.post(link.split("?")[0], data={"csrf_token": csrf, "t": link.split("?t=")[1],
                                               "answer": answer}, timeout=10)


def test_the_first_group_member_to_allow_by_email_starts_the_waiting_session(world, smtp):
    ada_id, ada = world.member("Ada")
    ben_id, ben = world.member("Ben")
    group = world.group([ada_id, ben_id, world.tech.user_id])  # the technician is in it too
    world.confirm_role(confirm_by_email=True, confirm_group_ids=[group])
    device, agent = world.online_agent()
    viewer = world.viewer(device.id)
    waiting = viewer.expect(p.ConfirmState)
    assert waiting.state is p.ConfirmOutcome.WAITING and "by email" in waiting.text

    to_ada = smtp.wait_for(ada, "Confirm access")
    to_ben = smtp.wait_for(ben, "Confirm access")
    assert device.hostname in str(to_ada["Subject"])
    assert not [m for m in smtp.messages if world.tech.username in str(m["To"])], \
        "nobody confirms their own access"
    ada_link, ben_link = link_of(to_ada), link_of(to_ben)
    assert ada_link != ben_link

    # Ada, signed in as herself: the page says who asks for what, then she allows.
    ada_http = world.server.sign_in(ada)
    page, csrf, has_form = page_form(ada_http, ada_link)
    assert page.status_code == 200 and "Tina Tech" in page.text and device.hostname in page.text
    assert world.tech.username in page.text and has_form
    # Ben's link is not hers.
    assert ada_http.get(ben_link, timeout=10).status_code == 403
    # A changed token is refused, and so is none.
    assert ada_http.get(ada_link[:-3] + "xyz", timeout=10).status_code == 400
    assert ada_http.get(ada_link.split("?")[0], timeout=10).status_code == 400
    token = ada_link.split("?t=")[1]
    answered = ada_http.post(ada_link.split("?")[0], data={"csrf_token": csrf, "t": token,
                                                           "answer": "allow"}, timeout=10)
    assert answered.status_code == 200 and "Access allowed" in answered.text

    outcome = viewer.expect(p.ConfirmState, timeout=10)
    assert (outcome.state, outcome.via) == (p.ConfirmOutcome.ALLOWED, p.ConfirmVia.EMAIL)
    assert "Ada Helper" in outcome.text
    started(viewer, agent)

    # Ben comes second: the page says it was answered, and by whom.
    ben_http = world.server.sign_in(ben)
    page, csrf, has_form = page_form(ben_http, ben_link)
    assert page.status_code == 200 and "Already answered by" in page.text and "Ada Helper" in page.text
    assert "allowed" in page.text and not has_form
    late = ben_http.post(ben_link.split("?")[0], data={"csrf_token": csrf, "t": ben_link.split("?t=")[1],
                                                       "answer": "deny"}, timeout=10)
    assert "too late" in late.text
    row = world.request_row(device.id)
    assert (row.state.value, row.answered_via) == ("allowed", "email") and "Ada Helper" in row.answered_by
    [allowed] = world.audit("confirm.allowed")
    assert '"via": "email"' in allowed.details and allowed.actor == ada
    viewer.close()
    agent.close()


def test_a_link_sends_a_signed_out_member_to_sign_in_and_back(world, smtp):
    ada_id, ada = world.member("Ada")
    world.confirm_role(confirm_by_email=True, confirm_group_ids=[world.group([ada_id])])
    device, agent = world.online_agent()
    viewer = world.viewer(device.id)
    link = link_of(smtp.wait_for(ada, "Confirm access"))
    anonymous = requests.get(link, timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302 and "/login?next=" in anonymous.headers["Location"]

    http = requests.Session()
    login = http.get(link, timeout=10)  # the sign-in page, remembering where to go next
    assert "/login" in login.url
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login.text).group(1)
    http.post(login.url, data={"csrf_token": csrf, "username": ada}, timeout=10)
    back = http.post(f"{world.server.url}/login/password", data={"csrf_token": csrf, "password": PASSWORD},
                     timeout=30)
    assert back.status_code == 200 and "/confirm-access/" in back.url and "Deny" in back.text
    form_csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', back.text).group(1)
    http.post(link.split("?")[0], data={"csrf_token": form_csrf, "t": link.split("?t=")[1],
                                        "answer": "deny"}, timeout=10)
    denied(viewer, p.ConfirmVia.EMAIL, "Access denied by Ada Helper")
    agent.close()


def test_an_emailed_answer_first_cancels_the_hosts_prompt_and_its_late_answer_changes_nothing(world, smtp):
    ada_id, ada = world.member("Ada")
    world.confirm_role(confirm_on_host=True, confirm_by_email=True,
                       confirm_group_ids=[world.group([ada_id])])
    device, agent = world.online_agent()
    viewer = world.viewer(device.id)
    question = agent.expect(p.ConfirmRequest)
    link = link_of(smtp.wait_for(ada, "Confirm access"))  # at once: the host is asked too
    answer_by_link(world, ada, link, "deny")
    denied(viewer, p.ConfirmVia.EMAIL, "Access denied by Ada Helper")
    assert agent.expect(p.ConfirmCancel, timeout=10).request == question.request

    agent.send(p.ConfirmAnswer(question.request, p.Answer.ALLOW))  # crossed the cancel: ignored
    agent.sync()
    row = world.request_row(device.id)
    assert (row.state.value, row.answered_via) == ("denied", "email")
    assert not world.audit("confirm.allowed") and not world.audit("session.started")
    agent.close()


def test_email_only_when_the_host_does_not_answer(world, smtp):
    ada_id, ada = world.member("Ada")
    world.confirm_role(confirm_on_host=True, confirm_by_email=True, email_only_when_host_unanswered=True,
                       confirm_group_ids=[world.group([ada_id])])
    device, agent = world.online_agent()
    viewer = world.viewer(device.id)
    question = agent.expect(p.ConfirmRequest)
    assert not [m for m in smtp.messages if ada in str(m["To"])], "no mail while the host may answer"
    agent.send(p.ConfirmAnswer(question.request, p.Answer.UNANSWERED))
    link = link_of(smtp.wait_for(ada, "Confirm access"))
    answer_by_link(world, ada, link, "allow")
    outcome = _last_state(viewer)
    assert (outcome.state, outcome.via) == (p.ConfirmOutcome.ALLOWED, p.ConfirmVia.EMAIL)
    started(viewer, agent)
    viewer.close()
    agent.close()


def _last_state(viewer):
    """The next CONFIRM_STATE that is not "waiting"."""
    while True:
        state = viewer.expect(p.ConfirmState, timeout=15)
        if state.state is not p.ConfirmOutcome.WAITING:
            return state
