"""The Host agent's connection loop against a relay on a real loopback websocket: enrolment
once, HELLO and SCREEN_INFO, key frames and changed tiles with flow control, input, clipboard,
power, pings, and what each close code makes the agent do (agents/host/agent.py).

The relay here is a small scripted websocket server speaking docs/protocol.md through
agents.common.protocol; the desktop is a fake one (the X11 parts have their own tests under
Xvfb in tests/integration/test_agent_x11.py)."""
from __future__ import annotations

import queue
import random
import threading
import time

import pytest
from websockets.sync.server import serve

import relay_ext
from agents.common import protocol as P
from agents.common.transport import Backoff, WebsocketTransport
from agents.host.agent import EXIT_CONFIG, EXIT_REVOKED, Agent, Desktop, EnrolmentRefused
from agents.host.capture import Screen
from agents.host.desktop import DesktopSession
from agents.host.power import PowerActions
from agents.host.state import Credential, StateDir, build_config

SCREENS = [Screen(0, 0, 0, 160, 96, "DP-1", True), Screen(1, 160, 0, 70, 50, "HDMI-1", False)]


def solid(screen: Screen, bgra: bytes) -> bytearray:
    return bytearray(bgra * (screen.width * screen.height))


class FakeCapture:
    def __init__(self):
        self.layout = list(SCREENS)
        self.frames = {s.index: solid(s, b"\x40\x30\x20\xff") for s in SCREENS}
        self.grabs = 0
        self.lock = threading.Lock()
        self.new_layout = None

    def screens(self):
        return list(self.layout)

    def refresh(self):
        if self.new_layout is None:
            return False
        with self.lock:
            self.layout, self.new_layout = self.new_layout, None
            self.frames = {s.index: solid(s, b"\x00\x80\x00\xff") for s in self.layout}
        return True

    def grab(self, screen):
        with self.lock:
            self.grabs += 1
            return bytearray(self.frames[screen.index])

    def paint(self, index, x, y, w, h, bgra):
        screen = self.layout[index]
        with self.lock:
            frame = self.frames[index]
            for row in range(y, y + h):
                start = (row * screen.width + x) * 4
                frame[start:start + w * 4] = bgra * w

    def close(self):
        pass


class FakeInput:
    def __init__(self):
        self.events = queue.Queue()

    def move(self, x, y):
        self.events.put(("move", x, y))

    def button(self, number, pressed):
        self.events.put(("button", number, pressed))

    def wheel(self, dx, dy):
        self.events.put(("wheel", dx, dy))

    def key(self, keysym, pressed):
        self.events.put(("key", keysym, pressed))
        return True

    def release_all(self):
        self.events.put(("release_all",))

    def close(self):
        pass


class FakeClipboard:
    def __init__(self):
        self.set = queue.Queue()
        self.on_change = None

    def set_text(self, text):
        self.set.put(text)

    def watch(self, on_change):
        self.on_change = on_change

    def close(self):
        pass


def fake_desktop(capture=None, systemd=False):
    return Desktop(capture=capture or FakeCapture(), input=FakeInput(), clipboard=FakeClipboard(),
                   power=PowerActions(":0", runner=lambda args: None, which=lambda n: None,
                                      systemd=lambda: systemd),
                   session=lambda: DesktopSession(None, "alice", False),
                   pointer=lambda: None)


class Relay:
    """A scripted relay: each accepted connection is put on ``connections`` as an
    :class:`AgentLink`; ``refuse`` holds close codes to answer the next connections with."""

    def __init__(self, port=0):
        self.connections: queue.Queue[AgentLink] = queue.Queue()
        self.refuse: list[tuple[int, str]] = []
        self.tokens: list[str] = []
        self.links: list[AgentLink] = []
        self.server = serve(self._handler, "127.0.0.1", port, compression=None,
                            max_size=P.MAX_AGENT_MESSAGE, ping_interval=None)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _handler(self, ws):
        self.tokens.append(ws.request.headers.get("Authorization", ""))
        if self.refuse:
            code, reason = self.refuse.pop(0)
            ws.close(code, reason)
            return
        link = AgentLink(ws)
        self.links.append(link)
        self.connections.put(link)
        link.done.wait(60)

    def next(self, timeout=10) -> "AgentLink":
        return self.connections.get(timeout=timeout)

    def close(self):
        for link in self.links:
            link.done.set()
        self.server.shutdown()


