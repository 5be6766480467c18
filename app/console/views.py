"""The console page, ``GET /devices/<id>/console``: a full-window canvas view of a device that
``static/console/*.js`` connects to the relay's viewer websocket (docs/console.md); and the same
page for an OnDemand session, ``GET /sessions/<id>/console`` (docs/ondemand.md).

The page asks the relay's own rule (``app.relay.services.view_access``) whether the technician
may view the device now, so the page and the websocket can never disagree: another account's
device is 404, a device they may not view (no ``remote_session`` + ``view_screen``, revoked,
their user disabled) a 403 page saying why. The websocket checks again when it connects. An
OnDemand session's console follows the relay's OnDemand rule the same way
(``app.ondemand.services.technician_access``): another technician's session is 404.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, g, url_for

from app.access import requires
from app.common.templating import render
from app.devices.services import get_device
from app.errors import Forbidden
from app.models import utcnow
from agents.common.protocol import permission_mask

# No URL prefix: devices' consoles are under /devices, OnDemand sessions' under /sessions.
bp = Blueprint("console", __name__)

# How the toolbar labels the remote machine's modifier keys, by the OS it reported.
MAC_WORDS = ("mac", "darwin", "os x")


def os_family(os_name: str) -> str:
    """``mac``, ``windows`` or ``linux`` (everything else: X11 desktops use the Windows set with
    Super) from the OS string the agent reported."""
    lowered = (os_name or "").lower()
    if any(word in lowered for word in MAC_WORDS):
        return "mac"
    if "windows" in lowered:
        return "windows"
    return "linux"


@bp.get("/devices/<int:device_id>/console")
@requires("devices.mine")
def page(device_id: int):
    from app.relay.services import Refused, view_access

    device = get_device(g.membership.account_id, device_id)  # another account's device: 404
    try:
        access = view_access(g.membership.user_id, device.id, utcnow())
    except Refused as refusal:
        raise Forbidden(f"You cannot open the console of {device.display_name}: {refusal.message}") from None
    response = render("console/console.html", device=device, os_family=os_family(device.os),
                      permissions=permission_mask(access.permissions.granted),
                      ws_path=url_for("relay.view", device_id=device.id))
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class VisitorComputer:
    """What the console page shows of an OnDemand session's computer (what its agent reported:
    attacker input, escaped by the template)."""

    id: int
    display_name: str
    os: str
    logged_in_user: str
    online: bool = True


@bp.get("/sessions/<int:session_id>/console")
@requires("sessions.mine")
def ondemand_page(session_id: int):
    from app.models.ondemand import OnDemandState
    from app.ondemand.services import technician_access

    try:  # another technician's session: NotFound (404)
        row = technician_access(g.membership.user_id, session_id, utcnow()).session
    except Forbidden as refusal:
        raise Forbidden(f"You cannot open this session's console: {refusal.message}") from None
    if row.state is OnDemandState.created:
        raise Forbidden("You cannot open this session's console yet: the visitor has not "
                        "connected with the key.")
    computer = VisitorComputer(row.id, row.hostname or "The visitor's computer", row.os,
                               row.visitor_user)
    # Nothing is allowed before the person at the computer answers (PERMISSIONS says what was).
    response = render("console/console.html", device=computer, os_family=os_family(row.os),
                      permissions=permission_mask({"remote_session"}),
                      ws_path=url_for("relay.ondemand_view", session_id=row.id),
                      back_url=url_for("sessions.mine"), back_label="My sessions")
    response.headers["Cache-Control"] = "no-store"
    return response
