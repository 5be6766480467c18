"""The text clipboard of the agent's X display, both ways (``CLIPBOARD`` in
``docs/protocol.md``; the relay checks the ``clipboard`` permission).

``agent.Agent`` calls :meth:`X11Clipboard.set_text` with what a viewer copied, and starts
:meth:`X11Clipboard.watch` to hear about what is copied on the machine. Owning an X selection
means answering every paste request for as long as the text should stay pasteable, including
large ones in pieces (INCR); ``xclip`` does exactly that in a process of its own and survives
the agent, so it is used for reading and writing. Changes of owner are watched with the XFixes
extension (an event, no polling), falling back to reading every two seconds where the X
server lacks XFixes. The agent's own writes are not echoed back to the viewer.
"""
from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import tempfile
import threading
from typing import Callable

log = logging.getLogger("tessera.agent")

MAX_TEXT_BYTES = 60_000  # docs/protocol.md: CLIPBOARD carries at most this much UTF-8


def clip_utf8(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


class ClipboardUnavailable(RuntimeError):
    pass


class X11Clipboard:
    """xclip runs with the environment as it is when this is built, ``DISPLAY`` set to the
    display (with ``display = auto``, ``XAUTHORITY`` is the agent's copy of the display's
    cookie, ``xsession.adopt``); the watching connection is python-xlib's, which reads
    ``$XAUTHORITY`` when it connects."""

    def __init__(self, display: str, *, xclip: str | None = None):
        self.display = display
        self.xclip = xclip or shutil.which("xclip")
        if self.xclip is None:
            raise ClipboardUnavailable("xclip is not installed (Debian: apt install xclip)")
        self.env = {**os.environ, "DISPLAY": display}
        self._last_set: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_text(self, text: str) -> None:
        """Own the CLIPBOARD selection with ``text``. xclip reads it, forks a server that
        answers pastes until someone else copies, and returns."""
        with self._lock:
            self._last_set = text
        # The forked server keeps xclip's stdout/stderr open: a pipe would never see EOF, so
        # errors go to a file.
        with tempfile.TemporaryFile() as errors:
            done = subprocess.run([self.xclip, "-selection", "clipboard", "-in"],
                                  input=text.encode("utf-8"), env=self.env, timeout=10,
                                  stdout=subprocess.DEVNULL, stderr=errors)
            if done.returncode != 0:
                errors.seek(0)
                message = errors.read().decode("utf-8", "replace").strip()
                raise ClipboardUnavailable(message or f"xclip exited with {done.returncode}")

    def get_text(self) -> str | None:
        """The CLIPBOARD as text, None when it is empty or holds no text."""
        for target in ("UTF8_STRING", "STRING"):
            try:
                done = subprocess.run([self.xclip, "-selection", "clipboard", "-out", "-target", target],
                                      env=self.env, timeout=5, stdin=subprocess.DEVNULL,
                                      capture_output=True)
            except subprocess.TimeoutExpired:
                return None  # an owner that never answers: nothing to read
            if done.returncode == 0:
                codec = "utf-8" if target == "UTF8_STRING" else "latin-1"
                return done.stdout.decode(codec, "replace")
        return None

    def watch(self, on_change: Callable[[str], None]) -> threading.Thread:
        """Call ``on_change(text)`` from a thread of its own whenever another program puts
        text on the clipboard (not for the agent's own ``set_text``). Stops with :meth:`close`."""
        thread = threading.Thread(target=self._watch_quietly, args=(on_change,),
                                  name="clipboard-watch", daemon=True)
        thread.start()
        self._thread = thread
        return thread

    def _watch_quietly(self, on_change) -> None:
        try:
            self._watch(on_change)
        except Exception as exc:  # noqa: BLE001 - the X server went away: nothing to watch
            if not self._stop.is_set():
                log.warning("stopped watching the clipboard: %s", exc)

    def _changed(self, on_change) -> None:
        text = self.get_text()
        if text is None:
            return
        with self._lock:
            if text == self._last_set:
                return  # our own write coming back
            self._last_set = text
        on_change(clip_utf8(text))

    def _watch(self, on_change) -> None:
        from Xlib import display as xdisplay
        from Xlib.ext import xfixes

        d = xdisplay.Display(self.display)
        try:
            if not d.has_extension("XFIXES"):
                return self._poll(on_change)
            d.xfixes_query_version()
            # python-xlib builds its own event classes per display: match on the numbers.
            owner_event = d.query_extension("XFIXES").first_event + xfixes.XFixesSelectionNotify
            clipboard = d.intern_atom("CLIPBOARD")
            d.xfixes_select_selection_input(d.screen().root, clipboard,
                                            xfixes.XFixesSetSelectionOwnerNotifyMask)
            d.flush()
            while not self._stop.is_set():
                readable, _, _ = select.select([d.fileno()], [], [], 0.5)
                if not readable and not d.pending_events():
                    continue
                changed = False
                while d.pending_events():
                    event = d.next_event()
                    if event.type == owner_event and getattr(event, "selection", None) == clipboard \
                            and event.sub_code == xfixes.XFixesSetSelectionOwnerNotify:
                        changed = True
                if changed:
                    self._changed(on_change)
        finally:
            try:
                d.close()
            except Exception:  # noqa: BLE001 - the connection is already gone
                pass

    def _poll(self, on_change) -> None:
        while not self._stop.wait(2.0):
            self._changed(on_change)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
