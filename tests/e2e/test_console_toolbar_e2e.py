"""End to end: the browser console's toolbar in headless Debian Chromium (Playwright) against the
real server (``tessera run``) and a real ``tessera-agent`` on Xvfb.

- Power: the menu is there with Remote management and goes away when it is withdrawn (during
  the session, and on a fresh page); each action asks first; Cancel sends nothing; Confirm makes
  the agent run the action's command on the host (agent.conf's ``lock_command``, a ``touch`` of
  a file the test then finds) and the console shows the agent's answer; the request is audited.
- Fit / Actual size: the canvas's CSS size follows the window, or is the screen's own with the
  stage scrolling, where the remote pointer lands exactly under the mouse after scrolling.
- The toolbar minimised to a tab gives the screen more room, and comes back.
- Full screen: ``document.fullscreenElement`` on and off.
- The agent killed: the console says so in words and offers Reconnect; a fresh connection says
  it again while the device is off; once the agent runs again, the screen is back, with what
  changed on the host meanwhile.
"""
from __future__ import annotations

import subprocess

import pytest

from tests.e2e.test_console_e2e import HEIGHT, WIDTH, _canvas_matches, _need, _online_device, _open_console
from tests.integration.test_agent_x11_e2e import wait_for_agent, wait_online, world  # noqa: F401 - world is a fixture
from tests.relay_harness import wait_for
from tests.x11_harness import AgentProcess, enrolment_key

pytest.importorskip("playwright")

STATE = "() => document.getElementById('console-state').dataset.state"
NOTICE = ("() => document.getElementById('console-notice').hidden ? '' : "
          "document.getElementById('console-notice-text').textContent")
# The canvas's CSS size (what the technician sees) and the stage's scrolling.
SIZES = """() => {
  const c = document.getElementById('console-screen').getBoundingClientRect();
  const s = document.getElementById('console-stage');
  return {w: c.width, h: c.height, stageW: s.clientWidth, stageH: s.clientHeight,
          scrollW: s.scrollWidth, scrollH: s.scrollHeight};
}"""


def _wait_state(page, state: str) -> None:
    page.wait_for_function(f"() => ({STATE})() === {state!r}", timeout=20000)


def _power_agent(world, tmp_path, commands: dict[str, str]) -> AgentProcess:
    """A real agent whose agent.conf gives power actions commands of their own."""
    conf = tmp_path / "agent.conf"
    conf.write_text("[agent]\n" + "".join(f"{name}_command = {line}\n" for name, line in commands.items()))
    key, _ = enrolment_key(world.server.app, world.account_id)
    (tmp_path / "power-agent").mkdir()
    return AgentProcess(world.server, key, world.xvfb.display, tmp_path / "power-agent",
                        extra_args=["--config", str(conf)])


def test_power_asks_first_and_the_agent_runs_the_command_shown_only_with_remote_management(
        world, browser, tmp_path):
    locked, restarted = tmp_path / "locked", tmp_path / "restarted"
    agent = _power_agent(world, tmp_path, {"lock": f"touch {locked}", "restart": f"touch '{restarted}'"})
    try:
        device_id = agent.device_id()
        wait_online(world, device_id, agent)
        page = browser
        errors = _open_console(world, page, device_id)
        hostname = page.text_content("#console-hostname")
        assert page.is_visible("#console-power")

        # Restart, then Cancel: the dialog names the action and the machine, and nothing is sent.
        page.click("#console-power summary")
        page.click("[data-power='3']")
        assert page.is_visible("#console-confirm")
        assert page.text_content("#console-confirm-text").startswith(f"Really restart {hostname}?")
        page.click("#console-confirm button[value='cancel']")
        assert not page.is_visible("#console-confirm")

        # Lock, then Confirm: the agent runs lock_command on the host and says so.
        page.click("#console-power summary")
        page.click("[data-power='2']")
        assert page.text_content("#console-confirm-text").startswith(f"Really lock {hostname}?")
        page.click("#console-confirm-ok")
        wait_for_agent(agent, locked.exists, 15, "the lock command to run on the host")
        page.wait_for_function("() => document.getElementById('console-message').textContent"
                               ".startsWith('The machine was told to lock (touch ')", timeout=15000)
        assert not restarted.exists(), "the cancelled restart ran"
        [event] = world.relay.audit(world.account_id, "session.power")
        assert '"action": "lock"' in event.details and event.actor == world.tech.username

        # Remote management withdrawn during the session: the menu goes, at once and on a new page.
        world.relay.grant(world.account_id, ("remote_session", "view_screen", "keyboard_mouse"))
        world.relay.set_assignment_active(world.assignment_id, False)
        page.wait_for_function("() => document.getElementById('console-power').hidden", timeout=15000)
        page.reload()
        _wait_state(page, "connected")
        assert not page.is_visible("#console-power")
        assert page.is_visible("#console-scale")  # the rest of the toolbar stays
        assert not errors, errors
    finally:
        agent.stop()


