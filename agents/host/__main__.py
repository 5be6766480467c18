"""``tessera-agent``: the Host agent's command line (also ``python -m agents.host``).

    tessera-agent --server URL --enroll-key KEY [--state-dir DIR] [--display :N|auto]
    tessera-agent --config /etc/tessera/agent.conf

The Linux installer (``templates/downloads/install-linux.sh``) runs the second form from a
systemd unit, as root and without ``$DISPLAY``: the display is then ``auto``
(``xsession.discover``). Exit status: 0 stopped (SIGTERM/SIGINT), 2 unusable configuration or
enrolment refused for good, 3 the device was revoked (the unit does not restart the agent for 2
or 3).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from agents import agent_version
from agents.host.agent import EXIT_CONFIG, Agent
from agents.host.state import ConfigError, build_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tessera-agent",
        description="Tessera Host agent: lets technicians see and control this machine "
                    "through the Tessera relay.")
    parser.add_argument("--server", help="the Portal's address, e.g. https://support.example.com")
    parser.add_argument("--enroll-key", dest="enroll_key",
                        help="the deployment package's enrolment key (used once, to enrol)")
    parser.add_argument("--state-dir", dest="state_dir",
                        help="where the device token is kept (default /var/lib/tessera-agent "
                             "for root, else ~/.local/state/tessera-agent)")
    parser.add_argument("--display", help="the X display to share, :N, or auto: the active desktop "
                                          "session's display (else the login screen's) and its "
                                          "Xauthority, followed as users log in and out "
                                          "(default $DISPLAY, else auto)")
    parser.add_argument("--config", help="a configuration file (portal_url = ..., "
                                         "enrollment_key = ...), e.g. /etc/tessera/agent.conf")
    parser.add_argument("--hardware-id", dest="hardware_id", help=argparse.SUPPRESS)
    parser.add_argument("--verbose", "-v", action="store_true", help="log debugging detail")
    parser.add_argument("--version", action="version", version=f"tessera-agent {agent_version()}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s tessera-agent %(levelname)s %(message)s")
    try:
        config = build_config(server=args.server, enroll_key=args.enroll_key,
                              state_dir=args.state_dir, display=args.display,
                              config_file=args.config, hardware_id=args.hardware_id)
    except ConfigError as exc:
        print(f"tessera-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    agent = Agent(config)

    def stop(signum, frame):
        # Closing the websocket blocks on the close handshake: not inside a signal handler.
        threading.Thread(target=agent.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("tessera.agent").info(
        "tessera-agent %s for %s on display %s (state in %s)", agent_version(), config.server,
        config.display, config.state_dir)
    return agent.run()


if __name__ == "__main__":
    sys.exit(main())
