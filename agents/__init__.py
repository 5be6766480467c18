"""Tessera's agents: programs that run on the supported machines and dial out to the relay.

``agents.host`` is the Host agent (the ``tessera-agent`` console script, installed as a service
by the deployment package's installer); ``agents.common`` holds what every agent shares (the
wire protocol of ``docs/protocol.md`` and the websocket transport).
"""
from __future__ import annotations


def agent_version() -> str:
    """The version this agent reports at enrolment and in HELLO: the installed distribution's
    (``tessera-agent``, the wheel the Portal serves, else the whole ``tessera``), or the source
    tree's when it runs from a checkout that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("tessera-agent", "tessera"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            pass
    return "0.1.0+source"