def test_fit_and_actual_size_the_minimised_toolbar_and_full_screen(world, browser):
    _need("xdotool")
    agent, device_id = _online_device(world)
    page = browser
    page.set_viewport_size({"width": 1100, "height": 600})  # smaller than the 1280x800 screen
    errors = _open_console(world, page, device_id)
    _canvas_matches(page, b"\x20\x30\x40\xff" * (WIDTH * HEIGHT))

    # Fit (the default): the whole screen inside the stage, its proportions kept.
    fit = page.evaluate(SIZES)
    assert fit["w"] <= fit["stageW"] and fit["h"] <= fit["stageH"]
    assert fit["w"] < WIDTH and fit["h"] < HEIGHT
    assert abs(fit["w"] / fit["h"] - WIDTH / HEIGHT) < 0.01
    assert fit["scrollW"] <= fit["stageW"] and fit["scrollH"] <= fit["stageH"]  # nothing to scroll

    # Actual size: pixel for pixel, the stage scrolls both ways.
    page.click("#console-scale")
    assert page.text_content("#console-scale") == "Actual size"
    assert page.get_attribute("#console-scale", "aria-pressed") == "false"
    actual = page.evaluate(SIZES)
    assert (actual["w"], actual["h"]) == (WIDTH, HEIGHT)
    assert actual["scrollW"] > actual["stageW"] and actual["scrollH"] > actual["stageH"]
    scrolled = page.evaluate("""() => {
      const s = document.getElementById('console-stage');
      s.scrollTo(s.scrollWidth, s.scrollHeight);
      return [s.scrollLeft, s.scrollTop];
    }""")
    assert scrolled[0] > 0 and scrolled[1] > 0
    # Scrolled to the far corner, the mouse over screen pixel (1200, 760) puts the remote
    # pointer exactly there.
    box = page.locator("#console-screen").bounding_box()
    page.mouse.move(box["x"] + 1200.5, box["y"] + 760.5)

    def pointer():
        done = subprocess.run(["xdotool", "getmouselocation", "--shell"], env=world.xvfb.env,
                              capture_output=True, text=True, timeout=10)
        where = dict(line.split("=", 1) for line in done.stdout.split())
        return (int(where["X"]), int(where["Y"])) == (1200, 760)

    wait_for(pointer, 15, message="the remote pointer at (1200, 760)")

    page.click("#console-scale")  # back to Fit
    assert page.text_content("#console-scale") == "Fit"
    assert page.evaluate(SIZES)["w"] == fit["w"]

    # The toolbar minimised: a tab to bring it back, and a larger screen meanwhile.
    page.click("#console-minimise")
    assert not page.is_visible("#console-toolbar")
    assert page.is_visible("#console-restore")
    roomier = page.evaluate(SIZES)
    assert roomier["h"] > fit["h"] and roomier["w"] > fit["w"]
    page.click("#console-restore")
    assert page.is_visible("#console-toolbar") and not page.is_visible("#console-restore")
    assert page.get_attribute("#console-minimise", "aria-expanded") == "true"
    assert page.evaluate(SIZES)["h"] == fit["h"]

    # Full screen, and back.
    page.click("#console-fullscreen")
    page.wait_for_function("() => document.fullscreenElement === document.documentElement", timeout=10000)
    page.click("#console-fullscreen")
    page.wait_for_function("() => document.fullscreenElement === null", timeout=10000)
    assert page.evaluate(STATE) == "connected"
    assert not errors, errors


def test_the_agent_killed_is_said_in_words_with_reconnect_and_its_screen_comes_back(world, browser):
    agent, device_id = _online_device(world)
    page = browser
    errors = _open_console(world, page, device_id)
    _canvas_matches(page, b"\x20\x30\x40\xff" * (WIDTH * HEIGHT))

    agent.process.kill()
    agent.process.wait(10)
    _wait_state(page, "offline")
    assert page.evaluate(NOTICE).startswith("The device went offline (its agent disconnected).")
    assert page.is_visible("#console-reconnect")
    world.xvfb.run("xsetroot", "-solid", "#607080")  # changed while nobody could see it

    # Reconnect while the agent is still down: a fresh connection, and the same words.
    page.click("#console-reconnect")
    assert page.evaluate(STATE) != "offline"
    _wait_state(page, "offline")
    assert page.evaluate(NOTICE).startswith("The device went offline")
    assert page.is_visible("#console-reconnect")

    again = world.start_agent()  # the same state directory: the same device, its token kept
    assert again.device_id() == device_id
    wait_online(world, device_id, again)
    _wait_state(page, "connected")
    _canvas_matches(page, b"\x60\x70\x80\xff" * (WIDTH * HEIGHT))
    assert page.evaluate(NOTICE) == ""
    assert not errors, errors