class AgentLink:
    """The relay's end of one agent connection, with a viewer's eye for frames."""

    def __init__(self, ws):
        self.ws = ws
        self.done = threading.Event()
        self.decompressor = P.StreamDecompressor()
        self.framebuffers = {s.index: bytearray(s.width * s.height * 4) for s in SCREENS}

    def send(self, message):
        self.ws.send(message.encode())

    def recv(self, timeout=5.0):
        return P.decode(self.ws.recv(timeout=timeout), self.decompressor)

    def recv_until(self, kind, timeout=5.0, apply=True):
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv(max(0.01, deadline - time.monotonic()))
            if isinstance(message, P.FrameUpdate) and apply:
                screen = SCREENS[message.screen]
                P.apply_rects(self.framebuffers[message.screen], screen.width, screen.height, message.rects)
            if isinstance(message, kind):
                return message

    def close(self, code=1000, reason=""):
        self.ws.close(code, reason)
        self.done.set()


class Sleeps:
    """The agent's sleep: records each delay, waits only a moment."""

    def __init__(self):
        self.delays = []

    def __call__(self, seconds):
        self.delays.append(seconds)
        time.sleep(0.02)
        return False


@pytest.fixture
def relay():
    server = Relay()
    yield server
    server.close()


class Enroller:
    def __init__(self, answers=None):
        self.calls = []
        self.answers = list(answers or [])

    def __call__(self, config, hardware_id):
        self.calls.append(hardware_id)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return 7, f"token-{len(self.calls)}", "enrolled"


def start_agent(relay, tmp_path, desktop=None, enroller=None, sleeps=None, key="KEY"):
    config = build_config(server=relay.url, enroll_key=key, state_dir=str(tmp_path / "state"),
                          display=":0", hardware_id="hw-1", environ={})
    desktop = desktop or fake_desktop()
    agent = Agent(config, transport=WebsocketTransport(open_timeout=5),
                  desktop_factory=lambda display: desktop, enroller=enroller or Enroller(),
                  sleep=sleeps or Sleeps(), backoff=Backoff(rng=random.Random(1)))
    result = []
    thread = threading.Thread(target=lambda: result.append(agent.run()), daemon=True)
    thread.start()
    agent.thread, agent.result, agent.desktop_used = thread, result, desktop
    return agent


def finish(agent):
    agent.stop()
    agent.thread.join(10)
    assert not agent.thread.is_alive()
    return agent.result[0]


def rgba(frame: bytearray) -> bytes:
    return relay_ext.bgra_to_rgba(bytes(frame))


def test_agent_enrols_once_and_connects_with_its_token_saying_hello(relay, tmp_path):
    enroller = Enroller()
    agent = start_agent(relay, tmp_path, enroller=enroller)
    link = relay.next()
    hello = link.recv()
    assert isinstance(hello, P.Hello)
    assert hello.version == P.PROTOCOL_VERSION and hello.user == "alice" and not hello.locked
    assert hello.hostname and hello.os and hello.agent_version
    info = link.recv()
    assert info == P.ScreenInfo((P.Monitor(0, 0, 0, 160, 96, True), P.Monitor(1, 160, 0, 70, 50, False)))
    assert relay.tokens == ["Bearer token-1"]
    assert enroller.calls == ["hw-1"]
    assert finish(agent) == 0
    link.close()

    # A restart uses the kept token and does not enrol again.
    again = start_agent(relay, tmp_path, enroller=enroller)
    relay.next().recv()
    assert relay.tokens[-1] == "Bearer token-1" and len(enroller.calls) == 1
    finish(again)


