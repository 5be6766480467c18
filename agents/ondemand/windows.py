"""The OnDemand agent's windows (Tk): the key, the waiting room, consent, the session banner,
and the end.

``__main__`` builds an :class:`App` and calls :meth:`App.run`, which runs Tk's main loop on the
main thread (Tk is touched from no other thread). The connection (``agents.ondemand.agent``)
runs on a worker thread and hands its events over a queue that the main loop polls; the windows
answer through :meth:`OnDemandAgent.answer` and :meth:`OnDemandAgent.disconnect`.

Windows, with stable titles (the tests find them with ``xdotool search --name``):

* ``Tessera OnDemand`` — the company's logo and name, then the current step: the key field
  (Return connects; a mistyped key is explained below the field), "Waiting for a technician…",
  and at the end what happened, with Close (Return, Escape).
* ``Tessera OnDemand: allow access?`` — who asks (plain text: the technician's name is not to be
  trusted), a checkbox per permission asked for (Alt+V View screen, Alt+K Keyboard and mouse,
  Alt+C Clipboard; all start unticked), Allow (Alt+A; only once something is ticked) and
  Decline (Alt+D, Escape, closing the window), and a countdown: no answer declines.
* ``Tessera OnDemand: session running`` — a small banner that stays on top: who is connected,
  what they may do, Disconnect (Alt+D, or closing the banner). Ctrl+Shift+X does the same from
  anywhere on the display.
"""
from __future__ import annotations

import base64
import logging
import math
import queue
import threading
import tkinter as tk
from dataclasses import dataclass
from typing import Callable

from agents.ondemand.agent import (
    EXIT_ENDED,
    ConsentAsked,
    ConsentSettled,
    OnDemandAgent,
    OnDemandConfig,
    Outcome,
    SessionLeft,
    SessionRunning,
    Waiting,
)
from agents.ondemand.consent import CHOICES, LABELS, describe
from agents.ondemand.logo import fetch_logo
from agents.ondemand.options import Options, UsageError, check_key

log = logging.getLogger("tessera.ondemand")

MAIN_TITLE = "Tessera OnDemand"
CONSENT_TITLE = "Tessera OnDemand: allow access?"
BANNER_TITLE = "Tessera OnDemand: session running"
POLL_MS = 100
LOGO_BOX = (280, 96)          # the logo is scaled down (by whole factors) to fit
ERROR_COLOUR = "#b00020"
WRAP = 420
MNEMONICS = {key: letter for key, _, letter in CHOICES}
ROOT_KEYS = ("<Return>", "<Escape>", "<Alt-c>", "<Alt-t>")
KEY_READY = "the key field has the keyboard"
END_READY = "the end is shown; Close has the keyboard"


@dataclass(frozen=True)
class _Logo:
    data: bytes | None


class _Stop:
    """SIGTERM / SIGINT arrived (``__main__`` puts one on the queue)."""


STOP = _Stop()


