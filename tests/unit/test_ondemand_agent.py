"""The OnDemand agent's connection (agents/ondemand/agent.py) against a scripted relay on a real
loopback websocket, with the Host agent tests' fake desktop: HELLO and nothing else before
consent, the consent answer, what a session may do with each permission (the screen, input,
the clipboard), a session that ends and one that waits again, Disconnect (4013), and what each
way of ending tells the person.

The relay is the scripted one of tests/unit/test_agent_connection.py; the real relay, the real
program and its Tk windows on Xvfb are tests/integration/test_ondemand_x11_e2e.py."""
from __future__ import annotations

import queue
import threading

import pytest

from agents.common import protocol as P
from agents.common.transport import TransportClosed, WebsocketTransport
from agents.ondemand.agent import (
    ConsentAsked,
    ConsentSettled,
    OnDemandAgent,
    OnDemandConfig,
    Outcome,
    SessionLeft,
    SessionRunning,
    Waiting,
    after_connection,
    refused_before_opening,
)
from tests.unit.test_agent_connection import SCREENS, fake_desktop, relay, rgba  # noqa: F401 - relay: fixture

VIEW, INPUT, CLIP = "view_screen", "keyboard_mouse", "clipboard"
EVERYTHING = P.permission_mask({VIEW, INPUT, CLIP, "file_transfer"})


class Run:
    """An OnDemandAgent running on a thread, its events on a queue."""

    def __init__(self, relay, desktop=None, key="123456789"):
        self.events: queue.Queue = queue.Queue()
        self.desktop = desktop or fake_desktop()
        self.agent = OnDemandAgent(OnDemandConfig(relay.url, key, ":0"), self.events.put,
                                   transport=WebsocketTransport(open_timeout=5),
                                   desktop_factory=lambda display: self.desktop, hotkey_factory=None)
        self.outcome: list[Outcome] = []
        self.thread = threading.Thread(target=lambda: self.outcome.append(self.agent.run()), daemon=True)
        self.thread.start()

    def event(self, kind, timeout=10.0):
        while True:
            event = self.events.get(timeout=timeout)
            if isinstance(event, kind):
                return event

    def result(self, timeout=15.0) -> Outcome:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the agent did not finish"
        return self.outcome[0]


def sync(link, nonce):
    """Everything the agent sent before answering this ping arrives before its PONG."""
    link.send(P.Ping(nonce))
    seen = []
    while True:
        message = link.recv()
        if message == P.Pong(nonce):
            return seen
        seen.append(message)


def waiting(relay, run):
    link = relay.next()
    hello = link.recv()
    assert isinstance(hello, P.Hello) and hello.user == "alice" and hello.agent_version
    assert isinstance(run.event(Waiting), Waiting)
    return link


def consent(link, run, allow, asked=EVERYTHING, technician="Tina Tech (tina@example.com)"):
    link.send(P.ConsentRequest(asked, 60, technician))
    asked_event = run.event(ConsentAsked)
    assert asked_event.technician == technician
    assert asked_event.offered == (VIEW, INPUT, CLIP)
    assert run.agent.answer(asked_event.seq, allow)
    answer = link.recv_until(P.Consent, apply=False)
    return asked_event, answer


def test_only_hello_goes_out_until_the_person_allows_something(relay):
    run = Run(relay)
    link = waiting(relay, run)
    assert relay.tokens == ["Bearer 123456789"]
    # Text copied on the computer, a viewer-less request for the screen: nothing leaves.
    run.desktop.clipboard.on_change("a password copied while waiting")
    link.send(P.RequestKeyframe(P.ALL_SCREENS))
    link.send(P.Clipboard("pasted by nobody"))
    link.send(P.Key(0x61, True))
    assert sync(link, 1) == []
    assert run.desktop.input.events.empty() and run.desktop.clipboard.set.empty()
    assert run.desktop.capture.grabs == 0
    # A SESSION without any consent shows nothing either.
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, EVERYTHING, "tech"))
    assert run.event(SessionRunning).allowed == frozenset()
    assert sync(link, 2) == [] and run.desktop.capture.grabs == 0
    run.agent.disconnect()
    assert run.result().exit_code == 0