def test_no_capture_until_a_viewer_joins_then_a_keyframe_then_only_changes(relay, tmp_path):
    capture = FakeCapture()
    agent = start_agent(relay, tmp_path, desktop=fake_desktop(capture))
    link = relay.next()
    link.recv(), link.recv()
    time.sleep(0.5)
    assert capture.grabs == 0, "nobody watches: nothing is captured"

    link.send(P.Session(P.SessionEvent.JOINED, viewer=1, viewers=1, permissions=0xFFFF, technician="tech@x"))
    first = link.recv_until(P.FrameUpdate)
    assert first.keyframe and first.seq == 1
    second = link.recv_until(P.FrameUpdate)
    assert second.keyframe and {first.screen, second.screen} == {0, 1}
    link.send(P.Ack(second.seq))
    for s in SCREENS:
        assert link.framebuffers[s.index] == rgba(capture.frames[s.index])
    # One solid background: a keyframe of fills, not pixels.
    assert all(isinstance(r, P.FillRect) for r in first.rects + second.rects)

    capture.paint(0, 70, 10, 5, 3, b"\x00\x00\xff\xff")
    update = link.recv_until(P.FrameUpdate)
    assert not update.keyframe and update.screen == 0 and update.seq == 3
    assert [(r.x, r.y, r.width, r.height) for r in update.rects] == [(70, 10, 5, 3)]
    assert link.framebuffers[0] == rgba(capture.frames[0])
    link.send(P.Ack(update.seq))

    link.send(P.RequestKeyframe(1))
    key = link.recv_until(P.FrameUpdate)
    assert key.keyframe and key.screen == 1
    finish(agent)
    link.close()


def test_a_new_monitor_layout_is_announced_and_sent_as_key_frames(relay, tmp_path, monkeypatch):
    import agents.host.agent as agent_module

    monkeypatch.setattr(agent_module, "MONITORS_EVERY", 0.2)
    capture = FakeCapture()
    agent = start_agent(relay, tmp_path, desktop=fake_desktop(capture))
    link = relay.next()
    link.recv(), link.recv()
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, 0, "tech"))
    link.send(P.Ack(link.recv_until(P.FrameUpdate).seq))
    link.send(P.Ack(link.recv_until(P.FrameUpdate).seq))

    capture.new_layout = [Screen(0, 0, 0, 100, 60, "DP-1", True)]  # the second monitor unplugged
    info = link.recv_until(P.ScreenInfo)
    assert info == P.ScreenInfo((P.Monitor(0, 0, 0, 100, 60, True),))
    update = link.recv_until(P.FrameUpdate, apply=False)
    assert update.keyframe and update.screen == 0
    assert update.rects == (P.FillRect(0, 0, 64, 60, b"\x00\x80\x00\xff"),
                            P.FillRect(64, 0, 36, 60, b"\x00\x80\x00\xff"))
    finish(agent)
    link.close()


def test_a_lock_or_a_new_user_is_reported_even_while_nobody_watches(relay, tmp_path, monkeypatch):
    import agents.host.agent as agent_module

    monkeypatch.setattr(agent_module, "STATUS_EVERY", 0.2)
    desktop = fake_desktop()
    now = {"session": DesktopSession("c2", "alice", False)}
    desktop.session = lambda: now["session"]
    agent = start_agent(relay, tmp_path, desktop=desktop)
    link = relay.next()
    assert link.recv().user == "alice"
    now["session"] = DesktopSession("c2", "alice", True)
    assert link.recv_until(P.Status) == P.Status("alice", True)
    now["session"] = DesktopSession("c3", "bob", False)
    assert link.recv_until(P.Status) == P.Status("bob", False)
    finish(agent)
    link.close()


def test_cursor_position_and_shape_go_to_viewers(relay, tmp_path):
    desktop = fake_desktop()
    arrow = P.CursorShape(0, 0, 2, 2, bytes(range(16)))
    where = {"at": (5, 6)}
    shapes = []
    desktop.pointer = lambda: where["at"]

    def shape(force=False):
        shapes.append(force)
        return arrow if force or len(shapes) == 1 else None

    desktop.cursor_shape = shape
    agent = start_agent(relay, tmp_path, desktop=desktop)
    link = relay.next()
    link.recv(), link.recv()
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, 0, "tech"))
    assert link.recv_until(P.Cursor) == P.Cursor(5, 6, True, arrow)
    where["at"] = (300, 7)  # on the second monitor: virtual desktop coordinates
    assert link.recv_until(P.Cursor) == P.Cursor(300, 7, True, None)
    finish(agent)
    link.close()


