"""Every message a viewer sends is checked against the technician's effective permissions on
the device at that moment (at most about a second old): input needs keyboard and mouse, the
clipboard needs clipboard, power actions need remote management; withdrawing view closes the
session, withdrawing something else downgrades it — within a second or two, against the real
server."""
from __future__ import annotations

import json
import re
import time

import pytest

from agents.common import protocol as p
from tests.integration.relay_world import relay_server, wait_for  # noqa: F401

pytest.importorskip("websockets")

VIEW = ("remote_session", "view_screen")


def session_with(relay_server, *grants):
    """An online device and a signed-in technician's viewer; each grant is a tuple of
    permissions given by an assignment of its own. Returns (account id, assignment ids,
    device, agent, viewer, http session)."""
    account_id, tech, _ = relay_server.account(permissions=())
    assignments = [relay_server.grant(account_id, perms) for perms in grants]
    device = relay_server.device(account_id)
    agent = relay_server.agent(device.token)
    agent.hello()
    agent.screen_info((128, 64))
    http = relay_server.sign_in(tech.username)
    viewer = relay_server.viewer(device.id, http)
    viewer.start()
    agent.expect(p.Session)
    return account_id, assignments, device, agent, viewer, http


def received_by_agent(agent, seconds=0.6, kinds=(p.Key, p.Pointer, p.Clipboard, p.Power)):
    return agent.quiet(seconds, kinds)


def test_keys_and_pointer_reach_the_agent_with_keyboard_and_mouse(relay_server):
    *_, agent, viewer, _ = session_with(relay_server, VIEW + ("keyboard_mouse",))
    viewer.send(p.Key(0x61, True))
    viewer.send(p.Key(0x61, False))
    viewer.send(p.Pointer(0, 10, 20, buttons=1, wheel_y=-2))
    got = [agent.expect(p.Key), agent.expect(p.Key), agent.expect(p.Pointer)]
    assert got == [p.Key(0x61, True), p.Key(0x61, False), p.Pointer(0, 10, 20, 1, 0, -2)]


def test_view_only_technician_input_is_refused_once_and_never_reaches_the_agent(relay_server):
    *_, agent, viewer, _ = session_with(relay_server, VIEW)
    for _ in range(5):
        viewer.send(p.Key(0x61, True))
        viewer.send(p.Pointer(0, 1, 1))
    errors = [viewer.expect(p.Error)] + viewer.quiet(0.5, p.Error)
    assert [e.code for e in errors] == [p.CloseCode.PERMISSION_WITHDRAWN]
    assert "Keyboard and mouse" in errors[0].message
    assert received_by_agent(agent) == []


def test_clipboard_travels_both_ways_only_with_the_clipboard_permission(relay_server):
    _, _, device, agent, viewer, _ = session_with(relay_server, VIEW + ("clipboard",))
    viewer.send(p.Clipboard("from the technician ✓"))
    assert agent.expect(p.Clipboard) == p.Clipboard("from the technician ✓")
    agent.send(p.Clipboard("from the host"))
    assert viewer.expect(p.Clipboard) == p.Clipboard("from the host")

    _, _, other_device, other_agent, blind, _ = session_with(relay_server, VIEW)
    blind.send(p.Clipboard("nope"))
    assert received_by_agent(other_agent) == []
    other_agent.send(p.Clipboard("secret"))
    assert blind.quiet(0.6, p.Clipboard) == []


