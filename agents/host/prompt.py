"""The confirm-access prompt on the host (spec B8, ``CONFIRM_REQUEST`` in docs/protocol.md).

The agent's receive loop must never wait for a person, and a Tk main loop wants a thread of its
own, so the prompt is a process of its own: :meth:`Prompts.start` (called by
``agents.host.agent`` for each ``CONFIRM_REQUEST``) runs ``python -m agents.host.prompt
--technician NAME --timeout SECONDS`` on the agent's X display (``DISPLAY``, and the
``XAUTHORITY`` the agent uses) from a worker thread, and reads the one word it prints:
``allow``, ``deny`` or ``unanswered``.

When the relay settles the request some other way first, ``CONFIRM_CANCEL`` arrives and
:meth:`Prompts.cancel` ends that process (SIGTERM): Tk is only ever touched by the prompt
process's own main thread, so nothing in the agent calls into Tk from another thread. A
cancelled request's answer, even one clicked in the same instant, is never sent.

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
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("tessera.agent")

TITLE = "Tessera: allow remote access?"
ALLOW, DENY, UNANSWERED = "allow", "deny", "unanswered"


@dataclass
class _Ask:
    """One open question: its prompt process once started, and whether it was cancelled."""

    process: subprocess.Popen | None = None
    cancelled: bool = False


class Prompts:
    """The prompts one connection has open, by request id, so that the relay can cancel one
    (``CONFIRM_CANCEL``) and the connection can close them all when it ends."""

    def __init__(self, command: list[str] | None = None):
        # The prompt program; tests put a stand-in here (it gets --technician and --timeout).
        self.command = command or [sys.executable, "-m", "agents.host.prompt"]
        self._lock = threading.Lock()
        self._asks: dict[int, _Ask] = {}
        self._closed = False

    def start(self, request: int, technician: str, timeout: int, display: str | None,
              reply: Callable[[str], None]) -> None:
        """Ask on a worker thread and call ``reply`` with ``allow``, ``deny`` or ``unanswered``
        unless the request is cancelled (or the connection closed) first. Registered before
        this returns, so a ``CONFIRM_CANCEL`` read right after it always finds the request."""
        with self._lock:
            self._asks[request] = _Ask(cancelled=self._closed)
        threading.Thread(target=self._run, args=(request, technician, timeout, display, reply),
                         name=f"confirm-{request}", daemon=True).start()

    def _run(self, request, technician, timeout, display, reply) -> None:
        word = self.ask(request, technician, timeout, display)
        if word is not None:
            reply(word)

    def ask(self, request: int, technician: str, timeout: int, display: str | None) -> str | None:
        """Show the prompt and wait for it: ``allow``, ``deny`` or ``unanswered``; None when
        the request was cancelled or the connection closed (its answer must not be sent)."""
        env = dict(os.environ)
        if display:
            env["DISPLAY"] = display
        command = self.command + ["--technician", technician, "--timeout", str(int(timeout))]
        with self._lock:
            ask = self._asks.setdefault(request, _Ask(cancelled=self._closed))
            if ask.cancelled:
                self._asks.pop(request, None)
                return None
            try:
                ask.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except OSError as exc:
                self._asks.pop(request, None)
                log.warning("the confirm-access prompt could not start: %s", exc)
                return UNANSWERED
        process = ask.process
        try:
            out, err = process.communicate(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        finally:
            with self._lock:
                self._asks.pop(request, None)
        if ask.cancelled:  # set under the lock before the process was ended
            return None
        word = out.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if word[0] in (ALLOW, DENY, UNANSWERED):
            return word[0]
        log.warning("the confirm-access prompt failed (exit %s): %s", process.returncode,
                    err.decode("utf-8", "replace").strip()[-500:])
        return UNANSWERED

    def cancel(self, request: int) -> bool:
        """The relay settled ``request`` without this answer: close its prompt. False when the
        request is not open here (unknown, or already answered): nothing to do."""
        with self._lock:
            ask = self._asks.get(request)
            if ask is None:
                return False
            ask.cancelled = True
            process = ask.process
        _end(process)
        return True

    def close(self) -> None:
        """The connection ended: its questions no longer matter."""
        with self._lock:
            self._closed = True
            for ask in self._asks.values():
                ask.cancelled = True
            running = [ask.process for ask in self._asks.values()]
        for process in running:
            _end(process)


def _end(process: subprocess.Popen | None) -> None:
    if process is None:
        return  # not started yet: ask() sees the flag and does not start it
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
