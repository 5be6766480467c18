"""Power actions of the Host agent: which command each action runs on which machine, and the
refusals (agents/host/power.py). Commands never run for real here: the runner is injected."""
from __future__ import annotations

import subprocess

from agents.host.power import (
    DONE, FAILED, LOCK, LOG_OUT, REFUSED, RESTART, SHUT_DOWN, CTRL_ALT_DEL, PowerActions,
)


class Runner:
    """Plays loginctl: one graphical session c2 on display :0 for user alice."""

    def __init__(self, sessions=True, fail=None):
        self.calls, self.sessions, self.fail = [], sessions, fail

    def __call__(self, args):
        self.calls.append(args)
        if args[:2] == ["loginctl", "list-sessions"]:
            out = "c1 1000 alice seat0 tty2\nc2 1000 alice seat0 tty7\n" if self.sessions else ""
            return subprocess.CompletedProcess(args, 0, out, "")
        if args[:2] == ["loginctl", "show-session"]:
            display = ":0" if args[2] == "c2" else ""
            return subprocess.CompletedProcess(
                args, 0, f"Display={display}\nName=alice\nLockedHint=no\nState=active\n", "")
        if self.fail and args[0] == self.fail:
            return subprocess.CompletedProcess(args, 1, "", "Access denied\n")
        return subprocess.CompletedProcess(args, 0, "", "")


def actions(runner, display=":0", systemd=True, installed=("loginctl", "systemctl", "xdg-screensaver"),
            press_keys=None):
    return PowerActions(display, runner=runner, which=lambda name: name if name in installed else None,
                        systemd=lambda: systemd, press_keys=press_keys)


def test_log_out_terminates_the_logind_session_of_the_agents_display():
    runner = Runner()
    result = actions(runner).perform(LOG_OUT)
    assert result.status == DONE
    assert runner.calls[-1] == ["loginctl", "terminate-session", "c2"]


def test_lock_locks_that_session():
    runner = Runner()
    assert actions(runner).perform(LOCK).status == DONE
    assert runner.calls[-1] == ["loginctl", "lock-session", "c2"]


def test_restart_and_shut_down_go_through_systemctl():
    runner = Runner()
    assert actions(runner).perform(RESTART).status == DONE
    assert runner.calls[-1] == ["systemctl", "reboot"]
    assert actions(runner).perform(SHUT_DOWN).status == DONE
    assert runner.calls[-1] == ["systemctl", "poweroff"]


def test_without_a_session_on_the_display_log_out_is_refused_and_nothing_runs():
    runner = Runner()
    result = actions(runner, display=":57").perform(LOG_OUT)
    assert result.status == REFUSED
    assert "no desktop session on display :57" in result.message
    assert not any(c[:2] == ["loginctl", "terminate-session"] for c in runner.calls)


def test_without_a_session_lock_falls_back_to_the_screensaver_or_is_refused():
    runner = Runner(sessions=False)
    assert actions(runner).perform(LOCK).status == DONE
    assert runner.calls[-1] == ["xdg-screensaver", "lock"]
    runner = Runner(sessions=False)
    result = actions(runner, installed=("loginctl",)).perform(LOCK)
    assert result.status == REFUSED and "cannot be locked" in result.message


def test_on_a_machine_without_systemd_restart_is_refused_with_the_reason():
    runner = Runner()
    result = actions(runner, systemd=False).perform(RESTART)
    assert result.status == REFUSED
    assert result.message == "This machine cannot be told to restart remotely: it is not run by systemd."
    assert not any(c[0] == "systemctl" for c in runner.calls)


def test_a_command_that_fails_reports_its_error():
    result = actions(Runner(fail="systemctl")).perform(SHUT_DOWN)
    assert result.status == FAILED
    assert result.message == "Could not shut down: Access denied"


def test_ctrl_alt_del_is_typed_as_keys():
    pressed = []
    result = actions(Runner(), press_keys=lambda keys: pressed.append(keys) or True).perform(CTRL_ALT_DEL)
    assert result.status == DONE
    assert pressed == [(0xFFE3, 0xFFE9, 0xFFFF)]
    assert actions(Runner()).perform(CTRL_ALT_DEL).status == REFUSED


def test_an_administrators_own_command_runs_instead_even_where_the_built_in_would_be_refused():
    runner = Runner(sessions=False)
    power = PowerActions(":57", runner=runner, which=lambda name: None, systemd=lambda: False,
                         commands={"restart": ("/sbin/reboot",), "lock": ("xscreensaver-command", "-lock"),
                                   "shut_down": ()})
    result = power.perform(RESTART)
    assert result.status == DONE
    assert result.message == "The machine was told to restart (/sbin/reboot)."
    assert power.perform(LOCK).status == DONE
    assert runner.calls == [["/sbin/reboot"], ["xscreensaver-command", "-lock"]]  # no probing
    # An empty setting is no setting: shut down stays refused without systemd.
    assert power.perform(SHUT_DOWN).status == REFUSED


def test_an_own_command_that_fails_says_so():
    result = PowerActions(":0", runner=Runner(fail="my-locker"), commands={"lock": ("my-locker",)}).perform(LOCK)
    assert result.status == FAILED and result.message == "Could not lock: Access denied"


def test_the_settings_name_every_action_that_can_have_a_command():
    from agents.host.power import COMMAND_NAMES
    from agents.host.state import POWER_COMMAND_ACTIONS

    assert sorted(COMMAND_NAMES.values()) == sorted(POWER_COMMAND_ACTIONS)
