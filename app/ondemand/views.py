"""OnDemand pages (spec D1, D3): the technician's My sessions and the public pages of a session.

``sessions`` blueprint, for a signed-in member with "OnDemand sessions" enabled and an
OnDemand role assignment applying now (``sessions.mine``: app/access.py checks both, and
answers a 403 page saying which is missing, ``services.ondemand_refusal``):

* ``GET /sessions`` — "Create session", the new key and its link (Copy link, Send link by
  email), and the queue: waiting and running sessions and keys not used yet.
* ``GET /sessions/queue`` — the queue alone, polled by HTMX every 3 s (``Vary: HX-Request``);
  static/ondemand/notify.js raises a browser notification when a new waiting row appears.
* ``POST /sessions``, ``POST /sessions/<id>/email``, ``POST /sessions/<id>/reject``.
  Start is a link to the console (``/sessions/<id>/console``, app/console) in a new tab.

Expired keys and sessions waiting too long are removed (``services.expire``) whenever the page
or the queue loads, besides the relay's own checker.

``ondemand`` blueprint, public (no sign-in; always the bare layout, even for a signed-in reader):

* ``GET /ondemand`` and ``POST /ondemand`` — type the key; the POST is under ``key_limits``
  (per address and global counters, 429 past them) and every attempt is audited.
* ``GET/POST /ondemand/<link_token>`` — the link page: warning, "I understand" (a POST that
  redirects to the same page with a signed ``understood`` value: two steps without JavaScript,
  a reload keeps the step), then the download for the visitor's platform, a QR code of the link,
  "Already installed? Open it" and the key.
* ``GET /ondemand/<link_token>/download/linux`` — the Linux launcher script.

The link page and the download are not under ``key_limits``: they are addressed by the link
token, 192 random bits (``secrets.token_urlsafe(24)``), which no guessing run can hit, unlike
the 9-digit key (10^9). An unknown token is a 404 page, a used or expired one a 410 page, both
saying to ask the technician for a new link.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, current_app, flash, g, redirect, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from app.access import requires
from app.common.templating import is_htmx, render
from app.errors import Conflict, ValidationError
from app.extensions import db
from app.models import Account, Membership, utcnow
from app.models.ondemand import KEY_LIFETIME, OnDemandSession, OnDemandState
from app.ondemand import links, services
from app.ondemand.forms import ConfirmForm, EmailLinkForm, KeyForm, UnderstandForm
from app.ondemand.throttle import KEY_MESSAGE, key_limits

bp = Blueprint("sessions", __name__, url_prefix="/sessions")
public_bp = Blueprint("ondemand", __name__, url_prefix="/ondemand")

# Permission key -> the icon (static/img/icons.svg) that shows it in the queue.
PERMISSION_ICONS = {"view_screen": "monitor", "keyboard_mouse": "keyboard", "clipboard": "clipboard",
                    "file_transfer": "file", "chat": "chat"}
RELAY_MODULE = "app.relay.ondemand"


# --------------------------------------------------------------------------- helpers
def _portal_url() -> str:
    return current_app.config["BASE_URL"]


def _absolute(endpoint: str, **values) -> str:
    """An address under the Portal's configured address (BASE_URL names the application root,
    any path prefix included), as the agent and the emails need it."""
    path = url_for(endpoint, **values)
    return _portal_url() + path[len(request.script_root):]


def _relay(function: str, *args) -> None:
    """Tell the relay (``app.relay.ondemand.<function>``), when this Portal has that module."""
    if importlib.util.find_spec(RELAY_MODULE) is None:
        return
    hook = getattr(importlib.import_module(RELAY_MODULE), function, None)
    if hook is not None:
        hook(*args)


def _expire() -> None:
    ids = services.expire()
    if ids:
        _relay("expired", ids)


def _console_url(session_id: int) -> str | None:
    """The console of an OnDemand session (app/console, ``GET /sessions/<id>/console``), found
    through the URL map so this page does not depend on the console's endpoint name; None
    while the Portal has no such page."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        endpoint, values = adapter.match(f"/sessions/{session_id}/console", method="GET")
    except HTTPException:
        return None
    return url_for(endpoint, **values)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "less than a minute"


@dataclass(frozen=True)
class QueueRow:
    session: OnDemandSession
    time_text: str  # "5 minutes" waited / in session, or the key's remaining time
    permissions: list[tuple[str, str, str]]  # (key, label, icon)
    console_url: str | None


