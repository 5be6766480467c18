"""Rate limits on OnDemand keys (spec D1): a nine-digit key is only as good as the cap on guessing.

Every attempt counts, right or wrong — the key typed on the public key page (``POST /ondemand``)
and the key an OnDemand agent presents to the relay (``GET /relay/ondemand``) — against two
shared Flask-Limiter counters: one per client address and one for everybody together, so a
guessing run spread over many addresses is throttled too. Over a limit the answer is HTTP 429
with ``Retry-After`` (before any websocket upgrade), audited as ``ondemand.key_throttled``. Limits come from the configuration
(``ONDEMAND_KEY_LIMIT_PER_ADDRESS``, ``ONDEMAND_KEY_LIMIT_GLOBAL``) and expire on their own.
"""
from __future__ import annotations

from flask import current_app, request
from flask_limiter.util import get_remote_address

from app.extensions import limiter

KEY_MESSAGE = ("Too many session keys were tried. Wait a few minutes, then type the key again "
               "(or open the link the technician sent).")

def _audit_breach(limit) -> None:
    """Every attempt is audited, those the limiter refuses too (``ondemand.key_throttled``, no
    account: the key was never looked at)."""
    from app.audit.services import record

    record("ondemand.key_throttled", "",
           {"address": get_remote_address(), "path": request.path, "limit": str(limit.limit)},
           account_id=None)


_per_address = limiter.shared_limit(
    lambda: current_app.config["ONDEMAND_KEY_LIMIT_PER_ADDRESS"],
    scope="ondemand-key:address",
    key_func=get_remote_address,
    methods=["GET", "POST"],
    error_message=KEY_MESSAGE,
    on_breach=_audit_breach,
)
_everyone = limiter.shared_limit(
    lambda: current_app.config["ONDEMAND_KEY_LIMIT_GLOBAL"],
    scope="ondemand-key:global",
    key_func=lambda: "everyone",
    methods=["GET", "POST"],
    error_message=KEY_MESSAGE,
    on_breach=_audit_breach,
)


def key_limits(view):
    """Decorate a view that takes an OnDemand key: both counters are charged on every call of
    the methods above."""
    return _everyone(_per_address(view))
