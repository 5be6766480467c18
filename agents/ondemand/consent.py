"""What the person at the computer may allow in an OnDemand session, and the bits they send.

A technician's ``CONSENT_REQUEST`` (docs/protocol.md) asks for a mask of permission bits; the
person answers with ``CONSENT``, each permission separately: "View screen", "Keyboard and
mouse", "Clipboard". Only these three can be allowed (whatever else a request carries is never
offered), and never a bit the request did not ask for (the relay would close with 4006).
Used by ``agents.ondemand.agent`` (the answer, and what a running session may do) and
``agents.ondemand.windows`` (one checkbox per offered permission, the banner's summary).
"""
from __future__ import annotations

from typing import Iterable

from agents.common import protocol as P

# In the order the consent window lists them: (permission key, label, mnemonic letter).
CHOICES = (
    ("view_screen", "View screen", "v"),
    ("keyboard_mouse", "Keyboard and mouse", "k"),
    ("clipboard", "Clipboard", "c"),
)
LABELS = {key: label for key, label, _ in CHOICES}


def offered(requested: int) -> tuple[str, ...]:
    """The permission keys a request asks for that the person can allow, in window order."""
    asked = P.permission_keys(requested)
    return tuple(key for key, _, _ in CHOICES if key in asked)


def consent_mask(requested: int, chosen: Iterable[str]) -> int:
    """The ``CONSENT`` bits for what the person ticked: only what was offered; 0 declines."""
    allowed = set(chosen) & set(offered(requested))
    return P.permission_mask(allowed)


def describe(allowed: Iterable[str]) -> str:
    """``View screen, Clipboard`` (window order), or ``nothing`` — for the banner."""
    keys = set(allowed)
    return ", ".join(label for key, label, _ in CHOICES if key in keys) or "nothing"
