"""Confirm access (spec B8) in the relay: a viewer whose technician is under a Confirm-access
role waits, after its greeting and before its session starts, until somebody allows it.

``serve_viewer`` (``app.relay.viewer``) asks :func:`plan_for` whether a confirmation is needed
(the roles that apply, less the ones their exceptions waive given what the agent reported:
locked, nobody logged in). When one is, it runs :func:`wait_then_begin` in a greenlet of its own
while the viewer's reader goes on answering pings and dropping input:

* a pending :class:`~app.models.AccessRequest` row is opened (``app.confirm.services``);
* the person at the host is asked with ``CONFIRM_REQUEST`` when a role asks the host and the
  agent is connected; the agent answers ``CONFIRM_ANSWER`` (allow, deny, or unanswered when
  nobody clicked in time), and the relay gives up on it a little after the timeout. Whatever
  settles the question before the agent answers (an emailed answer, that deadline, the viewer
  leaving) sends the agent ``CONFIRM_CANCEL``, so its prompt does not stay open for nothing;
* the members of the roles' confirm groups get an email with a signed link to the answer page,
  at once, or only when the host did not answer (or cannot be asked);
* the viewer gets ``CONFIRM_STATE`` waiting, then the outcome. The first answer wins
  (an atomic update of the row); the row is polled every half second because the page may be
  served by another relay node. Allowed: the session starts as if nothing happened. Denied, or
  nobody answered: ``ERROR`` and close 4012 with a sentence. The viewer leaving cancels it.

``TESSERA_CONFIRM_TIMEOUT`` (30 s) bounds the host prompt, ``TESSERA_CONFIRM_EMAIL_TIMEOUT``
(600 s) the wait for an emailed answer.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gevent
from gevent.event import Event

from agents.common import protocol as p
from app.confirm import services as confirm
from app.models import AccessRequestState
from app.relay.wsio import Closed

if TYPE_CHECKING:
    from app.relay.agent import AgentConn
    from app.relay.viewer import ViewerConn

log = logging.getLogger(__name__)

POLL_EVERY = 0.5
# How much longer than its own timeout the relay waits for the agent's answer (the network).
HOST_GRACE = 5.0
WAITING = {
    (True, False): "Waiting for confirmation at the device…",
    (False, True): "Waiting for confirmation by email…",
    (True, True): "Waiting for confirmation at the device or by email…",
}
NOBODY_TO_ASK = ("Access denied: this connection needs a confirmation, and nobody could be asked "
                 "(the device is offline and no confirmation email could be sent).")
NO_ANSWER = "Access denied: nobody confirmed the connection in time."


@dataclass
class HostQuestion:
    """A ``CONFIRM_REQUEST`` sent to one agent connection, waiting for its ``CONFIRM_ANSWER``
    (``DeviceLink.confirm_answer`` fills it in)."""

    request_id: int
    agent: "AgentConn"
    answer: p.Answer | None = None
    event: Event = field(default_factory=Event)


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    state: p.ConfirmOutcome
    via: p.ConfirmVia
    text: str


def host_timeout(app) -> int:
    return max(1, min(0xFFFF, int(app.config.get("CONFIRM_TIMEOUT", 30))))


def email_timeout(app) -> float:
    return float(app.config.get("CONFIRM_EMAIL_TIMEOUT", 600))


def plan_for(viewer: "ViewerConn", rules: list[confirm.ConfirmRule]) -> confirm.ConfirmPlan | None:
    """The confirmation this viewer needs now, or None (no role applies, or its exceptions
    waive it: the latter is audited)."""
    if not rules:
        return None
    link = viewer.link
    status = link.status if link.online else None
    locked = status.locked if status is not None else None
    user = status.user if status is not None else None
    plan = confirm.plan(rules, locked, user)
    if plan is None and any(r.on_host or r.by_email for r in rules):
        confirm.audit_skipped(viewer.grant, rules, locked, user)
    return plan


def _host_person(viewer: "ViewerConn") -> str:
    status = viewer.link.status
    user = status.user.strip() if status is not None else ""
    return user or "the person at the device"


def outcome_of(row) -> Outcome:
    """What the viewer is told about a decided request."""
    via = p.ConfirmVia.HOST if row.answered_via == confirm.HOST else (
        p.ConfirmVia.EMAIL if row.answered_via == confirm.EMAIL else p.ConfirmVia.NONE)
    who = row.answered_by or "somebody"
    how = f"at the device by {who}" if via is p.ConfirmVia.HOST else f"by {who} (by email)"
    if row.state is AccessRequestState.allowed:
        return Outcome(True, p.ConfirmOutcome.ALLOWED, via, f"Allowed {how}.")
    if row.state is AccessRequestState.denied:
        return Outcome(False, p.ConfirmOutcome.DENIED, via, f"Access denied {how}.")
    return Outcome(False, p.ConfirmOutcome.NO_ANSWER, p.ConfirmVia.NONE, NO_ANSWER)


class _Waiter:
    """One viewer's wait (the steps of the module docstring)."""

    def __init__(self, app, viewer: "ViewerConn", plan: confirm.ConfirmPlan):
        self.app, self.viewer, self.plan = app, viewer, plan
        self.request_id = 0
        self.question: HostQuestion | None = None
        self.host_deadline = 0.0
        self.emailed = False

    def run(self) -> Outcome | None:
        """The outcome, or None when the viewer went away first (the request is cancelled)."""
        viewer, plan = self.viewer, self.plan
        timeout = host_timeout(self.app)
        asks_host = plan.on_host and viewer.link.online
        email_now = plan.by_email and (plan.email_at_once or not asks_host)
        expires_in = email_timeout(self.app) if email_now else timeout + HOST_GRACE
        self.request_id = confirm.open_request(viewer.grant, plan, expires_in)
        try:
            if asks_host:
                self._ask_host(timeout)
            if email_now:
                self._email()
            if viewer.gone.is_set():
                confirm.finish(self.request_id, AccessRequestState.cancelled, "the technician left")
                return None
            if self.question is None and not self.emailed:
                confirm.finish(self.request_id, AccessRequestState.expired, "nobody could be asked")
                return Outcome(False, p.ConfirmOutcome.NO_ANSWER, p.ConfirmVia.NONE, NOBODY_TO_ASK)
            viewer.post(p.ConfirmState(p.ConfirmOutcome.WAITING, p.ConfirmVia.NONE,
                                       WAITING[(self.question is not None, self.emailed)]).encode())
            return self._wait()
        finally:
            self._drop_question(cancel=True)

    def _ask_host(self, timeout: int) -> None:
        link = self.viewer.link
        grant = self.viewer.grant
        self.question = HostQuestion(self.request_id, link.agent)
        link.questions[self.request_id] = self.question
        technician = p.clip_str8(f"{grant.technician} ({grant.username})")
        link.agent.post(p.ConfirmRequest(self.request_id, timeout, technician).encode())
        self.host_deadline = time.monotonic() + timeout + HOST_GRACE

    def _email(self) -> None:
        if self.plan.email_group_ids:
            confirm.extend(self.request_id, email_timeout(self.app))
            sent = confirm.send_emails(self.request_id, self.plan.email_group_ids,
                                       stop=self.viewer.gone.is_set)
            self.emailed = sent > 0
            if not sent:
                log.warning("relay: no confirmation email could be sent for request %s", self.request_id)

    def _drop_question(self, cancel: bool) -> None:
        """Stop waiting for the host (a late ``CONFIRM_ANSWER`` is then ignored). ``cancel``:
        unless the agent answered, or its connection is gone, tell it with ``CONFIRM_CANCEL``
        to close the prompt."""
        question, self.question = self.question, None
        if question is None:
            return
        link = self.viewer.link
        link.questions.pop(question.request_id, None)
        if cancel and question.answer is None and link.agent is question.agent:
            question.agent.post(p.ConfirmCancel(question.request_id).encode())

    def _host_answer(self) -> p.Answer | None:
        """The host's answer once it is in (UNANSWERED when the agent gave up, went away, or
        the relay's own deadline passed); None while it may still come."""
        q = self.question
        if q.answer is not None:
            return q.answer
        if self.viewer.link.agent is not q.agent or time.monotonic() > self.host_deadline:
            return p.Answer.UNANSWERED
        return None

    def _wait(self) -> Outcome | None:
        viewer = self.viewer
        while True:
            if viewer.gone.wait(POLL_EVERY):
                confirm.finish(self.request_id, AccessRequestState.cancelled, "the technician left")
                return None
            if self.question is not None:
                answer = self._host_answer()
                if answer in (p.Answer.ALLOW, p.Answer.DENY):
                    self._drop_question(cancel=False)
                    confirm.answer(self.request_id, answer is p.Answer.ALLOW, _host_person(viewer),
                                   confirm.HOST)
                    # Whether it won or an emailed answer came first, the row says what counts.
                elif answer is p.Answer.UNANSWERED:
                    self._drop_question(cancel=True)  # the relay's deadline: the prompt may hang
                    if self.plan.by_email and not self.emailed:
                        self._email()
                        if self.emailed:
                            viewer.post(p.ConfirmState(p.ConfirmOutcome.WAITING, p.ConfirmVia.NONE,
                                                       "Nobody answered at the device: waiting "
                                                       "for confirmation by email…").encode())
                    if not self.emailed:
                        confirm.finish(self.request_id, AccessRequestState.expired,
                                       "nobody answered at the device")
            row = confirm.get_request(self.request_id)
            if row is None:
                return Outcome(False, p.ConfirmOutcome.NO_ANSWER, p.ConfirmVia.NONE, NO_ANSWER)
            if row.state is not AccessRequestState.pending:
                return outcome_of(row)
            if self.question is None and confirm.is_expired(row):
                confirm.finish(self.request_id, AccessRequestState.expired, "nobody answered")
                # Read again: an answer may have landed just before the deadline.


def wait_then_begin(app, viewer: "ViewerConn", plan: confirm.ConfirmPlan) -> None:
    """The waiting greenlet of one viewer: wait for the confirmation, then start the session or
    close the viewer with 4012."""
    with app.app_context():
        try:
            outcome = _Waiter(app, viewer, plan).run()
            if outcome is None:
                return
            state = p.ConfirmState(outcome.state, outcome.via, outcome.text).encode()
            if outcome.allowed:
                viewer.post(state)
                viewer.begin(after_confirmation=True)
            else:
                try:  # straight away, so that it goes before the ERROR and the close
                    viewer.channel.send(state)
                except Closed:
                    return
                viewer.terminate(p.CloseCode.ACCESS_DENIED, outcome.text)
        except Exception:  # noqa: BLE001 - the viewer must hear about it, the relay go on
            log.exception("relay: confirming access for viewer %s failed", viewer.id)
            viewer.terminate(p.CloseCode.SERVER_ERROR, "The relay failed while asking for "
                             "confirmation; try again.")


def spawn(app, viewer: "ViewerConn", plan: confirm.ConfirmPlan) -> gevent.Greenlet:
    return gevent.spawn(wait_then_begin, app, viewer, plan)
