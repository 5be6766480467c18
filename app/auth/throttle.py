"""Brute-force protection for the sign-in steps and forgot-password.

Used as decorators by ``app/auth/views.py``. Built on Flask-Limiter (``app.extensions.limiter``,
memory or Redis storage from ``RATELIMIT_STORAGE_URI``):

* ``signin_limits`` guards the three sign-in steps with two shared counters of *failures*
  (wrong password, wrong code): one per username, one per client address. A view marks a
  failure with :func:`failed`; only then is the counter charged (``deduct_when``). When a
  counter is full every step answers 429 with ``Retry-After`` until its window ends.
* Before that, :func:`failed` slows the answer down: after a few failures each answer waits a
  little longer (doubling, capped), which costs a guessing script far more than a person.
* A browser that has signed in to a username before carries a signed "known browser" cookie
  and is exempt from that username's counter (never from the per-address one), so an attacker
  hammering someone's username can never lock the real person out of their usual browser.
* ``forgot_limits`` and ``code_send_limit`` cap how many emails one can trigger.

All windows are minutes long: every limit expires on its own.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from flask import current_app, g, request, session
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.extensions import limiter

KNOWN_COOKIE = "tessera_known"
KNOWN_MAX_AGE = 180 * 24 * 3600
KNOWN_KEEP = 5  # usernames remembered per browser

USER_SCOPE = "sign-in:user"
ADDRESS_SCOPE = "sign-in:address"

USER_MESSAGE = (
    "Too many failed sign-in attempts for this username. Sign-in for it is paused for a few "
    "minutes; it opens again on its own."
)
ADDRESS_MESSAGE = (
    "Too many failed sign-in attempts from your network address. Sign-in is paused for a few "
    "minutes; it opens again on its own."
)
SEND_MESSAGE = "Too many codes were sent. Wait a few minutes before asking for another one."
FORGOT_MESSAGE = "Too many password reset requests. Wait a few minutes, then try again."


def pause(seconds: float) -> None:
    """Wait before answering (a gevent-friendly sleep under ``tessera run``). Tests replace it."""
    time.sleep(seconds)


def _config(key: str):
    return lambda: current_app.config[key]


def _normalise(username: str | None) -> str:
    return (username or "").strip().lower()[:320]


def attempted_username() -> str:
    """The username this request is about: the form's (step one, forgot password) or the one
    remembered for the sign-in in progress (password and code steps)."""
    name = request.form.get("username") or (session.get("login") or {}).get("username")
    return _normalise(name) or "-"


def _failed_this_request(response) -> bool:
    return bool(g.get("auth_failed"))


# --- known browsers ------------------------------------------------------------------------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="tessera.known-browser")


def _tag(username: str) -> str:
    """A keyed digest of the username, so the cookie does not carry the address itself."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, _normalise(username).encode(), hashlib.sha256).hexdigest()[:24]


def _known_tags() -> list[str]:
    raw = request.cookies.get(KNOWN_COOKIE)
    if not raw:
        return []
    try:
        tags = _serializer().loads(raw, max_age=KNOWN_MAX_AGE)
    except BadSignature:
        return []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def is_known_browser(username: str | None = None) -> bool:
    name = username if username is not None else attempted_username()
    return name != "-" and _tag(name) in _known_tags()


def remember_browser(response, username: str):
    """After a complete sign-in: mark this browser as known for ``username``."""
    tag = _tag(username)
    tags = [tag] + [t for t in _known_tags() if t != tag]
    response.set_cookie(
        KNOWN_COOKIE,
        _serializer().dumps(tags[:KNOWN_KEEP]),
        max_age=KNOWN_MAX_AGE,
        path="/login",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response


# --- the limits ----------------------------------------------------------------------------

_per_user = limiter.shared_limit(
    _config("SIGNIN_LIMIT_PER_USER"),
    scope=USER_SCOPE,
    key_func=attempted_username,
    methods=["POST"],
    deduct_when=_failed_this_request,
    exempt_when=is_known_browser,
    error_message=USER_MESSAGE,
)
_per_address = limiter.shared_limit(
    _config("SIGNIN_LIMIT_PER_ADDRESS"),
    scope=ADDRESS_SCOPE,
    key_func=get_remote_address,
    methods=["POST"],
    deduct_when=_failed_this_request,
    error_message=ADDRESS_MESSAGE,
)
code_send_limit = limiter.shared_limit(
    _config("SIGNIN_CODE_SEND_LIMIT"),
    scope="sign-in:code-send",
    key_func=attempted_username,
    methods=["POST"],
    error_message=SEND_MESSAGE,
)
_forgot_user = limiter.shared_limit(
    _config("FORGOT_LIMIT_PER_USER"),
    scope="forgot:user",
    key_func=attempted_username,
    methods=["POST"],
    error_message=FORGOT_MESSAGE,
)
_forgot_address = limiter.shared_limit(
    _config("FORGOT_LIMIT_PER_ADDRESS"),
    scope="forgot:address",
    key_func=get_remote_address,
    methods=["POST"],
    error_message=FORGOT_MESSAGE,
)


def signin_limits(view):
    """Per-username and per-address failure limits for a sign-in step."""
    return _per_user(_per_address(view))


def forgot_limits(view):
    return _forgot_user(_forgot_address(view))


# --- failures and the slowdown -------------------------------------------------------------

def _failures_so_far() -> tuple[int, list]:
    """Failures already counted in this request's sign-in windows (before this one), and the
    limits that are now full because of this failure."""
    worst, filled = 0, []
    for current in limiter.current_limits:
        if current.request_args[-1] not in (USER_SCOPE, ADDRESS_SCOPE):
            continue
        used = current.limit.amount - current.remaining
        worst = max(worst, used)
        if used + 1 >= current.limit.amount:
            filled.append(current)
    return worst, filled


def slowdown_for(failures: int) -> float:
    """Seconds to wait before answering the ``failures``-th failure in a window."""
    cfg = current_app.config
    extra = failures - cfg["SIGNIN_SLOWDOWN_AFTER"]
    if extra <= 0:
        return 0.0
    return min(cfg["SIGNIN_SLOWDOWN_MAX"], cfg["SIGNIN_SLOWDOWN_SECONDS"] * 2 ** (extra - 1))


def failed(username: str, account_id: int | None = None) -> None:
    """Count this request as a failure, wait as long as the failure count asks, and audit the
    moment a limit fills up (once per window, so a flood does not flood the audit trail)."""
    from app.audit.services import record

    g.auth_failed = True
    before, filled = _failures_so_far()
    if filled and account_id is None:
        from app.auth.services import find_user

        user = find_user(username)
        account_id = user.primary_account_id if user is not None else None
    for current in filled:
        scope = "username" if current.request_args[-1] == USER_SCOPE else "address"
        record("sign_in.throttled", username, {"limit": str(current.limit), "by": scope},
               account_id=account_id)
    delay = slowdown_for(before + 1)
    if delay:
        pause(delay)


def retry_after() -> int:
    """Seconds until the breached limit of this request opens again."""
    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))
