"""The relay pings its peers and closes the silent ones (4011), against a server whose ping
interval and idle timeout are shortened to seconds."""
from __future__ import annotations

import time

import pytest

from agents.common import protocol as p
from tests.integration.relay_world import start_relay_server

pytest.importorskip("websockets")


@pytest.fixture(scope="module")
def quick_relay(tmp_path_factory):
    yield from start_relay_server(tmp_path_factory, TESSERA_RELAY_PING_EVERY="0.5",
                                  TESSERA_RELAY_IDLE_TIMEOUT="2")


def test_an_agent_that_answers_pings_stays_and_a_silent_one_is_closed_with_4011(quick_relay):
    account_id, _, _ = quick_relay.account()
    lively_device = quick_relay.device(account_id)
    silent_device = quick_relay.device(account_id)
    lively = quick_relay.agent(lively_device.token)
    lively.hello()
    silent = quick_relay.agent(silent_device.token)
    silent.hello()
    started = time.monotonic()
    pings = 0
    while time.monotonic() - started < 3.5:
        msg = lively.recv(timeout=2)
        if isinstance(msg, p.Ping):
            pings += 1
            lively.send(p.Pong(msg.nonce))
    assert pings >= 4
    assert silent.close_code == p.CloseCode.IDLE
    lively.send(p.Ping(5))
    assert lively.expect(p.Pong).nonce == 5


def test_a_silent_viewer_is_closed_with_4011(quick_relay):
    account_id, tech, _ = quick_relay.account()
    device = quick_relay.device(account_id)
    viewer = quick_relay.viewer(device.id, quick_relay.sign_in(tech.username))
    viewer.start()
    assert viewer.close_code == p.CloseCode.IDLE