def test_view_only_sends_the_screen_but_takes_no_input_and_no_clipboard(relay):
    run = Run(relay)
    link = waiting(relay, run)
    asked, answer = consent(link, run, [VIEW])
    assert answer == P.Consent(P.permission_mask({VIEW}))
    assert run.event(ConsentSettled) == ConsentSettled(asked.seq, answer.permissions)
    assert not run.agent.answer(asked.seq, [VIEW, INPUT]), "a question is answered once"

    # The relay's permissions may be wider than the consent: the consent wins.
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, EVERYTHING, "Tina Tech"))
    info = link.recv_until(P.ScreenInfo)
    assert [m.width for m in info.monitors] == [s.width for s in SCREENS]
    first = link.recv_until(P.FrameUpdate)
    second = link.recv_until(P.FrameUpdate)
    assert first.keyframe and second.keyframe
    link.send(P.Ack(second.seq))
    assert link.framebuffers[0] == rgba(run.desktop.capture.frames[0])
    running = run.event(SessionRunning)
    assert running.started and running.allowed == {VIEW} and running.technician == "Tina Tech"

    link.send(P.Pointer(0, 10, 10, 1))
    link.send(P.Key(0x61, True))
    link.send(P.Clipboard("from the technician"))
    run.desktop.clipboard.on_change("copied on the computer")
    assert not [m for m in sync(link, 3) if isinstance(m, P.Clipboard)]
    events = []
    while not run.desktop.input.events.empty():
        events.append(run.desktop.input.events.get())
    assert not [e for e in events if e[0] in ("move", "button", "key")], events
    assert run.desktop.clipboard.set.empty()
    run.agent.disconnect()
    assert run.result().code == P.CloseCode.ENDED_BY_HOST


def test_keyboard_and_clipboard_without_view_send_no_screen(relay):
    run = Run(relay)
    link = waiting(relay, run)
    consent(link, run, [INPUT, CLIP])
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, EVERYTHING, "tech"))
    assert run.event(SessionRunning).allowed == {INPUT, CLIP}
    link.send(P.Key(0x62, True))
    assert run.desktop.input.events.get(timeout=5) == ("key", 0x62, True)
    link.send(P.Clipboard("to the computer"))
    assert run.desktop.clipboard.set.get(timeout=5) == "to the computer"
    run.desktop.clipboard.on_change("from the computer")
    seen = sync(link, 4)
    assert P.Clipboard("from the computer") in seen
    assert not [m for m in seen if isinstance(m, (P.ScreenInfo, P.FrameUpdate, P.Cursor))]
    assert run.desktop.capture.grabs == 0
    run.agent.disconnect()
    run.result()


def test_no_answer_in_time_declines_and_the_session_waits_again(relay):
    run = Run(relay)
    link = waiting(relay, run)
    link.send(P.ConsentRequest(EVERYTHING, 1, "tech"))
    asked = run.event(ConsentAsked)
    assert link.recv_until(P.Consent, timeout=10, apply=False) == P.Consent(0)
    assert run.event(ConsentSettled) == ConsentSettled(asked.seq, 0)
    assert run.event(Waiting).note == "You declined the session."
    assert not run.agent.answer(asked.seq, [VIEW]), "too late"
    run.agent.disconnect()
    run.result()


def test_a_technician_leaving_before_the_answer_closes_the_question_unanswered(relay):
    run = Run(relay)
    link = waiting(relay, run)
    link.send(P.ConsentRequest(EVERYTHING, 60, "tech"))
    asked = run.event(ConsentAsked)
    link.send(P.Session(P.SessionEvent.LEFT, 1, 0, 0, "tech"))
    assert run.event(ConsentSettled) == ConsentSettled(asked.seq, 0)   # the window closes
    assert run.event(Waiting).note == "tech left before you answered."
    assert not run.agent.answer(asked.seq, [VIEW]), "a late click sends nothing"
    assert not [m for m in sync(link, 7) if isinstance(m, P.Consent)]
    run.agent.disconnect()
    run.result()