def test_at_most_two_frame_updates_wait_for_an_ack(relay, tmp_path):
    capture = FakeCapture()
    agent = start_agent(relay, tmp_path, desktop=fake_desktop(capture))
    link = relay.next()
    link.recv(), link.recv()
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, 0, "tech"))
    stop = threading.Event()

    def keep_changing():
        colour = 0
        while not stop.is_set():
            colour = (colour + 1) % 250
            capture.paint(0, 0, 0, 8, 8, bytes((colour, 0, 0, 255)))
            time.sleep(0.01)

    painter = threading.Thread(target=keep_changing, daemon=True)
    painter.start()
    try:
        updates = [link.recv_until(P.FrameUpdate), link.recv_until(P.FrameUpdate)]
        with pytest.raises(TimeoutError):
            link.recv_until(P.FrameUpdate, timeout=1.0)
        link.send(P.Ack(updates[0].seq))
        third = link.recv_until(P.FrameUpdate)
        assert third.seq == 3
        with pytest.raises(TimeoutError):
            link.recv_until(P.FrameUpdate, timeout=0.7)
        link.send(P.Ack(third.seq))  # cumulative: acknowledges 2 as well
        assert link.recv_until(P.FrameUpdate).seq == 4
        assert link.recv_until(P.FrameUpdate).seq == 5
    finally:
        stop.set()
    finish(agent)
    link.close()


def test_pointer_and_key_messages_reach_the_desktop_and_held_keys_are_released(relay, tmp_path):
    desktop = fake_desktop()
    agent = start_agent(relay, tmp_path, desktop=desktop)
    link = relay.next()
    link.recv(), link.recv()
    events = desktop.input.events
    # Monitor 1 starts at x=160: positions are relative to it, clamped inside it.
    link.send(P.Pointer(screen=1, x=10, y=20, buttons=0b001))
    assert events.get(timeout=5) == ("move", 170, 20)
    assert events.get(timeout=5) == ("button", 1, True)
    link.send(P.Pointer(screen=1, x=500, y=20, buttons=0b100, wheel_y=-2))
    assert events.get(timeout=5) == ("move", 160 + 69, 20)
    assert {events.get(timeout=5), events.get(timeout=5)} == {("button", 1, False), ("button", 3, True)}
    assert events.get(timeout=5) == ("wheel", 0, -2)
    link.send(P.Key(0xFF0D, True))
    assert events.get(timeout=5) == ("key", 0xFF0D, True)
    link.send(P.Key(0x010000E9, True))  # é as a Unicode keysym: X's Latin-1 keysym
    assert events.get(timeout=5) == ("key", 0xE9, True)
    link.close(1011, "relay crashed")
    assert events.get(timeout=5) == ("release_all",)
    finish(agent)


def test_clipboard_travels_both_ways_only_while_someone_watches(relay, tmp_path):
    desktop = fake_desktop()
    agent = start_agent(relay, tmp_path, desktop=desktop)
    link = relay.next()
    link.recv(), link.recv()
    link.send(P.Clipboard("from the technician ✓"))
    assert desktop.clipboard.set.get(timeout=5) == "from the technician ✓"

    desktop.clipboard.on_change("copied before anyone watched")
    link.send(P.Session(P.SessionEvent.JOINED, 1, 1, 0, "tech"))
    link.send(P.Ping(1))
    assert link.recv_until(P.Pong, apply=False) == P.Pong(1)
    desktop.clipboard.on_change("copied on the machine")
    assert link.recv_until(P.Clipboard).text == "copied on the machine"
    finish(agent)
    link.close()


def test_power_action_not_possible_here_is_refused_with_the_reason(relay, tmp_path):
    agent = start_agent(relay, tmp_path)
    link = relay.next()
    link.recv(), link.recv()
    link.send(P.Power(P.PowerAction.RESTART))
    result = link.recv_until(P.PowerResult)
    assert result.action == P.PowerAction.RESTART and result.status == P.PowerStatus.REFUSED
    assert "not run by systemd" in result.message
    link.send(P.Ping(99))
    assert link.recv_until(P.Pong) == P.Pong(99)
    finish(agent)
    link.close()