def plain(text: str, limit: int = 300) -> str:
    """Text from the other side as a label shows it: control characters as spaces, bounded."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit].strip()


def take_focus(widget: tk.Widget, ready: str = "") -> None:
    """Give ``widget`` the keyboard once its window is on screen: without a window manager
    (or before the map), asking earlier leaves the keys going nowhere. ``ready`` is logged
    then (the tests wait for it before they type)."""
    widget.focus_set()

    def force(tries: int = 100) -> None:
        try:
            if widget.winfo_viewable():
                widget.focus_force()
                if ready:
                    log.info("%s", ready)
            elif tries:
                widget.after(50, force, tries - 1)
        except tk.TclError:
            pass   # the step changed meanwhile

    widget.after(50, force)


class App:
    def __init__(self, options: Options,
                 agent_factory: Callable[[OnDemandConfig, Callable[[object], None]], OnDemandAgent] = OnDemandAgent,
                 logo_fetcher: Callable[[str], bytes | None] = fetch_logo):
        self.options = options
        self.agent_factory, self.logo_fetcher = agent_factory, logo_fetcher
        self.key_typed = options.key is None
        self.events: queue.Queue = queue.Queue()
        self.exit_code = EXIT_ENDED
        self.agent: OnDemandAgent | None = None
        self.worker: threading.Thread | None = None
        self.consent: ConsentWindow | None = None
        self.banner: Banner | None = None
        self.hotkey = False
        self.typed = ""               # the key as the person typed it, shown again if refused
        self.root = tk.Tk(screenName=options.display, className="TesseraOnDemand")
        self.root.title(MAIN_TITLE)
        self.root.resizable(False, False)
        self.root.protocol("WM_DELETE_WINDOW", self.quit)
        outer = tk.Frame(self.root, padx=24, pady=18)
        outer.pack(fill="both", expand=True)
        self.header = tk.Frame(outer)
        self.header.pack(fill="x")
        self.logo_label = tk.Label(self.header)
        self.name_label = tk.Label(self.header, text=options.account_name,
                                   font=("TkDefaultFont", 14, "bold"))
        self.name_label.pack(anchor="w")
        self.logo_image = None
        self.body = tk.Frame(outer, pady=12)
        self.body.pack(fill="both", expand=True)

    # --- the main loop -------------------------------------------------------------------

    def run(self) -> int:
        if self.options.logo:
            threading.Thread(target=lambda: self.events.put(_Logo(self.logo_fetcher(self.options.logo))),
                             name="logo", daemon=True).start()
        if self.options.key:
            self.connect(self.options.key)
        else:
            self.ask_key()
        self.root.after(POLL_MS, self._poll)
        self.root.mainloop()
        if self.worker is not None:
            self.worker.join(timeout=10)   # a Disconnect's close handshake, under way
        return self.exit_code

    def _poll(self) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            try:
                self._dispatch(event)
            except tk.TclError:
                log.debug("window gone while showing %r", event, exc_info=True)
            if event is STOP:
                return
        self.root.after(POLL_MS, self._poll)

    def _dispatch(self, event) -> None:
        if isinstance(event, Waiting):
            self.hotkey = event.hotkey
            self._close_banner()
            self.waiting(event.note)
        elif isinstance(event, ConsentAsked):
            self._close_consent()
            self.consent = ConsentWindow(self, event)
        elif isinstance(event, ConsentSettled):
            if self.consent is not None and self.consent.seq == event.seq:
                self._close_consent()
        elif isinstance(event, SessionRunning):
            self._close_consent()
            if self.banner is None:
                self.banner = Banner(self, event.technician, event.allowed)
                self.root.withdraw()
            else:
                self.banner.show(event.allowed)
        elif isinstance(event, SessionLeft):
            self._close_banner()
            self.waiting(f"{plain(event.technician)} left the session.")
        elif isinstance(event, Outcome):
            self.finished(event)
        elif isinstance(event, _Logo):
            self._show_logo(event.data)
        elif event is STOP:
            self.quit(stopping=True)

    # --- steps of the main window --------------------------------------------------------

    def _clear(self) -> None:
        for child in self.body.winfo_children():
            child.destroy()
        for sequence in ROOT_KEYS:   # each step binds its own
            self.root.unbind(sequence)
        self.root.deiconify()

    def _text(self, text: str, **kw) -> tk.Label:
        label = tk.Label(self.body, text=text, justify="left", wraplength=WRAP, **kw)
        label.pack(anchor="w", pady=(0, 8))
        return label

    def ask_key(self, error: str = "", typed: str = "") -> None:
        self._clear()
        self._text("Type the session key your technician gave you:")
        value = tk.StringVar(value=typed)
        entry = tk.Entry(self.body, textvariable=value, width=13, font=("TkFixedFont", 18),
                         justify="center")
        entry.pack(anchor="w", pady=(0, 6))
        problem = self._text(error, fg=ERROR_COLOUR)

        def submit(event=None) -> None:
            try:
                key = check_key(value.get())
            except UsageError as exc:
                log.info("the typed key was not sent: %s", exc)
                problem.configure(text=str(exc))
                entry.selection_range(0, "end")   # typing again replaces it
                entry.focus_set()
                return
            self.connect(key, typed=value.get())

        button = tk.Button(self.body, text="Connect", width=12, underline=0, command=submit)
        button.pack(anchor="e")
        entry.bind("<Return>", submit)
        self.root.bind("<Alt-c>", submit)
        entry.icursor("end")
        if error:
            entry.selection_range(0, "end")   # typing another key replaces it
        take_focus(entry, KEY_READY)

    def connect(self, key: str, typed: str = "") -> None:
        self._clear()
        self._text(f"Connecting to {self.options.server}…")
        config = OnDemandConfig(self.options.server, key, self.options.display)
        self.agent = agent = self.agent_factory(config, self.events.put)
        self.typed = typed

        def work() -> None:
            try:
                outcome = agent.run()
            except Exception as exc:  # noqa: BLE001 - say so rather than hang on "Connecting"
                log.exception("the connection failed")
                outcome = Outcome("stop", "Something went wrong", f"The connection failed: {exc}",
                                  None, 1)
            self.events.put(outcome)

        self.worker = threading.Thread(target=work, name="connection", daemon=True)
        self.worker.start()

    def waiting(self, note: str = "") -> None:
        self._clear()
        self._text("Waiting for a technician…", font=("TkDefaultFont", 13, "bold"))
        if note:
            self._text(note)
        self._text("Keep this window open. When your technician starts the session, you choose "
                   "what they may do.")
        tk.Button(self.body, text="Cancel", width=12, command=self.quit).pack(anchor="e")

    def finished(self, outcome: Outcome) -> None:
        self._close_consent()
        self._close_banner()
        self.agent = None
        self.exit_code = outcome.exit_code
        log.info("%s: %s", outcome.title, outcome.sentence)
        if outcome.kind in ("key", "retry") and self.key_typed:   # the key is not spent
            self.ask_key(outcome.sentence, self.typed)
            return
        self._clear()
        self._text(outcome.title, font=("TkDefaultFont", 13, "bold"))
        self._text(plain(outcome.sentence, 1100))
        buttons = tk.Frame(self.body)
        buttons.pack(anchor="e")
        close = tk.Button(buttons, text="Close", width=12, command=self.root.destroy)
        close.pack(side="right")
        if outcome.kind == "retry":   # the connection never opened: the key is not spent
            again = tk.Button(buttons, text="Try again", width=12, underline=0,
                              command=lambda: self.connect(self.options.key) if self.options.key
                              else self.ask_key())
            again.pack(side="right", padx=(0, 8))
            self.root.bind("<Alt-t>", lambda event: again.invoke())
        for sequence in ("<Return>", "<Escape>"):
            self.root.bind(sequence, lambda event: self.root.destroy())
        take_focus(close, END_READY)

    # --- what the person does ------------------------------------------------------------

    def answer(self, seq: int, chosen) -> None:
        agent = self.agent
        if agent is not None:
            agent.answer(seq, chosen)

    def disconnect(self) -> None:
        """Disconnect (banner), Cancel (waiting): end it now; the close runs off this thread."""
        agent = self.agent
        self._close_consent()
        self._close_banner()
        if agent is not None:
            self._clear()
            self._text("Ending the session…")
            threading.Thread(target=agent.disconnect, name="disconnect", daemon=True).start()

    def quit(self, stopping: bool = False) -> None:
        """The main window was closed (or SIGTERM): end the connection and leave."""
        agent = self.agent
        if agent is not None:
            threading.Thread(target=agent.stop if stopping else agent.disconnect,
                             name="disconnect", daemon=True).start()
        self.root.destroy()

    # --- helpers -------------------------------------------------------------------------

    def _close_consent(self) -> None:
        if self.consent is not None:
            self.consent.destroy()
            self.consent = None

    def _close_banner(self) -> None:
        if self.banner is not None:
            self.banner.destroy()
            self.banner = None

    def _show_logo(self, data: bytes | None) -> None:
        if not data:
            return
        try:
            image = tk.PhotoImage(master=self.root, data=base64.b64encode(data).decode("ascii"))
        except tk.TclError as exc:
            log.info("the logo cannot be shown (%s): showing the name only", exc)
            return
        factor = max(1, math.ceil(max(image.width() / LOGO_BOX[0], image.height() / LOGO_BOX[1])))
        if factor > 1:
            image = image.subsample(factor, factor)
        self.logo_image = image   # Tk forgets an image Python no longer holds
        log.info("showing the logo (%dx%d)", image.width(), image.height())
        self.logo_label.configure(image=image)
        self.name_label.pack_forget()
        self.logo_label.pack(anchor="w")
        self.name_label.pack(anchor="w", pady=(6, 0))


class ConsentWindow:
    """One ``CONSENT_REQUEST``: its checkboxes, Allow / Decline, and the countdown."""

    def __init__(self, app: App, event: ConsentAsked):
        self.app, self.seq = app, event.seq
        self.answered = False
        self.top = top = tk.Toplevel(app.root)
        top.title(CONSENT_TITLE)
        top.resizable(False, False)
        top.attributes("-topmost", True)
        frame = tk.Frame(top, padx=20, pady=16)
        frame.pack()
        def label(text: str, **kw) -> tk.Label:
            return tk.Label(frame, text=text, justify="left", wraplength=WRAP, **kw)

        label(f"A technician of {app.options.account_name} asks to connect to this computer:").pack(anchor="w")
        label(plain(event.technician) or "(no name given)",
              font=("TkDefaultFont", 12, "bold")).pack(anchor="w", pady=(6, 10))
        self.choices: dict[str, tk.BooleanVar] = {}
        first = None
        if event.offered:
            label("Tick what they may do:").pack(anchor="w")
        else:
            label("They ask for nothing you can allow here: decline, and tell them.").pack(anchor="w")
        for key in event.offered:
            var = tk.BooleanVar(master=top, value=False)
            box = tk.Checkbutton(frame, text=LABELS[key], variable=var, underline=0,
                                 command=self._changed)
            box.pack(anchor="w", padx=(12, 0))
            top.bind(f"<Alt-{MNEMONICS[key]}>", lambda e, b=box: b.invoke())
            self.choices[key] = var
            first = first or box
        label("You can end the session at any time: Disconnect, or Ctrl+Shift+X.").pack(anchor="w", pady=(10, 0))
        self.countdown = label("")
        self.countdown.pack(anchor="w", pady=(4, 12))
        buttons = tk.Frame(frame)
        buttons.pack(anchor="e")
        self.allow = tk.Button(buttons, text="Allow", width=10, underline=0, state="disabled",
                               command=self._allow)
        decline = tk.Button(buttons, text="Decline", width=10, underline=0, command=self._decline)
        self.allow.pack(side="left", padx=(0, 8))
        decline.pack(side="left")
        for button in (self.allow, decline):
            button.bind("<Return>", lambda e, b=button: b.invoke())
        top.bind("<Alt-a>", lambda e: self._allow())
        top.bind("<Alt-d>", lambda e: self._decline())
        top.bind("<Escape>", lambda e: self._decline())
        top.protocol("WM_DELETE_WINDOW", self._decline)
        self.left = int(event.timeout)
        self._tick()
        top.update_idletasks()   # in the middle of the screen, over whatever is there
        top.geometry(f"+{max(0, (top.winfo_screenwidth() - top.winfo_reqwidth()) // 2)}"
                     f"+{max(0, (top.winfo_screenheight() - top.winfo_reqheight()) // 3)}")
        take_focus(first or decline)

    def _changed(self) -> None:
        self.allow.configure(state="normal" if self._chosen() else "disabled")

    def _chosen(self) -> list[str]:
        return [key for key, var in self.choices.items() if var.get()]

    def _tick(self) -> None:
        if self.left <= 0:
            self._finish(())
            return
        self.countdown.configure(text=f"Without an answer, the session is declined in {self.left} s.")
        self.left -= 1
        self.top.after(1000, self._tick)

    def _allow(self) -> None:
        if self._chosen():
            self._finish(self._chosen())

    def _decline(self) -> None:
        self._finish(())

    def _finish(self, chosen) -> None:
        if self.answered:
            return
        self.answered = True
        self.app.answer(self.seq, chosen)
        self.app.consent = None if self.app.consent is self else self.app.consent
        self.destroy()

    def destroy(self) -> None:
        try:
            self.top.destroy()
        except tk.TclError:
            pass


class Banner:
    """The running session: who, what they may do, Disconnect. Stays on top, takes no focus."""

    def __init__(self, app: App, technician: str, allowed: frozenset[str]):
        self.app = app
        self.top = top = tk.Toplevel(app.root)
        top.title(BANNER_TITLE)
        top.resizable(False, False)
        top.attributes("-topmost", True)
        frame = tk.Frame(top, padx=14, pady=8, bg="#fff4d6")
        frame.pack(fill="both")
        tk.Label(frame, text=f"● {plain(technician)} is connected to this computer", bg="#fff4d6",
                 font=("TkDefaultFont", 11, "bold"), wraplength=WRAP, justify="left").pack(anchor="w")
        self.allowed = tk.Label(frame, bg="#fff4d6", justify="left", wraplength=WRAP)
        self.allowed.pack(anchor="w")
        if app.hotkey:
            tk.Label(frame, text="Ctrl+Shift+X ends the session at once.", bg="#fff4d6").pack(anchor="w")
        button = tk.Button(frame, text="Disconnect", underline=0, command=app.disconnect)
        button.pack(anchor="e", pady=(6, 0))
        top.bind("<Alt-d>", lambda e: app.disconnect())
        top.protocol("WM_DELETE_WINDOW", app.disconnect)
        self.show(allowed)
        top.update_idletasks()
        x = max(0, (top.winfo_screenwidth() - top.winfo_reqwidth()) // 2)
        top.geometry(f"+{x}+0")

    def show(self, allowed: frozenset[str]) -> None:
        self.allowed.configure(text=f"Allowed: {describe(allowed)}")

    def destroy(self) -> None:
        try:
            self.top.destroy()
        except tk.TclError:
            pass