def test_a_technician_leaving_stops_the_screen_and_a_new_start_asks_again(relay):
    run = Run(relay)
    link = waiting(relay, run)
    consent(link, run, [VIEW, INPUT])
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, EVERYTHING, "tech"))
    link.recv_until(P.FrameUpdate)
    run.event(SessionRunning)
    link.send(P.Session(P.SessionEvent.LEFT, 1, 0, 0, "tech"))
    assert run.event(SessionLeft).technician == "tech"
    assert run.desktop.input.events.get(timeout=5) == ("release_all",)
    sync(link, 5)
    # The next viewer without a new consent gets nothing; with one, what was allowed then.
    link.send(P.Session(P.SessionEvent.JOINED, 2, 1, EVERYTHING, "tech"))
    assert run.event(SessionRunning).allowed == frozenset()
    link.send(P.Key(0x63, True))
    assert not [m for m in sync(link, 6) if isinstance(m, (P.ScreenInfo, P.FrameUpdate))]
    assert not [e for e in list(run.desktop.input.events.queue) if e[0] == "key"]
    link.send(P.Session(P.SessionEvent.LEFT, 2, 0, 0, "tech"))
    consent(link, run, [INPUT])
    link.send(P.Session(P.SessionEvent.JOINED, 3, 1, EVERYTHING, "tech"))
    link.send(P.Key(0x64, True))
    while (event := run.desktop.input.events.get(timeout=5))[0] != "key":
        pass
    assert event == ("key", 0x64, True)
    run.agent.disconnect()
    run.result()


def test_disconnect_closes_with_4013_and_tells_the_person(relay):
    run = Run(relay)
    link = waiting(relay, run)
    run.agent.disconnect()
    with pytest.raises(Exception) as closed:
        while True:
            link.recv()
    assert closed.value.rcvd.code == P.CloseCode.ENDED_BY_HOST
    outcome = run.result()
    assert (outcome.kind, outcome.exit_code) == ("ended", 0)
    assert "You ended the session" in outcome.sentence


@pytest.mark.parametrize("code, error, kind, says", [
    (P.CloseCode.UNAUTHENTICATED, "This session key was already used: ask the technician for a new one.",
     "key", "already used"),
    (P.CloseCode.UNSUPPORTED_VERSION, "This OnDemand app (version 0.0.1) is too old.", "stop",
     "Download it again from the link"),
    (P.CloseCode.REJECTED, "The technician rejected this session: its key no longer works.", "stop",
     "rejected this session"),
    (P.CloseCode.EXPIRED, "Nobody started this session within an hour.", "stop", "within an hour"),
    (P.CloseCode.IDLE, "Nothing received for 75 seconds.", "stop", "Nothing received"),
])
def test_the_relay_s_close_codes_end_the_run_with_its_sentence(relay, code, error, kind, says):
    run = Run(relay)
    link = waiting(relay, run)
    link.send(P.Error(code, error))
    link.close(code, error[:100])
    outcome = run.result()
    assert (outcome.kind, outcome.code) == (kind, code)
    assert says in outcome.sentence and outcome.exit_code == 1


def test_a_relay_that_closes_after_a_session_ended_it():
    outcome = after_connection(TransportClosed(1000, ""), None, person_ended=False, had_session=True)
    assert (outcome.kind, outcome.exit_code) == ("ended", 0)


def test_a_connection_that_never_opened_may_be_tried_again_and_429_says_wait():
    assert refused_before_opening(TransportClosed(None, "refused"), "http://x").kind == "retry"
    too_many = refused_before_opening(TransportClosed(None, "", status=429), "http://x")
    assert too_many.kind == "key" and "Wait a few minutes" in too_many.sentence