def _queue(membership: Membership, now: datetime) -> list[QueueRow]:
    from app.roles.services import permission_label

    rows = []
    for row in services.my_sessions(membership):
        if row.state is OnDemandState.created:
            text = f"expires in {_duration((row.expires_at - now).total_seconds())}"
        elif row.state is OnDemandState.waiting:
            text = f"waiting {_duration((now - row.connected_at).total_seconds())}"
        else:
            text = f"in session {_duration((now - (row.started_at or row.connected_at or now)).total_seconds())}"
        granted = [(key, permission_label(key), PERMISSION_ICONS.get(key, "check")) for key in (row.granted or [])]
        console = _console_url(row.id) if row.state is OnDemandState.waiting else None
        rows.append(QueueRow(row, text, granted, console))
    return rows


def _page(membership: Membership, selected: OnDemandSession | None = None,
          email_form: EmailLinkForm | None = None, status: int = 200, partial: str | None = None):
    now = utcnow()
    context = {"queue": _queue(membership, now), "selected": selected,
               "email_form": email_form or EmailLinkForm(), "form": ConfirmForm()}
    if selected is not None:
        context["link_url"] = _absolute("ondemand.link", link_token=selected.link_token)
    response = render("ondemand/sessions.html", partial=partial, status=status, **context)
    response.headers["Cache-Control"] = "no-store"  # keys and links: never in a shared cache
    return response


def _selected(membership: Membership, session_id: int | None) -> OnDemandSession | None:
    """The session whose key and link the page shows: the technician's own, not used yet."""
    if session_id is None:
        return None
    row = db.session.get(OnDemandSession, session_id)
    if (row is None or row.account_id != membership.account_id or row.user_id != membership.user_id
            or row.state is not OnDemandState.created):
        return None
    return row


# --------------------------------------------------------------------------- My sessions
@bp.get("")
@requires("sessions.mine")
def mine():
    membership = g.membership
    _expire()
    return _page(membership, _selected(membership, request.args.get("session", type=int)))


@bp.post("")
@requires("sessions.mine")
def create():
    membership = g.membership
    if not ConfirmForm().validate_on_submit():
        raise ValidationError("The form expired; reload the page and try again.")
    row = services.create_session(membership)
    flash(f"Session key {row.grouped_key} is ready: give it, or the link, to the person you help.", "success")
    return redirect(url_for("sessions.mine", session=row.id), 303)


@bp.get("/queue")
@requires("sessions.mine")
def queue():
    """The queue table alone, for HTMX's polling; a plain request goes to the page."""
    membership = g.membership
    if not is_htmx():
        return redirect(url_for("sessions.mine"), 303)
    _expire()
    return _page(membership, partial="queue")


@bp.post("/<int:session_id>/email")
@requires("sessions.mine")
def email(session_id: int):
    membership = g.membership
    row = services.get_own(membership, session_id)  # another technician's session: 404
    form = EmailLinkForm()
    status = 422
    if form.validate_on_submit():
        try:
            services.send_link(membership, row.id, form.email.data,
                               _absolute("ondemand.link", link_token=row.link_token), _portal_url())
        except ValidationError as err:
            form.email.errors = [*form.email.errors, err.message]
            status = err.status
        except Conflict as err:  # the key was used or expired meanwhile: nothing to send
            flash(err.message, "error")
            return redirect(url_for("sessions.mine"), 303)
        else:
            flash(f"The link and the key were sent to {row.emailed_to}.", "success")
            return redirect(url_for("sessions.mine", session=row.id), 303)
    selected = row if row.state is OnDemandState.created else None
    return _page(membership, selected, email_form=form, status=status)


@bp.post("/<int:session_id>/reject")
@requires("sessions.mine")
def reject(session_id: int):
    """Void the key and drop the session; the relay disconnects its agent (close 4014)."""
    membership = g.membership
    if not ConfirmForm().validate_on_submit():
        raise ValidationError("The form expired; reload the page and try again.")
    services.reject(membership, session_id)  # another technician's session: 404
    _relay("rejected", session_id)
    if is_htmx():
        return _page(membership, partial="queue")
    flash("The session was rejected: its key no longer works.", "success")
    return redirect(url_for("sessions.mine"), 303)


