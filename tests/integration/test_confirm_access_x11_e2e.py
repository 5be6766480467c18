"""Confirm access end to end with the real prompt: Xvfb + a real ``tessera-agent`` + the real
server (``tessera run``, mail to a real SMTP listener) + a programmatic viewer.

The viewer connects, the agent's Tk window "Tessera: allow remote access?" appears on the X
display (found with ``xdotool search --name``); Escape denies (the viewer is closed with 4012),
then Alt+A on a second prompt allows (the X screen arrives, pixel for pixel). When nobody
answers on the host, the emailed link allows instead; and when the emailed link answers while
the prompt is still up, the prompt closes (CONFIRM_CANCEL).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from agents.common import protocol as p
from tests.fixtures_live import SmtpSink
from tests.integration.relay_world import wait_for
from tests.integration.test_agent_x11_e2e import Server, viewer_shows
from tests.integration.test_confirm_access import Setup, _last_state, answer_by_link, denied, link_of
from tests.x11_harness import AgentProcess, enrolment_key

pytest.importorskip("websockets")
pytest.importorskip("aiosmtpd")
pytest.importorskip("tkinter")

TITLE = "Tessera: allow remote access?"
HOST_TIMEOUT = 4


def _world(xvfb, tmp_path, host_timeout: int):
    for tool in ("xsetroot", "xdotool"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (scripts/install-system-deps)")
    smtp = SmtpSink()
    smtp.controller.start()
    server = Server(tmp_path)
    server.env.update(TESSERA_SMTP_URL=smtp.url, TESSERA_CONFIRM_TIMEOUT=str(host_timeout),
                      TESSERA_CONFIRM_EMAIL_TIMEOUT="60")
    server.start()
    setup = Setup(server.relay)
    agents = []

    def start_agent():
        key, _ = enrolment_key(server.app, setup.account_id)
        agent = AgentProcess(server, key, xvfb.display, tmp_path)
        agents.append(agent)
        device_id = agent.device_id()
        try:
            wait_for(lambda: server.relay.device_row(device_id).online, 20,
                     message="the device to be online")
        except AssertionError as late:  # the log as it is after the wait, not before it
            raise AssertionError(f"{late}; agent log:\n{agent.output()}") from None
        return agent, device_id

    setup.xvfb, setup.smtp, setup.start_agent = xvfb, smtp, start_agent
    try:
        yield setup
    finally:
        for agent in agents:
            agent.stop()
        server.dispose()
        smtp.controller.stop()


@pytest.fixture
def world(xvfb, tmp_path):
    yield from _world(xvfb, tmp_path, HOST_TIMEOUT)


@pytest.fixture
def patient_world(xvfb, tmp_path):
    """The host's prompt waits a minute: long enough that only a cancel closes it in a test."""
    yield from _world(xvfb, tmp_path, 60)


def prompt_window(xvfb, timeout=20.0) -> str:
    """The id of the prompt's window once it is mapped on the X display."""
    def find():
        done = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", re.escape(TITLE)],
                              env={"DISPLAY": xvfb.display}, capture_output=True, text=True)
        return done.stdout.split()[0] if done.stdout.split() else None

    return wait_for(find, timeout, every=0.2, message="the confirm-access prompt to appear")


def press(xvfb, window: str, keys: str) -> None:
    """Give the prompt the keyboard focus and type ``keys`` through XTEST, as a person would."""
    xvfb.run("xdotool", "windowfocus", "--sync", window)
    xvfb.run("xdotool", "key", "--clearmodifiers", keys)


def no_prompt(xvfb) -> bool:
    done = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", re.escape(TITLE)],
                          env={"DISPLAY": xvfb.display}, capture_output=True, text=True)
    return not done.stdout.strip()


