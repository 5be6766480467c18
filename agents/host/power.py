"""Power actions the Host agent performs for a technician: log out, lock, restart, shut down
and Ctrl+Alt+Del (``POWER`` in ``docs/protocol.md``; the relay has already checked the
``remote_management`` permission).

``agent.Agent`` calls :meth:`PowerActions.perform` and sends its :class:`PowerResult` back as
``POWER_RESULT``. Each action uses the desktop's usual command: logind (``loginctl``) for the
session on the agent's display, ``xdg-screensaver`` to lock a desktop logind does not know,
``systemctl`` to restart or shut down a systemd machine. Where the action is not possible
(no desktop session to log out of, a machine not run by systemd) it is refused with a sentence
saying why, and nothing is run. Commands and the probes are injectable for tests.

An administrator can give an action a command of their own in ``agent.conf``
(``log_out_command``, ``lock_command``, ``restart_command``, ``shut_down_command``; see
``state.AgentConfig.power_commands`` and docs/agents.md): that command runs instead, without a
shell, whatever the probes would say — a machine without systemd (``restart_command =
/sbin/reboot``), a screen locker logind does not know (``lock_command = xscreensaver-command
-lock``). The end-to-end tests use it to see a power action really run on the host.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from agents.host.desktop import Runner, current_session, run_command

LOG_OUT, LOCK, RESTART, SHUT_DOWN, CTRL_ALT_DEL = 1, 2, 3, 4, 5
ACTION_NAMES = {LOG_OUT: "log out", LOCK: "lock", RESTART: "restart", SHUT_DOWN: "shut down",
                CTRL_ALT_DEL: "Ctrl+Alt+Del"}

DONE, REFUSED, FAILED = 0, 1, 2

# The agent.conf setting names of the actions that may have a command of their own.
COMMAND_NAMES = {LOG_OUT: "log_out", LOCK: "lock", RESTART: "restart", SHUT_DOWN: "shut_down"}

# Control_L, Alt_L, Delete
CTRL_ALT_DEL_KEYSYMS = (0xFFE3, 0xFFE9, 0xFFFF)


@dataclass(frozen=True)
class PowerResult:
    action: int
    status: int   # DONE, REFUSED or FAILED
    message: str


def systemd_running(marker: Path = Path("/run/systemd/system")) -> bool:
    """sd_booted(): systemd is the init system of this machine."""
    return marker.is_dir()


class PowerActions:
    def __init__(self, display: str, *, runner: Runner = run_command,
                 which: Callable[[str], str | None] = shutil.which,
                 systemd: Callable[[], bool] = systemd_running,
                 press_keys: Callable[[tuple[int, ...]], bool] | None = None,
                 commands: Mapping[str, Sequence[str]] | None = None):
        self.display, self.runner, self.which, self.systemd = display, runner, which, systemd
        self.press_keys = press_keys
        # The administrator's own commands, by COMMAND_NAMES (empty: the built-in ones).
        self.commands = {name: list(args) for name, args in (commands or {}).items() if args}

    def plan(self, action: int) -> list[str] | str:
        """The command that performs ``action`` here, or the sentence saying why it cannot."""
        configured = self.commands.get(COMMAND_NAMES.get(action, ""))
        if configured:
            return list(configured)
        if action in (RESTART, SHUT_DOWN):
            if not self.systemd() or self.which("systemctl") is None:
                return (f"This machine cannot be told to {ACTION_NAMES[action]} remotely: "
                        "it is not run by systemd.")
            return ["systemctl", "reboot" if action == RESTART else "poweroff"]
        session = current_session(self.display, self.runner) if self.which("loginctl") else None
        session_id = session.session_id if session else None
        if action == LOG_OUT:
            if session_id is None:
                return (f"There is no desktop session on display {self.display} to log out of "
                        "(no login session manages it).")
            return ["loginctl", "terminate-session", session_id]
        if action == LOCK:
            if session_id is not None:
                return ["loginctl", "lock-session", session_id]
            if self.which("xdg-screensaver"):
                return ["xdg-screensaver", "lock"]
            return (f"The desktop on display {self.display} cannot be locked: no login session "
                    "manages it and no screen locker is installed.")
        return f"Unknown power action {action}."

    def perform(self, action: int) -> PowerResult:
        if action == CTRL_ALT_DEL:
            if self.press_keys is None:
                return PowerResult(action, REFUSED, "Keyboard input is not available on this machine.")
            ok = self.press_keys(CTRL_ALT_DEL_KEYSYMS)
            return (PowerResult(action, DONE, "Ctrl+Alt+Del was sent.") if ok else
                    PowerResult(action, FAILED, "Ctrl+Alt+Del could not be typed on this keyboard."))
        plan = self.plan(action)
        if isinstance(plan, str):
            return PowerResult(action, REFUSED, plan)
        done = self.runner(plan)
        name = ACTION_NAMES[action]
        if done.returncode == 0:
            return PowerResult(action, DONE, f"The machine was told to {name} ({' '.join(plan)}).")
        why = (done.stderr or done.stdout or "").strip().splitlines()
        detail = why[-1] if why else f"exit status {done.returncode}"
        return PowerResult(action, FAILED, f"Could not {name}: {detail}"[:1000])
