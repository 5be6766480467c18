"""Websocket endpoints of the relay (docs/protocol.md, "Connections").

gevent-websocket's handler has already answered the upgrade when a view runs; the view reads
what identifies the peer (a device's bearer token, or the technician's session) and hands the
connection to ``app.relay.agent`` / ``app.relay.viewer`` for its whole life (OnDemand sessions:
``app.relay.ondemand``). Refusals are close codes, sent after the upgrade so that the peer
learns why; the one exception is the OnDemand agent's key limits, answered 429 before the
upgrade (``app.relay.upgrade``). A plain request without an upgrade gets 400 and a sentence
saying so.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request, session
from flask_login import current_user

from app.extensions import limiter
from app.ondemand.throttle import key_limits
from app.relay.upgrade import PRECHECK, PRECHECKED, check_before_upgrade
from app.relay.wsio import install_fast_unmask

bp = Blueprint("relay", __name__, url_prefix="/relay")
install_fast_unmask()

WEBSOCKET_ONLY = ("This address is a websocket endpoint of the Tessera relay: connect with a "
                  "websocket client (Upgrade: websocket), see docs/protocol.md.\n")


def _websocket():
    return request.environ.get("wsgi.websocket")


def _not_upgraded() -> Response:
    return Response(WEBSOCKET_ONLY, status=400, mimetype="text/plain")


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _origin_ok() -> bool:
    """Browsers send Origin with every websocket upgrade; a page of another site must not ride
    on the technician's cookie (cross-site websocket hijacking). Non-browser clients send none."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    own = {f"{request.scheme}://{request.host}".lower()}
    base = urlsplit(current_app.config["BASE_URL"])
    own.add(f"{base.scheme}://{base.netloc}".lower())
    return origin.rstrip("/").lower() in own


# Werkzeug routes a websocket upgrade only to rules marked websocket=True (and a plain request
# only to the others), so each endpoint has both: the upgrade is served, the plain GET gets
# the 400 that explains.
@bp.get("/agent", websocket=True)
@bp.get("/agent")
def agent():
    ws = _websocket()
    if ws is None:
        return _not_upgraded()
    from app.relay.agent import serve_agent

    serve_agent(current_app._get_current_object(), ws, _bearer_token())
    return Response(status=204)


@bp.get("/devices/<int:device_id>/view", websocket=True)
@bp.get("/devices/<int:device_id>/view")
def view(device_id: int):
    ws = _websocket()
    if ws is None:
        return _not_upgraded()
    from app.relay.viewer import serve_viewer

    user_id = current_user.id if current_user.is_authenticated else None
    serve_viewer(current_app._get_current_object(), ws, session.get("sid"), user_id, device_id,
                 compress=request.args.get("compress", "zstd") != "none", origin_ok=_origin_ok())
    return Response(status=204)


# OnDemand (docs/protocol.md, "OnDemand sessions"). Every key an agent presents counts against
# the key limits; over them the upgrade is answered 429 (app.relay.upgrade asks this view first,
# with PRECHECK set, and marks the real call PRECHECKED so that the attempt counts once).
check_before_upgrade(f"{bp.url_prefix}/ondemand")


@limiter.request_filter
def _checked_before_upgrade() -> bool:
    return bool(request.environ.get(PRECHECKED))


@bp.get("/ondemand", websocket=True)
@bp.get("/ondemand")
@key_limits
def ondemand_agent():
    if request.environ.get(PRECHECK):
        return Response(status=204)  # within the limits: the handler upgrades
    ws = _websocket()
    if ws is None:
        return _not_upgraded()
    from app.relay.ondemand import serve_agent

    serve_agent(current_app._get_current_object(), ws, _bearer_token(), request.remote_addr or "")
    return Response(status=204)


@bp.get("/ondemand/<int:session_id>/view", websocket=True)
@bp.get("/ondemand/<int:session_id>/view")
def ondemand_view(session_id: int):
    ws = _websocket()
    if ws is None:
        return _not_upgraded()
    from app.relay.ondemand import serve_viewer

    user_id = current_user.id if current_user.is_authenticated else None
    serve_viewer(current_app._get_current_object(), ws, session.get("sid"), user_id, session_id,
                 compress=request.args.get("compress", "zstd") != "none", origin_ok=_origin_ok())
    return Response(status=204)