def test_a_message_the_agent_cannot_read_closes_with_the_documented_code(relay, tmp_path):
    agent = start_agent(relay, tmp_path)
    link = relay.next()
    link.recv(), link.recv()
    link.ws.send(b"\x42garbage")
    with pytest.raises(Exception) as closed:
        link.ws.recv(timeout=5)
    assert closed.value.rcvd.code == P.CloseCode.UNKNOWN_TYPE
    link.done.set()
    relay.next()  # and it comes back
    finish(agent)


def test_revoked_device_stops_and_never_enrols_itself_again(relay, tmp_path):
    relay.refuse = [(P.CloseCode.DEVICE_REVOKED, "device revoked")]
    enroller = Enroller()
    agent = start_agent(relay, tmp_path, enroller=enroller)
    agent.thread.join(10)
    assert agent.result == [EXIT_REVOKED]
    assert StateDir(tmp_path / "state").load_credential() is None
    again = start_agent(relay, tmp_path, enroller=enroller)
    again.thread.join(10)
    assert again.result == [EXIT_REVOKED]
    assert len(enroller.calls) == 1 and len(relay.tokens) == 1


def test_pending_device_retries_slowly_until_enrolled(relay, tmp_path):
    relay.refuse = [(P.CloseCode.DEVICE_PENDING, "pending"), (P.CloseCode.DEVICE_PENDING, "pending")]
    sleeps = Sleeps()
    agent = start_agent(relay, tmp_path, sleeps=sleeps)
    link = relay.next()
    assert isinstance(link.recv(), P.Hello)
    assert len(sleeps.delays) == 2 and all(22.5 <= d <= 30 for d in sleeps.delays)
    finish(agent)
    link.close()


def test_unknown_token_makes_the_agent_enrol_again(relay, tmp_path):
    StateDir(tmp_path / "state").save_credential(Credential(3, "old-token", relay.url))
    relay.refuse = [(P.CloseCode.UNAUTHENTICATED, "unknown device token")]
    enroller = Enroller()
    agent = start_agent(relay, tmp_path, enroller=enroller)
    link = relay.next()
    link.recv()
    assert relay.tokens == ["Bearer old-token", "Bearer token-1"]
    assert enroller.calls == ["hw-1"]
    finish(agent)
    link.close()


def test_relay_errors_and_restarts_mean_quick_jittered_reconnects(relay, tmp_path):
    sleeps = Sleeps()
    relay.refuse = [(1011, "relay error"), (1001, "restarting")]
    agent = start_agent(relay, tmp_path, sleeps=sleeps)
    link = relay.next()
    link.recv()
    assert sleeps.delays[0] == 1.0 and 1.0 <= sleeps.delays[1] <= 2.0
    finish(agent)
    link.close()


def test_an_unreachable_relay_is_retried_with_growing_delays_until_it_is_up(tmp_path):
    from tests.fixtures_live import free_port

    port = free_port()

    class Later:
        url = f"http://127.0.0.1:{port}"

    sleeps = Sleeps()
    agent = start_agent(Later, tmp_path, sleeps=sleeps)
    deadline = time.monotonic() + 10
    while len(sleeps.delays) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sleeps.delays[:4] == sorted(sleeps.delays[:4]) and sleeps.delays[0] == 1.0
    assert 4.0 <= sleeps.delays[3] <= 8.0
    relay = Relay(port)
    try:
        link = relay.next()
        assert isinstance(link.recv(), P.Hello)
        finish(agent)
        link.close()
    finally:
        relay.close()


def test_enrolment_with_an_unknown_key_stops_with_status_2(relay, tmp_path):
    enroller = Enroller([EnrolmentRefused(404, "Unknown enrolment key.", retry=False)])
    agent = start_agent(relay, tmp_path, enroller=enroller)
    agent.thread.join(10)
    assert agent.result == [EXIT_CONFIG]


def test_enrolment_refused_for_a_full_licence_is_retried_slowly(relay, tmp_path):
    sleeps = Sleeps()
    enroller = Enroller([EnrolmentRefused(409, "all seats in use", retry=True), OSError("refused")])
    agent = start_agent(relay, tmp_path, enroller=enroller, sleeps=sleeps)
    link = relay.next()
    link.recv()
    assert 22.5 <= sleeps.delays[0] <= 30 and sleeps.delays[1] <= 2
    assert len(enroller.calls) == 3
    finish(agent)
    link.close()
