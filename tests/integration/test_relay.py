"""The relay end to end over real websockets against ``tessera run``: a fake agent (enrolled
through the API) and viewers (signed in over HTTP) speaking docs/protocol.md.

Frames reach viewers exactly; agents and viewers are admitted or refused with the documented
close codes; presence and audit are written.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from agents.common import protocol as p
from tests.integration.relay_world import close_code, noise, relay_server, wait_for  # noqa: F401

pytest.importorskip("websockets")

RED, BLUE, WHITE = b"\xff\x00\x00\xff", b"\x00\x00\xff\xff", b"\xff\xff\xff\xff"


def connected_pair(relay_server, permissions=None, size=(160, 100)):
    """An account, an online device with a fake agent that has shown a key frame, and a viewer
    (signed-in technician) that has painted it."""
    kw = {} if permissions is None else {"permissions": permissions}
    account_id, tech, assignment_id = relay_server.account(**kw)
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello(hostname=device.hostname)
    agent.screen_info(size)
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    viewer.start()
    viewer.expect(p.ScreenInfo)
    assert agent.expect(p.Session).event is p.SessionEvent.JOINED
    assert agent.expect(p.RequestKeyframe).screen == p.ALL_SCREENS
    agent.keyframe()
    viewer.expect(p.FrameUpdate)
    return account_id, tech, assignment_id, device, agent, viewer


# ---------------------------------------------------------------------------------- frames
def test_frames_from_the_agent_reach_the_viewer_exactly(relay_server):
    _, _, _, device, agent, viewer = connected_pair(relay_server)
    assert viewer.frames[0] == agent.frames[0]
    assert viewer.updates[0].keyframe

    palette_indices = p.pack_indices([i % 3 for i in range(30 * 7)], 30, 7, 2)
    agent.update([
        p.FillRect(10, 10, 64, 30, RED),
        p.PaletteRect(100, 50, 30, 7, RED + BLUE + WHITE, palette_indices),
        p.CopyRect(0, 60, 80, 40, 0, 0),
        p.RawRect(159, 99, 1, 1, b"\x01\x02\x03\xff"),
    ])
    agent.acked(agent.seq)  # the relay acks what it applied
    viewer.expect(p.FrameUpdate)
    assert viewer.frames[0] == agent.frames[0]


def test_uncompressed_updates_are_accepted_too(relay_server):
    _, _, _, _, agent, viewer = connected_pair(relay_server)
    agent.update([p.FillRect(0, 0, 160, 100, BLUE)], compress=False)
    viewer.expect(p.FrameUpdate)
    assert viewer.frames[0] == agent.frames[0]


def test_viewer_may_ask_for_uncompressed_frames(relay_server):
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello()
    agent.screen_info((70, 70))
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username), "?compress=none")
    viewer.start()
    agent.expect(p.RequestKeyframe)
    agent.keyframe()
    update = viewer.expect(p.FrameUpdate)
    raw = viewer.ws  # the same bytes again, checked at the flag level
    assert update.keyframe and viewer.frames[0] == agent.frames[0]
    agent.update([p.FillRect(0, 0, 5, 5, RED)])
    data = raw.recv(timeout=5)
    while data[0] != p.MsgType.FRAME_UPDATE:
        data = raw.recv(timeout=5)
    assert not data[1] & p.ZSTD


def test_late_joiner_gets_a_keyframe_from_the_relay_without_asking_the_agent(relay_server):
    account_id, tech, _, device, agent, first = connected_pair(relay_server)
    agent.update([p.FillRect(64, 0, 64, 64, RED)])
    first.expect(p.FrameUpdate)

    second = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    second.start()
    second.expect(p.ScreenInfo)
    update = second.expect(p.FrameUpdate)
    assert update.keyframe
    assert second.frames[0] == agent.frames[0]
    to_agent = agent.quiet(0.5)
    assert [type(m) for m in to_agent if not isinstance(m, (p.Ack, p.Ping))] == [p.Session]
    assert to_agent[-1].viewers == 2


def test_several_viewers_are_served_from_one_capture(relay_server):
    _, tech, _, device, agent, first = connected_pair(relay_server)
    second = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    second.start()
    second.expect(p.ScreenInfo)
    second.expect(p.FrameUpdate)
    for i in range(5):
        agent.update([p.FillRect(i * 20, 0, 20, 20, RED)])
    wait_for(lambda: first.quiet(0.2) is not None and first.frames[0] == agent.frames[0], 5,
             message="first viewer up to date")
    wait_for(lambda: second.quiet(0.2) is not None and second.frames[0] == agent.frames[0], 5,
             message="second viewer up to date")


def test_viewer_chooses_a_screen_of_several(relay_server):
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello()
    agent.screen_info((100, 80), (90, 70))
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    viewer.start()
    agent.expect(p.RequestKeyframe)
    agent.keyframe(0, seed=1)
    agent.keyframe(1, seed=2)
    assert viewer.expect(p.FrameUpdate).screen == 0  # the primary one by default
    viewer.send(p.SelectScreen(1))
    update = viewer.expect(p.FrameUpdate)
    assert update.screen == 1 and update.keyframe
    assert viewer.frames[1] == agent.frames[1]


def test_cursor_and_status_reach_the_viewer(relay_server):
    _, _, _, _, agent, viewer = connected_pair(relay_server)
    shape = p.CursorShape(1, 1, 2, 2, bytes(range(16)))
    agent.send(p.Cursor(40, 50, True, shape))
    assert viewer.expect(p.Cursor) == p.Cursor(40, 50, True, shape)
    agent.send(p.Status(user="bob", locked=True))
    assert viewer.expect(p.Status) == p.Status("bob", True)


# ------------------------------------------------------------------------------ flow control
def test_a_viewer_that_never_acks_has_two_frames_in_flight_then_gets_one_coalesced_frame(relay_server):
    _, _, _, _, agent, viewer = connected_pair(relay_server, size=(640, 128))
    viewer.auto_ack = False
    viewer.sync()  # the relay has the key frame's ack: nothing in flight
    for i in range(10):
        agent.update([p.FillRect(i * 64, (i % 2) * 64, 64, 64, bytes((i * 20, 0, 0, 255)))])
    agent.acked(agent.seq)  # the relay has applied all ten
    frames = viewer.quiet(1.0, p.FrameUpdate)
    assert len(frames) == 2, "at most two frames in flight for a viewer that does not ack"
    for frame in frames:
        viewer.send(p.Ack(frame.seq))
    caught_up = viewer.expect(p.FrameUpdate)
    viewer.send(p.Ack(caught_up.seq))
    assert viewer.quiet(0.5, p.FrameUpdate) == [], "the rest came as ONE coalesced frame"
    assert viewer.frames[0] == agent.frames[0]


def test_a_viewer_that_fell_behind_gets_one_frame_at_a_time_until_it_catches_up(relay_server):
    _, _, _, _, agent, viewer = connected_pair(relay_server, size=(640, 128))
    viewer.auto_ack = False
    viewer.sync()

    def changes(first, count):
        for i in range(first, first + count):
            agent.update([p.FillRect(i % 10 * 64, 0, 64, 64, bytes((i * 20 % 256, 0, 0, 255)))])
        agent.acked(agent.seq)

    changes(0, 5)
    for frame in viewer.quiet(1.0, p.FrameUpdate):  # two in flight, the rest dirty
        viewer.send(p.Ack(frame.seq))
    coalesced = viewer.expect(p.FrameUpdate)
    changes(5, 3)  # more changes while that one is unacked: they wait, not a second frame
    assert viewer.quiet(0.5, p.FrameUpdate) == [], "one frame at a time while behind"
    viewer.send(p.Ack(coalesced.seq))
    newest = viewer.expect(p.FrameUpdate)
    assert viewer.quiet(0.3, p.FrameUpdate) == []
    viewer.send(p.Ack(newest.seq))  # caught up: nothing in flight, nothing dirty
    viewer.sync()
    changes(8, 2)
    assert len(viewer.quiet(1.0, p.FrameUpdate)) == 2, "caught up: two in flight again"
    assert viewer.frames[0] == agent.frames[0]


def test_a_cumulative_ack_frees_every_earlier_frame(relay_server):
    _, _, _, _, agent, viewer = connected_pair(relay_server)
    viewer.auto_ack = False
    viewer.sync()
    agent.update([p.FillRect(0, 0, 10, 10, RED)])
    agent.update([p.FillRect(20, 0, 10, 10, RED)])
    agent.acked(agent.seq)
    first, second = viewer.quiet(1.0, p.FrameUpdate)
    viewer.send(p.Ack(second.seq))
    agent.update([p.FillRect(40, 0, 10, 10, RED)])
    assert viewer.expect(p.FrameUpdate)
    assert viewer.frames[0] == agent.frames[0]


def test_an_ack_for_a_frame_never_sent_is_malformed(relay_server):
    _, _, _, _, agent, viewer = connected_pair(relay_server)
    viewer.send(p.Ack(999))
    assert viewer.close_code == p.CloseCode.MALFORMED


# ---------------------------------------------------------------------------- agents refused
def test_unknown_token_is_refused_with_4001(relay_server):
    assert relay_server.agent("not-a-token").close_code == p.CloseCode.UNAUTHENTICATED
    assert relay_server.agent(None).close_code == p.CloseCode.UNAUTHENTICATED


def test_pending_device_is_refused_with_4003_and_says_why(relay_server):
    account_id, _, _ = relay_server.account()
    device = relay_server.device(account_id, enrolled=False)
    agent = relay_server.agent(device.token)
    error = agent.expect(p.Error)
    assert error.code == p.CloseCode.DEVICE_PENDING and "administrator" in error.message
    assert agent.close_code == p.CloseCode.DEVICE_PENDING


def test_revoked_package_device_cannot_connect(relay_server):
    account_id, _, _ = relay_server.account()
    device = relay_server.device(account_id)
    relay_server.revoke_package(account_id, device.package_id)
    assert relay_server.agent(device.token).close_code == p.CloseCode.DEVICE_REVOKED


def test_revoking_a_connected_device_closes_agent_and_viewers(relay_server):
    account_id, _, _, device, agent, viewer = connected_pair(relay_server)
    relay_server.revoke_package(account_id, device.package_id)
    # The checker looks every 5 s (DEVICE_CHECK_EVERY): allow one round and a loaded machine.
    assert close_code(agent.ws, timeout=15) == p.CloseCode.DEVICE_REVOKED
    assert close_code(viewer.ws, timeout=5) == p.CloseCode.DEVICE_REVOKED


def test_second_connection_of_a_device_replaces_the_first_with_4008(relay_server):
    account_id, _, _, device, first, viewer = connected_pair(relay_server)
    second = relay_server.agent(device.token)
    second.hello()
    assert first.close_code == p.CloseCode.REPLACED
    # The viewer stays, learns nothing went offline, and is served by the new connection.
    assert second.expect(p.Session).event is p.SessionEvent.JOINED
    second.screen_info((160, 100))
    second.expect(p.RequestKeyframe)
    second.keyframe(seed=9)
    wait_for(lambda: viewer.quiet(0.2) is not None and viewer.frames[0] == second.frames[0], 5,
             message="viewer shows the new connection's screen")
    time.sleep(0.3)
    assert relay_server.device_row(device.id).online


def test_unsupported_protocol_version_is_refused_with_4002(relay_server):
    account_id, _, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.send(p.Hello("0.1.0", "Linux", "pc", version=7))
    assert agent.close_code == p.CloseCode.UNSUPPORTED_VERSION


def test_the_first_agent_message_must_be_hello(relay_server):
    account_id, _, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.send(p.ScreenInfo((p.Monitor(0, 0, 0, 10, 10, True),)))
    assert agent.close_code == p.CloseCode.UNEXPECTED


# --------------------------------------------------------------------------- viewers refused
def test_viewer_that_is_not_signed_in_is_refused_with_4001(relay_server):
    account_id, _, _ = relay_server.account()
    device = relay_server.device(account_id)
    assert relay_server.viewer(device.id, None).close_code == p.CloseCode.UNAUTHENTICATED


def test_viewer_without_view_permission_is_refused_before_any_frame(relay_server):
    account_id, tech, _ = relay_server.account(permissions=("remote_session", "keyboard_mouse"))
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello()
    agent.screen_info()
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    assert viewer.expect(p.Error).code == p.CloseCode.NOT_PERMITTED
    assert viewer.close_code == p.CloseCode.NOT_PERMITTED
    assert not [m for m in agent.quiet(0.5) if isinstance(m, p.Session)]


def test_viewer_of_another_accounts_device_is_refused_with_4009(relay_server):
    _, tech, _ = relay_server.account()
    other_account, _, _ = relay_server.account()
    device = relay_server.device(other_account)
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    assert viewer.close_code == p.CloseCode.NOT_PERMITTED


def test_viewer_upgrade_from_another_site_is_refused_with_1008(relay_server):
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username),
                                 headers={"Origin": "https://evil.example"})
    assert viewer.close_code == p.CloseCode.POLICY


def test_viewer_of_an_offline_device_waits_and_is_served_when_it_connects(relay_server):
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    assert viewer.start()["state"].online is False
    agent = relay_server.agent(device.token)
    agent.hello()
    assert agent.expect(p.Session).viewers == 1
    agent.screen_info()
    agent.expect(p.RequestKeyframe)
    agent.keyframe()
    assert viewer.expect(p.DeviceState).online
    viewer.expect(p.ScreenInfo)
    viewer.expect(p.FrameUpdate)
    assert viewer.frames[0] == agent.frames[0]
    agent.close()
    assert viewer.expect(p.DeviceState).online is False


# ------------------------------------------------------------------------- presence, audit
def test_presence_is_written_on_hello_and_cleared_on_disconnect(relay_server):
    account_id, _, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello(hostname="desk-<b>7</b>", user="ann <script>", os_name="Debian 12")
    row = wait_for(lambda: (lambda d: d if d.online else None)(relay_server.device_row(device.id)),
                   message="device online")
    assert row.online_since is not None and row.last_seen_at is not None
    assert (row.hostname, row.logged_in_user, row.os, row.agent_version, row.relay_node) == (
        "desk-<b>7</b>", "ann <script>", "Debian 12", "0.1.0", "relay-test-node")
    agent.close()
    wait_for(lambda: not relay_server.device_row(device.id).online, message="device offline")
    assert relay_server.device_row(device.id).online_since is None


def test_sessions_are_audited_with_technician_device_and_duration(relay_server):
    account_id, tech, _, device, agent, viewer = connected_pair(relay_server)
    viewer.send(p.Key(0x61, True))
    viewer.send(p.Key(0x61, False))
    agent.expect(p.Key)
    time.sleep(1.1)
    viewer.close()
    ended = wait_for(lambda: relay_server.audit(account_id, "session.ended"), message="session.ended")
    started = relay_server.audit(account_id, "session.started")
    assert len(started) == 1 and len(ended) == 1
    assert started[0].actor == ended[0].actor == tech.username
    assert started[0].target == ended[0].target == device.hostname
    import json

    details = json.loads(ended[0].details)
    assert details["device_id"] == device.id and details["duration_seconds"] >= 1
    assert details["used"] == ["keyboard_mouse", "view_screen"]
    assert details["ended"] == "Closed by the technician."
    from app.extensions import db
    from app.models import RemoteSession

    with relay_server.app.app_context():
        [record] = db.session.scalars(select(RemoteSession).where(RemoteSession.device_id == device.id))
        assert record.user_id == tech.user_id and tech.username in record.technician
        assert record.ended_at is not None and record.duration_seconds >= 1
        assert record.keys("used") == ["keyboard_mouse", "view_screen"] and record.close_code == 1000
        assert "keyboard_mouse" in record.keys("permissions")
