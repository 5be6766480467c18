"""Several monitors through the relay, over real websockets against ``tessera run``: a viewer
that watches every monitor (``SELECT_SCREEN`` 0xFF, the console's "All monitors") gets each
one's key frame and updates, shares one flow-control window across them, and follows monitors
that change size, go away or come while it watches; choosing one monitor again narrows it back.
"""
from __future__ import annotations

import pytest

from agents.common import protocol as p
from tests.integration.relay_world import relay_server, wait_for  # noqa: F401 - fixture

pytest.importorskip("websockets")

RED, GREEN, BLUE = b"\xff\x00\x00\xff", b"\x00\xff\x00\xff", b"\x00\x00\xff\xff"


def two_monitor_device(relay_server, sizes=((100, 80), (90, 70))):
    """A fake agent with two monitors (ids 0 and 1, 0 primary) that has sent a key frame of
    each, and a viewer that painted the primary one's."""
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello(hostname=device.hostname)
    agent.screen_info(*sizes)
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    viewer.start()
    agent.expect(p.RequestKeyframe)
    agent.keyframe(0, seed=1)
    agent.keyframe(1, seed=2)
    first = viewer.expect(p.FrameUpdate)
    assert (first.screen, first.keyframe) == (0, True)
    return agent, viewer


def watch_all(viewer) -> list[p.FrameUpdate]:
    """Choose every monitor; the two key frames that follow (acked, and the acks handled)."""
    viewer.send(p.SelectScreen(p.ALL_SCREENS))
    keyframes = sorted((viewer.expect(p.FrameUpdate) for _ in range(2)), key=lambda u: u.screen)
    viewer.sync()
    return keyframes


def test_a_viewer_watching_all_monitors_gets_each_ones_key_frame_and_updates(relay_server):
    agent, viewer = two_monitor_device(relay_server)
    keyframes = watch_all(viewer)
    assert [(u.screen, u.keyframe) for u in keyframes] == [(0, True), (1, True)]
    assert viewer.frames == agent.frames

    agent.update([p.FillRect(0, 0, 30, 20, RED)], screen=1)
    agent.update([p.FillRect(50, 40, 10, 10, BLUE)], screen=0)
    updates = [viewer.expect(p.FrameUpdate), viewer.expect(p.FrameUpdate)]
    assert [(u.screen, u.keyframe) for u in updates] == [(1, False), (0, False)]
    assert viewer.frames == agent.frames


def test_all_monitors_share_one_window_of_two_frames_and_take_turns_when_behind(relay_server):
    agent, viewer = two_monitor_device(relay_server, sizes=((640, 128), (640, 128)))
    watch_all(viewer)  # both key frames acked: nothing in flight
    viewer.auto_ack = False

    def changes(screen, count, shade=0):
        for i in range(count):
            agent.update([p.FillRect(i % 10 * 64, 0, 64, 64, bytes((shade + i * 20 % 200, 0, 0, 255)))],
                         screen=screen)

    for _ in range(5):
        changes(0, 1, shade=10)
        changes(1, 1, shade=30)
    changes(0, 4)
    changes(1, 4)
    agent.acked(agent.seq)
    in_flight = viewer.quiet(1.0, p.FrameUpdate)
    assert len(in_flight) == 2, "two frames in flight in all, not two per monitor"
    for frame in in_flight:
        viewer.send(p.Ack(frame.seq))

    first = viewer.expect(p.FrameUpdate)
    assert viewer.quiet(0.5, p.FrameUpdate) == [], "one frame at a time while behind"
    # The first screen keeps changing; the other still gets its turn.
    changes(first.screen, 3, shade=50)
    agent.acked(agent.seq)
    viewer.send(p.Ack(first.seq))
    second = viewer.expect(p.FrameUpdate)
    assert {first.screen, second.screen} == {0, 1}
    assert not first.keyframe and not second.keyframe
    viewer.send(p.Ack(second.seq))
    third = viewer.expect(p.FrameUpdate)
    assert third.screen == first.screen  # what changed meanwhile, in one frame
    viewer.send(p.Ack(third.seq))
    assert viewer.quiet(0.5, p.FrameUpdate) == [], "caught up: nothing dirty is left"
    assert viewer.frames == agent.frames

    viewer.sync()
    changes(1, 2, shade=70)
    agent.acked(agent.seq)
    assert len(viewer.quiet(1.0, p.FrameUpdate)) == 2, "caught up: two in flight again"
    assert viewer.frames == agent.frames