def test_the_host_prompt_denies_with_escape_then_allows_with_alt_a(world):
    xvfb = world.xvfb
    xvfb.run("xsetroot", "-solid", "#2a6f3b")
    world.confirm_role(confirm_on_host=True)
    agent, device_id = world.start_agent()

    viewer = world.viewer(device_id)
    assert viewer.expect(p.ConfirmState).state is p.ConfirmOutcome.WAITING
    press(xvfb, prompt_window(xvfb), "Escape")
    denied(viewer, p.ConfirmVia.HOST, "Access denied at the device")
    wait_for(lambda: no_prompt(xvfb), 10, message="the prompt to close")

    viewer = world.viewer(device_id)
    press(xvfb, prompt_window(xvfb), "alt+a")
    outcome = _last_state(viewer)
    assert (outcome.state, outcome.via) == (p.ConfirmOutcome.ALLOWED, p.ConfirmVia.HOST)
    wait_for(lambda: no_prompt(xvfb), 10, message="the prompt to close")
    viewer.expect(p.ScreenInfo, skip=(p.Ping, p.Pong, p.Status, p.Cursor, p.DeviceState))
    viewer_shows(viewer, b"\x2a\x6f\x3b\xff" * (1280 * 800))
    assert "confirm access: allow" in agent.output()
    viewer.close()


def test_nobody_answers_on_the_host_but_the_emailed_link_allows(world):
    xvfb = world.xvfb
    xvfb.run("xsetroot", "-solid", "#5a1f7b")
    ada_id, ada = world.member("Ada")
    world.confirm_role(confirm_on_host=True, confirm_by_email=True, email_only_when_host_unanswered=True,
                       confirm_group_ids=[world.group([ada_id])])
    agent, device_id = world.start_agent()

    started_at = time.monotonic()
    viewer = world.viewer(device_id)
    prompt_window(xvfb)  # shown, and nobody answers it
    link = link_of(world.smtp.wait_for(ada, "Confirm access", timeout=HOST_TIMEOUT + 15))
    assert time.monotonic() - started_at >= HOST_TIMEOUT - 0.5, "the mail waits for the host's timeout"
    assert no_prompt(xvfb)
    answer_by_link(world, ada, link, "allow")
    outcome = _last_state(viewer)
    assert (outcome.state, outcome.via) == (p.ConfirmOutcome.ALLOWED, p.ConfirmVia.EMAIL)
    viewer.expect(p.ScreenInfo, skip=(p.Ping, p.Pong, p.Status, p.Cursor, p.DeviceState))
    viewer_shows(viewer, b"\x5a\x1f\x7b\xff" * (1280 * 800))
    assert "confirm access: unanswered" in agent.output()
    viewer.close()


def test_an_emailed_answer_closes_the_prompt_still_open_on_the_host(patient_world):
    world, xvfb = patient_world, patient_world.xvfb
    xvfb.run("xsetroot", "-solid", "#1f5a7b")
    ada_id, ada = world.member("Ada")
    world.confirm_role(confirm_on_host=True, confirm_by_email=True,
                       confirm_group_ids=[world.group([ada_id])])  # both asked at once
    agent, device_id = world.start_agent()

    viewer = world.viewer(device_id)
    prompt_window(xvfb)  # up on the host, for a minute unless something closes it
    link = link_of(world.smtp.wait_for(ada, "Confirm access", timeout=20))
    answer_by_link(world, ada, link, "allow")
    outcome = _last_state(viewer)
    assert (outcome.state, outcome.via) == (p.ConfirmOutcome.ALLOWED, p.ConfirmVia.EMAIL)

    wait_for(lambda: no_prompt(xvfb), 20, message="the host's prompt to close after the emailed answer")
    viewer.expect(p.ScreenInfo, skip=(p.Ping, p.Pong, p.Status, p.Cursor, p.DeviceState))
    viewer_shows(viewer, b"\x1f\x5a\x7b\xff" * (1280 * 800))
    log = agent.output()
    assert "was settled elsewhere; its prompt is closed" in log
    # The closed prompt's "answer" was never sent, nor taken for one.
    assert "confirm access: unanswered" not in log and "confirm access: deny" not in log
    viewer.close()