def test_power_actions_need_remote_management_and_are_audited(relay_server):
    account_id, _, device, agent, viewer, _ = session_with(
        relay_server, VIEW + ("remote_management",))
    viewer.send(p.Power(p.PowerAction.RESTART))
    assert agent.expect(p.Power) == p.Power(p.PowerAction.RESTART)
    agent.send(p.PowerResult(p.PowerAction.RESTART, p.PowerStatus.REFUSED, "Not allowed here."))
    assert viewer.expect(p.PowerResult).message == "Not allowed here."
    events = wait_for(lambda: relay_server.audit(account_id, "session.power"), message="audited")
    assert json.loads(events[0].details)["action"] == "restart"

    *_, other_agent, no_power, _ = session_with(relay_server, VIEW + ("keyboard_mouse",))
    no_power.send(p.Power(p.PowerAction.SHUTDOWN))
    assert no_power.expect(p.Error).code == p.CloseCode.PERMISSION_WITHDRAWN
    assert received_by_agent(other_agent) == []


def test_withdrawing_the_view_assignment_closes_the_session_within_two_seconds(relay_server):
    _, (assignment,), _, agent, viewer, _ = session_with(relay_server, VIEW + ("keyboard_mouse",))
    relay_server.set_assignment_active(assignment, False)
    withdrawn = time.monotonic()
    assert viewer.close_code == p.CloseCode.PERMISSION_WITHDRAWN
    assert time.monotonic() - withdrawn < 2.5
    left = agent.expect(p.Session)
    assert left.event is p.SessionEvent.LEFT and left.viewers == 0


def test_input_stops_within_a_second_of_the_permission_going(relay_server):
    _, (_, keyboard), _, agent, viewer, _ = session_with(relay_server, VIEW, ("keyboard_mouse",))
    viewer.send(p.Key(0x62, True))
    assert agent.expect(p.Key) == p.Key(0x62, True)
    relay_server.set_assignment_active(keyboard, False)
    time.sleep(1.2)
    viewer.send(p.Key(0x63, True))
    assert received_by_agent(agent, kinds=(p.Key,)) == []


def test_withdrawing_keyboard_only_downgrades_the_session(relay_server):
    _, (_, keyboard), _, agent, viewer, _ = session_with(relay_server, VIEW, ("keyboard_mouse",))
    relay_server.set_assignment_active(keyboard, False)
    downgraded = viewer.expect(p.Permissions, timeout=3)
    assert downgraded.keys == set(VIEW)
    changed = agent.expect(p.Session, timeout=3)
    assert changed.event is p.SessionEvent.CHANGED and p.permission_keys(changed.permissions) == set(VIEW)
    viewer.send(p.Key(0x61, True))
    assert viewer.expect(p.Error).code == p.CloseCode.PERMISSION_WITHDRAWN
    agent.keyframe()
    viewer.expect(p.FrameUpdate)  # still open, and served
    relay_server.set_assignment_active(keyboard, True)
    assert p.permission_keys(viewer.expect(p.Permissions, timeout=3).mask) >= {"keyboard_mouse"}


def test_signing_out_of_the_portal_ends_the_console_session(relay_server):
    *_, viewer, http = session_with(relay_server, VIEW)
    page = http.get(f"{relay_server.url}/my-devices", timeout=10).text
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    http.post(f"{relay_server.url}/logout", data={"csrf_token": token},
              headers={"X-CSRFToken": token}, timeout=10)
    assert viewer.close_code == p.CloseCode.UNAUTHENTICATED


def test_a_role_for_the_installed_viewer_only_does_not_open_the_browser_console(relay_server):
    account_id, tech, _ = relay_server.account(permissions=())
    relay_server.grant(account_id, VIEW + ("keyboard_mouse",), client_types=("viewer",))
    device = relay_server.device(account_id)
    http = relay_server.sign_in(tech.username)
    viewer = relay_server.viewer(device.id, http)
    error = viewer.expect(p.Error)
    assert error.code == p.CloseCode.NOT_PERMITTED and "browser" in error.message
    assert viewer.close_code == p.CloseCode.NOT_PERMITTED
    page = http.get(f"{relay_server.url}/devices/{device.id}/console")
    assert page.status_code == 403 and "only the installed viewer" in page.text

    relay_server.grant(account_id, VIEW, client_types=("browser", "viewer"))
    assert relay_server.viewer(device.id, http).start()["state"] is not None