def test_while_watching_all_a_resized_monitor_gets_a_key_frame_and_the_other_carries_on(relay_server):
    agent, viewer = two_monitor_device(relay_server)
    watch_all(viewer)
    shown = bytes(agent.frames[0])
    agent.screen_info((100, 80), (120, 60))  # monitor 1 changed size
    agent.frames[0][:] = shown  # the fake agent starts every screen over; monitor 0 did not change
    agent.expect(p.RequestKeyframe)
    agent.update([p.FillRect(0, 0, 10, 10, GREEN)], screen=0)
    agent.keyframe(1, seed=3)
    updates = sorted((viewer.expect(p.FrameUpdate) for _ in range(2)), key=lambda u: u.screen)
    assert [(u.screen, u.keyframe) for u in updates] == [(0, False), (1, True)]
    assert viewer.screens[1] == (120, 60)
    assert viewer.frames == agent.frames


def test_while_watching_all_a_monitor_that_goes_and_comes_back_is_followed(relay_server):
    agent, viewer = two_monitor_device(relay_server)
    watch_all(viewer)
    shown = bytes(agent.frames[0])

    agent.screen_info((100, 80))  # monitor 1 went away
    agent.frames[0][:] = shown
    agent.update([p.FillRect(0, 0, 10, 10, GREEN)], screen=0)
    update = viewer.expect(p.FrameUpdate)
    assert (update.screen, update.keyframe) == (0, False)

    agent.screen_info((100, 80), (90, 70))  # and came back
    agent.frames[0][:] = bytes(viewer.frames[0])
    agent.expect(p.RequestKeyframe)
    agent.keyframe(1, seed=4)
    update = viewer.expect(p.FrameUpdate)
    assert (update.screen, update.keyframe) == (1, True)
    assert viewer.frames == agent.frames


def test_choosing_one_monitor_after_all_sends_only_that_one(relay_server):
    agent, viewer = two_monitor_device(relay_server)
    watch_all(viewer)
    viewer.send(p.SelectScreen(1))
    update = viewer.expect(p.FrameUpdate)
    assert (update.screen, update.keyframe) == (1, True)
    agent.update([p.FillRect(0, 0, 10, 10, RED)], screen=0)
    agent.acked(agent.seq)
    assert viewer.quiet(0.5, p.FrameUpdate) == []
    agent.update([p.FillRect(0, 0, 10, 10, BLUE)], screen=1)
    update = viewer.expect(p.FrameUpdate)
    assert (update.screen, update.keyframe) == (1, False)
    assert viewer.frames[1] == agent.frames[1]


def test_all_monitors_chosen_while_the_device_is_offline_holds_when_it_connects(relay_server):
    account_id, tech, _ = relay_server.account()
    device = relay_server.device(account_id)
    viewer = relay_server.viewer(device.id, relay_server.sign_in(tech.username))
    assert viewer.start()["state"].online is False
    viewer.send(p.SelectScreen(p.ALL_SCREENS))
    viewer.sync()
    agent = relay_server.agent(device.token)
    agent.hello()
    agent.screen_info((100, 80), (90, 70))
    agent.expect(p.RequestKeyframe)
    agent.keyframe(1, seed=5)
    agent.keyframe(0, seed=6)
    assert viewer.expect(p.DeviceState).online
    updates = sorted((viewer.expect(p.FrameUpdate) for _ in range(2)), key=lambda u: u.screen)
    assert [(u.screen, u.keyframe) for u in updates] == [(0, True), (1, True)]
    assert viewer.frames == agent.frames


def test_a_pointer_on_the_second_monitor_reaches_the_agent_for_that_monitor(relay_server):
    agent, viewer = two_monitor_device(relay_server)
    watch_all(viewer)
    viewer.send(p.Pointer(1, 40, 30, 1, 0, 0))
    got = agent.expect(p.Pointer)
    assert (got.screen, got.x, got.y, got.buttons) == (1, 40, 30, 1)
