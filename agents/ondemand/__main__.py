"""``tessera-ondemand``: the OnDemand agent's command line (also ``python -m agents.ondemand``).

    tessera-ondemand [--server URL] [--key KEY] [--account-name NAME] [--logo URL]
                     [--display :N] [tessera-ondemand://connect?server=...&key=...]

Parses the options (``agents.ondemand.options``), then opens the program's window
(``agents.ondemand.windows``) on the display and runs until the person closes it. Exit status:
0 the session ended (by the person, the technician or the relay), 1 the key or the connection
was refused (bad or used key, outdated program, rejected, expired, no server), 2 a bad command
line or no window could be opened.
"""
from __future__ import annotations

import logging
import os
import signal
import sys

from agents import agent_version
from agents.ondemand.agent import EXIT_USAGE
from agents.ondemand.options import UsageError, parse_args


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_args(argv, os.environ)
    except UsageError as exc:
        print(f"tessera-ondemand: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if options.verbose else logging.INFO,
                        format="%(asctime)s tessera-ondemand %(levelname)s %(message)s")
    try:
        import tkinter
    except ImportError as exc:
        return _no_window(options, f"{exc} (on Debian and Ubuntu: apt install python3-tk)")
    from agents.ondemand.windows import STOP, App

    try:
        app = App(options)
    except tkinter.TclError as exc:
        return _no_window(options, str(exc))

    def stop(signum, frame):
        app.events.put(STOP)   # handled on Tk's thread, by its next poll

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("tessera.ondemand").info(
        "tessera-ondemand %s for %s on display %s", agent_version(), options.server, options.display)
    return app.run()


def _no_window(options, why: str) -> int:
    print(f"tessera-ondemand: cannot open a window on display {options.display}: {why}",
          file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