# --------------------------------------------------------------------------- public pages
def _bare(template: str, status: int = 200, **context):
    """A public page: the bare layout even for a signed-in reader (membership=None)."""
    response = render(template, status=status, membership=None, account=None, **context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link token stays on this page
    return response


@public_bp.get("")
def entry():
    return _bare("ondemand/key.html", form=KeyForm())


@public_bp.post("")
@key_limits
def check():
    """A typed key: its link page, or the form again saying why not. Every attempt counts
    against the key limits and is audited (``services.check_key``)."""
    form = KeyForm()
    status = 422
    if form.validate_on_submit():
        try:
            row = services.check_key(form.key.data, request.remote_addr or "")
        except services.KeyRefused as refusal:
            form.key.errors = [*form.key.errors, refusal.message]
        else:
            return redirect(url_for("ondemand.link", link_token=row.link_token), 303)
    return _bare("ondemand/key.html", status=status, form=form)


@public_bp.errorhandler(429)
def too_many_keys(err):
    """Over a key limit: the key page again, saying so (``Retry-After`` from the limiter)."""
    form = KeyForm()
    form.key.errors = [err.description or KEY_MESSAGE]
    response = _bare("ondemand/key.html", status=429, form=form)
    retry = getattr(err, "retry_after", None)
    if retry:
        response.headers["Retry-After"] = str(retry)
    return response


def _ack_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="ondemand-understood")


def _understood(row: OnDemandSession, value: str) -> bool:
    try:
        token = _ack_serializer().loads(value or "", max_age=int(KEY_LIFETIME.total_seconds()))
    except BadSignature:
        return False
    return token == row.link_token


class _Gone(Exception):
    def __init__(self, status: int, message: str, account: Account | None):
        self.status, self.message, self.account = status, message, account


def _public_session(link_token: str) -> tuple[OnDemandSession, Account]:
    """The session of a link that can still be used, or :class:`_Gone` (404 unknown, 410 used
    or expired)."""
    row = services.by_link_token(link_token)
    if row is None:
        raise _Gone(404, "This link does not exist (any more). Ask the technician who sent it "
                         "for a new link.", None)
    account = db.session.get(Account, row.account_id)
    try:
        services.usable(row)
    except services.KeyRefused as refusal:
        used = "already used" if row.state is not OnDemandState.created else "has expired"
        raise _Gone(410, f"This link {used}: each link works for one session within 24 hours. "
                         "Ask the technician for a new link.", account) from refusal
    return row, account


@public_bp.errorhandler(_Gone)
def gone(err: _Gone):
    return _bare("ondemand/link_gone.html", status=err.status, code=err.status, message=err.message,
                 company_account=err.account)


def _logo_url(account: Account) -> str:
    for kind in ("square", "wide"):
        if getattr(account, f"logo_{kind}_type"):
            return _absolute("account.logo", account_id=account.id, kind=kind)
    return ""


@public_bp.route("/<link_token>", methods=["GET", "POST"])
def link(link_token: str):
    row, account = _public_session(link_token)
    form = UnderstandForm()
    if request.method == "POST":
        if form.validate_on_submit():
            return redirect(url_for("ondemand.link", link_token=link_token,
                                    understood=_ack_serializer().dumps(link_token)), 303)
        return _bare("ondemand/link.html", status=422, od_session=row, company_account=account, form=form,
                     understood=None)
    understood = request.args.get("understood", "")
    if not _understood(row, understood):
        return _bare("ondemand/link.html", od_session=row, company_account=account, form=form, understood=None)
    detected = links.detect_platform(request.headers.get("User-Agent", ""))
    chosen = request.args.get("platform", "")
    platform = links.BY_SLUG.get(chosen) or links.BY_SLUG.get(detected or "")
    link_url = _absolute("ondemand.link", link_token=link_token)
    return _bare("ondemand/link.html", od_session=row, company_account=account, form=form,
                 understood=understood, platforms=links.PLATFORMS, platform=platform, detected=detected,
                 link_url=link_url, qr=links.qr_data_uri(link_url),
                 open_url=links.open_url(_portal_url(), row.key),
                 launcher_name=links.launcher_filename(row))


@public_bp.get("/<link_token>/download/linux")
def download_linux(link_token: str):
    """The Linux launcher (app/ondemand/links.linux_launcher): the Portal's address, the key,
    the account's name and logo, and the agent this Portal serves (shared with the Host
    agent's installer: app/downloads/views.agent_source)."""
    from app.downloads.views import agent_source, script_response

    row, account = _public_session(link_token)
    script = links.linux_launcher(row, portal_url=_portal_url(), account_name=account.company,
                                  logo_url=_logo_url(account), **agent_source())
    return script_response(script, links.launcher_filename(row))
