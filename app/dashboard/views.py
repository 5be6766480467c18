"""Dashboard and My devices, the two landing pages; the sidebar's template context."""
from flask import Blueprint, g, redirect, url_for
from flask_login import current_user

from app.access import can, requires
from app.common.templating import render
from app.dashboard import services
from app.dashboard.nav import link_if_allowed, sidebar

bp = Blueprint("dashboard", __name__)


@bp.app_context_processor
def shell_navigation():
    # Computed lazily: only pages that draw the shell pay for it.
    return {"sidebar": sidebar, "link_if_allowed": link_if_allowed}


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for("dashboard.index") if can("dashboard.view") else url_for("dashboard.my_devices"))


# (label, description, endpoint) for the "Getting started" panel; only pages that exist and
# that the reader may open are listed.
GETTING_STARTED = (
    ("Invite your team", "Add users, choose their type and send the invitations.", ("users.invite", "users.index")),
    ("Enrol devices", "Create a deployment package and install the agent with its key.",
     ("downloads.add", "downloads.index")),
    ("Secure the account", "Require an email code at sign-in and keep the audit trail on.",
     ("security.account_security",)),
    ("Brand and configure", "Company details, timezone, default remote control action and logos.",
     ("account.configuration",)),
    ("Review the logs", "Who signed in, what changed, and CSV reports for any period.", ("audit.index",)),
    ("Your profile", "Your name, email, password and recovery codes.", ("account.profile",)),
)


def _getting_started() -> list[tuple[str, str, str]]:
    links = []
    for label, text, endpoints in GETTING_STARTED:
        for endpoint in endpoints:
            url = link_if_allowed(endpoint)
            if url:
                links.append((label, text, url))
                break
    return links


@bp.get("/dashboard")
@requires("dashboard.view")
def index():
    account = g.membership.account
    return render(
        "dashboard/index.html",
        users=services.user_stats(account.id),
        devices=services.device_stats(account.id),
        expiry=services.expiry(account),
        activity=services.activity(account.id),
        recent=services.recent_events(account.id) if can("logs.view") else [],
        getting_started=_getting_started(),
        logs_url=link_if_allowed("audit.index"),
    )


@bp.get("/my-devices")
@requires("devices.mine")
def my_devices():
    """The devices some active assignment lets the user reach now: favourites first, then all."""
    from flask import request

    from app.account.services import action_label, effective_remote_action
    from app.assignments.permissions import reach
    from app.assignments.services import MAX_FAVOURITES_SHOWN, my_device_columns, my_devices_query, my_favourites
    from app.common.listing import Listing
    from app.models import Device, utcnow

    membership, now = g.membership, utcnow()
    known = reach(membership, now)
    listing = Listing("my-devices", my_devices_query(membership, now, known), my_device_columns(), request.args,
                      id_column=Device.id, default_sort="name", tz=membership.account.timezone or "UTC")
    action = effective_remote_action(membership)
    response = render("dashboard/my_devices.html", partial="listing", listing=listing,
                      favourites=my_favourites(membership, now, known), max_favourites=MAX_FAVOURITES_SHOWN,
                      action=action, action_label=action_label(action))
    return listing.push_url(response)
