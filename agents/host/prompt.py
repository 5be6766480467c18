"""The confirm-access prompt on the host (spec B8, ``CONFIRM_REQUEST`` in docs/protocol.md).

The agent's receive loop must never wait for a person, and a Tk main loop wants a thread of its
own, so the prompt is a process of its own: :func:`ask` (called by ``agents.host.agent`` on a
worker thread) runs ``python -m agents.host.prompt --technician NAME --timeout SECONDS`` on the
agent's X display (``DISPLAY``, and the ``XAUTHORITY`` the agent uses) and reads the one word it
prints: ``allow``, ``deny`` or ``unanswered``.

The window, "Tessera: allow remote access?", names the technician, counts down, and has Allow
and Deny buttons (Alt+A, Alt+D; Deny has the focus); Escape or closing the window denies; when the time is up nobody answered
(which the relay treats as a refusal unless an emailed confirmation follows). Nothing that fails
here may let somebody in: every failure is "unanswered".
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading

log = logging.getLogger("tessera.agent")

TITLE = "Tessera: allow remote access?"
ALLOW, DENY, UNANSWERED = "allow", "deny", "unanswered"


class Prompts:
    """The prompt processes one connection has open, so they can be closed with it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._closed = False

    def ask(self, technician: str, timeout: int, display: str | None) -> str:
        """Show the prompt and wait for it: ``allow``, ``deny`` or ``unanswered``."""
        env = dict(os.environ)
        if display:
            env["DISPLAY"] = display
        command = [sys.executable, "-m", "agents.host.prompt", "--technician", technician,
                   "--timeout", str(int(timeout))]
        with self._lock:
            if self._closed:
                return UNANSWERED
            try:
                process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except OSError as exc:
                log.warning("the confirm-access prompt could not start: %s", exc)
                return UNANSWERED
            self._running.add(process)
        try:
            out, err = process.communicate(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        finally:
            with self._lock:
                self._running.discard(process)
        word = out.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if word[0] in (ALLOW, DENY, UNANSWERED):
            return word[0]
        log.warning("the confirm-access prompt failed (exit %s): %s", process.returncode,
                    err.decode("utf-8", "replace").strip()[-500:])
        return UNANSWERED

    def close(self) -> None:
        """The connection ended: its questions no longer matter."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for process in running:
            try:
                process.terminate()
            except OSError:
                pass


def show(technician: str, timeout: int) -> str:
    """The Tk window itself (in the prompt process); returns the answer."""
    import tkinter as tk

    answer = [UNANSWERED]
    root = tk.Tk()
    root.title(TITLE)
    root.resizable(False, False)
    root.attributes("-topmost", True)
    frame = tk.Frame(root, padx=20, pady=16)
    frame.pack()
    tk.Label(frame, text="A technician asks to control this computer remotely:",
             justify="left").pack(anchor="w")
    tk.Label(frame, text=technician, font=("TkDefaultFont", 12, "bold"), justify="left",
             wraplength=420).pack(anchor="w", pady=(6, 6))
    countdown = tk.Label(frame, justify="left")
    countdown.pack(anchor="w", pady=(0, 12))
    buttons = tk.Frame(frame)
    buttons.pack(anchor="e")

    def done(value: str) -> None:
        answer[0] = value
        root.destroy()

    allow = tk.Button(buttons, text="Allow", width=10, underline=0, command=lambda: done(ALLOW))
    deny = tk.Button(buttons, text="Deny", width=10, underline=0, command=lambda: done(DENY))
    deny.pack(side="right")
    allow.pack(side="right", padx=(0, 8))
    # Mnemonics need Alt, so a key typed into the window by chance never answers.
    root.bind("<Alt-a>", lambda event: done(ALLOW))
    root.bind("<Alt-d>", lambda event: done(DENY))
    root.bind("<Escape>", lambda event: done(DENY))
    root.protocol("WM_DELETE_WINDOW", lambda: done(DENY))
    left = [int(timeout)]

    def tick() -> None:
        if left[0] <= 0:
            done(UNANSWERED)
            return
        countdown.configure(text=f"Without an answer, access is denied in {left[0]} s.")
        left[0] -= 1
        root.after(1000, tick)

    tick()
    deny.focus_set()  # Return on a fresh window denies rather than allows
    root.after(50, root.focus_force)
    root.mainloop()
    return answer[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agents.host.prompt",
                                     description="Ask the person at this computer to allow a remote session.")
    parser.add_argument("--technician", required=True)
    parser.add_argument("--timeout", type=int, default=30)
    args = parser.parse_args(argv)
    try:
        answer = show(args.technician, max(1, args.timeout))
    except Exception as exc:  # noqa: BLE001 - no Tk, no display: nobody could answer
        print(f"the prompt could not be shown: {exc}", file=sys.stderr)
        answer = UNANSWERED
    print(answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
