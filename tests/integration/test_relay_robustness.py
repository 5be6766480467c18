"""Bad input to the relay: malformed, unknown, oversized or misplaced messages from an agent or
a viewer close that one connection with the documented code (docs/protocol.md), and the relay
keeps serving everyone else."""
from __future__ import annotations

import struct

import pytest

from agents.common import protocol as p
from tests.integration.relay_world import relay_server, send_expecting_close, wait_for  # noqa: F401

pytest.importorskip("websockets")

GREEN = b"\x00\xff\x00\xff"


def online_device(relay_server, viewers=1, size=(128, 64)):
    """An online device whose agent has shown a key frame to ``viewers`` viewers."""
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello()
    agent.screen_info(size)
    watching = []
    for _ in range(viewers):
        viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
        viewer.start()
        watching.append(viewer)
    agent.keyframe()
    for viewer in watching:
        viewer.expect(p.FrameUpdate)
    return agent, watching


def still_served(agent, viewer) -> None:
    agent.update([p.FillRect(0, 0, 16, 16, GREEN)])
    wait_for(lambda: viewer.quiet(0.2) is not None and viewer.frames[0] == agent.frames[0], 5,
             message="the bystander viewer gets the new frame")


@pytest.mark.parametrize("data, code", [
    (b"\x04\x00\x00", p.CloseCode.MALFORMED),  # a frame update cut short
    (b"\x66junk", p.CloseCode.UNKNOWN_TYPE),
    (p.Hello("0.1.0", "Linux", "again").encode(), p.CloseCode.UNEXPECTED),  # HELLO twice
    (p.Key(0x61, True).encode(), p.CloseCode.UNEXPECTED),  # input is for viewers to send
    (p.FrameUpdate(7, 1, (p.FillRect(0, 0, 1, 1, GREEN),)).encode(), p.CloseCode.MALFORMED),
    (p.FrameUpdate(0, 1, (p.FillRect(120, 0, 16, 16, GREEN),)).encode(), p.CloseCode.MALFORMED),
], ids=["truncated", "unknown-type", "hello-twice", "wrong-direction", "unknown-screen",
        "outside-the-screen"])
def test_bad_agent_message_closes_that_agent_and_others_are_served(relay_server, data, code):
    bystander_agent, (bystander,) = online_device(relay_server)
    agent, (viewer,) = online_device(relay_server)
    agent.send(data)
    assert agent.close_code == code
    assert viewer.expect(p.DeviceState).online is False
    still_served(bystander_agent, bystander)


def test_corrupt_compressed_update_from_an_agent_is_malformed(relay_server):
    agent, _ = online_device(relay_server)
    header = struct.pack("<BBBII", p.MsgType.FRAME_UPDATE, p.ZSTD, 0, 5, 1000)
    agent.send(header + b"\x28\xb5\x2f\xfd" + b"\xff" * 40)
    assert agent.close_code == p.CloseCode.MALFORMED


def test_oversized_agent_message_is_closed_with_1009(relay_server):
    bystander_agent, (bystander,) = online_device(relay_server)
    agent, _ = online_device(relay_server)
    code = send_expecting_close(agent.ws, b"\x04" + bytes(p.MAX_AGENT_MESSAGE))
    assert code == p.CloseCode.TOO_BIG
    still_served(bystander_agent, bystander)


def test_an_agent_message_of_exactly_the_limit_is_accepted(relay_server):
    agent, (viewer,) = online_device(relay_server, size=(2048, 2047))
    pixels = bytes(range(256)) * (2048 * 2047 * 4 // 256)
    agent.update([p.RawRect(0, 0, 2048, 2047, pixels)], compress=False)
    # 16 MiB minus 16 KiB of pixels plus headers: under the limit, so it is applied and acked.
    agent.acked(agent.seq, timeout=20)
    viewer.expect(p.FrameUpdate, timeout=20)
    assert viewer.frames[0] == agent.frames[0]


@pytest.mark.parametrize("data, code", [
    (b"\x05\x01", p.CloseCode.MALFORMED),  # an ack cut short
    (b"\x70", p.CloseCode.UNKNOWN_TYPE),
    (p.FrameUpdate(0, 1, ()).encode(), p.CloseCode.UNEXPECTED),  # frames are for agents
    (p.SelectScreen(9).encode(), p.CloseCode.MALFORMED),  # no such screen
    (b"\x09" + bytes(p.MAX_VIEWER_MESSAGE), p.CloseCode.TOO_BIG),
], ids=["truncated", "unknown-type", "wrong-direction", "unknown-screen", "oversized"])
def test_bad_viewer_message_closes_that_viewer_and_the_other_viewer_is_served(relay_server, data, code):
    agent, (culprit, bystander) = online_device(relay_server, viewers=2)
    assert send_expecting_close(culprit.ws, data) == code
    still_served(agent, bystander)


def test_text_message_from_a_viewer_is_closed_with_1003(relay_server):
    agent, (culprit, bystander) = online_device(relay_server, viewers=2)
    culprit.ws.send("hello")
    assert culprit.close_code == p.CloseCode.UNSUPPORTED_DATA
    still_served(agent, bystander)


def test_relay_answers_pings_from_agents_and_viewers(relay_server):
    agent, (viewer,) = online_device(relay_server)
    agent.send(p.Ping(42))
    assert agent.expect(p.Pong).nonce == 42
    viewer.send(p.Ping(43))
    assert viewer.expect(p.Pong).nonce == 43


def test_open_sessions_do_not_hold_database_connections(relay_server):
    """Each viewer's greenlet lives as long as its session; none may keep a pooled database
    connection checked out, or some twenty open consoles would starve the relay (the pool holds
    15) and everything needing the database would wait for the pool's timeout."""
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello()
    agent.screen_info((128, 64))
    http = relay_server.sign_in(tech.username)
    viewers = []
    for _ in range(20):
        viewer = relay_server.viewer(device.id, http)
        viewer.start()
        viewers.append(viewer)
    fresh = relay_server.device(account_id)  # the database is still there for everyone else
    newcomer = relay_server.agent(fresh.token)
    newcomer.hello()
    wait_for(lambda: relay_server.device_row(fresh.id).online, 5, message="the new agent online")
    late = relay_server.viewer(fresh.id, http)
    assert late.start()["state"].online
    for viewer in viewers:
        viewer.close()
