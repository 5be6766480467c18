"""The authorisation matrix, generated from ``app.url_map``.

Every rule (endpoint x method, ``static`` aside) must have an entry in ``EXPECTED``: "public",
"signed-in", "agent" (a device token only: 401 JSON to everyone else), or the least user type
allowed (the portal's privilege table, ``app/access.py``).
Each rule is then requested by an anonymous visitor, by each of the four user types (each in a
fresh account of its own) and, where the URL names objects by id, by the owner of one account
with the ids of ANOTHER account's objects:

* denied user types get 403; an anonymous visitor is sent to sign in (302 to ``/login``, or 401
  with ``HX-Redirect`` for HTMX);
* allowed user types get anything but 401, 403 or a server error (and never 404 for their own
  account's ids: that would mean the test filled the URL with the wrong kind of id);
* another account's ids get 404 (or 403), never the object.

A new route without an entry, or a protected view without ``@requires(...)`` (the
``required_permission`` attribute), fails with a message saying what to add. URL arguments are
filled by ``ID_MAKERS`` (ids of objects created in the signed-in user's account) and
``SAMPLE_VALUES`` (fixed text such as a logo kind); a new argument name needs an entry there.
"""
from __future__ import annotations

import re
import tempfile
from datetime import date
from typing import Callable

import pytest
from sqlalchemy import select

from app import create_app
from app.access import PERMISSIONS
from app import config as app_config
from app.models import Account, AuditEvent, Invite, Membership, User, UserSession, UserType
from tests.conftest import sign_in

PUBLIC, SIGNED_IN = "public", "signed-in"
# Agent API routes: a device token (Authorization: Bearer) and nothing else; a browser session
# of any user type is no credential there (401 JSON, like no token at all).
AGENT = "agent"
# Relay websocket endpoints: whoever asks, a plain request without an upgrade gets 400 and a
# sentence saying a websocket client is needed; who may connect is decided after the upgrade,
# with close codes (tests/integration/test_relay*.py, docs/protocol.md).
WEBSOCKET = "websocket"
USER, GM, ADMIN, OWNER = "user", "group_manager", "administrator", "owner"
TYPES = (USER, GM, ADMIN, OWNER)

# (endpoint, method) -> who may use it. Keep it sorted by URL; the least type comes from the
# route's @requires(permission) and PERMISSIONS in app/access.py.
EXPECTED: dict[tuple[str, str], str] = {
    ("dashboard.home", "GET"): PUBLIC,  # redirects to sign-in or to the landing page
    ("account.logo", "GET"): PUBLIC,  # error and download pages show the logo
    ("account.configuration", "GET"): ADMIN,
    ("account.configuration_save", "POST"): OWNER,
    ("account.configuration_logo", "POST"): OWNER,
    ("account.configuration_logo_remove", "POST"): OWNER,
    ("account.configuration_owner", "POST"): OWNER,
    ("dashboard.index", "GET"): GM,
    ("health.healthz", "GET"): PUBLIC,
    ("invites.accept", "GET"): PUBLIC,
    ("invites.accept", "POST"): PUBLIC,
    ("auth.login", "GET"): PUBLIC,
    ("auth.login", "POST"): PUBLIC,
    ("auth.change_user", "GET"): PUBLIC,
    ("auth.code", "GET"): PUBLIC,
    ("auth.code", "POST"): PUBLIC,
    ("auth.resend_code", "POST"): PUBLIC,
    ("auth.forgot", "GET"): PUBLIC,
    ("auth.forgot", "POST"): PUBLIC,
    ("auth.password", "GET"): PUBLIC,
    ("auth.password", "POST"): PUBLIC,
    ("auth.reset", "GET"): PUBLIC,
    ("auth.reset", "POST"): PUBLIC,
    ("auth.logout", "POST"): SIGNED_IN,
    ("audit.index", "GET"): GM,
    ("audit.reports", "GET"): GM,
    ("audit.generate_report", "POST"): GM,
    ("audit.delete_report", "POST"): ADMIN,
    ("audit.download_report", "GET"): GM,
    ("dashboard.my_devices", "GET"): USER,
    ("account.profile", "GET"): USER,
    ("account.profile_save", "POST"): USER,
    ("account.profile_accounts", "POST"): USER,
    ("account.profile_password", "POST"): USER,
    ("auth.recovery_codes", "GET"): USER,
    ("auth.recovery_codes", "POST"): USER,
    ("auth.recovery_codes_download", "GET"): USER,
    ("security.account_security", "GET"): ADMIN,
    ("security.account_security", "POST"): ADMIN,
    ("auth.switch", "POST"): SIGNED_IN,
    ("users.index", "GET"): GM,
    ("users.details", "GET"): GM,
    ("users.edit", "GET"): GM,
    ("users.edit", "POST"): GM,
    ("users.remove", "GET"): GM,
    ("users.remove", "POST"): GM,
    ("users.resend_invite", "POST"): GM,
    ("users.invite", "GET"): GM,
    ("users.invite", "POST"): GM,
    ("users.remove_many", "POST"): GM,
    ("role_assignments.index", "GET"): GM,
    ("role_assignments.new", "GET"): ADMIN,
    ("role_assignments.new", "POST"): ADMIN,
    ("role_assignments.edit", "GET"): ADMIN,
    ("role_assignments.edit", "POST"): ADMIN,
    ("role_assignments.remove", "GET"): ADMIN,
    ("role_assignments.remove", "POST"): ADMIN,
    ("role_assignments.remove_many", "POST"): ADMIN,
    ("role_assignments.schedule_many", "POST"): ADMIN,
    ("role_assignments.schedules_index", "GET"): GM,
    ("role_assignments.schedule_new", "GET"): ADMIN,
    ("role_assignments.schedule_new", "POST"): ADMIN,
    ("role_assignments.schedule_edit", "GET"): ADMIN,
    ("role_assignments.schedule_edit", "POST"): ADMIN,
    ("role_assignments.schedule_remove", "GET"): ADMIN,
    ("role_assignments.schedule_remove", "POST"): ADMIN,
    ("role_assignments.check", "GET"): GM,
    # Groups: group managers read them; every change, membership included, is for administrators.
    ("groups.index", "GET"): GM,
    ("groups.add", "GET"): ADMIN,
    ("groups.add", "POST"): ADMIN,
    ("groups.attach_devices", "POST"): ADMIN,
    ("groups.attach_users", "POST"): ADMIN,
    ("groups.details", "GET"): GM,
    ("groups.add_devices", "GET"): ADMIN,
    ("groups.add_devices", "POST"): ADMIN,
    ("groups.edit", "GET"): ADMIN,
    ("groups.edit", "POST"): ADMIN,
    ("groups.remove_members", "POST"): ADMIN,
    ("groups.remove", "GET"): ADMIN,
    ("groups.remove", "POST"): ADMIN,
    ("groups.add_users", "GET"): ADMIN,
    ("groups.add_users", "POST"): ADMIN,
    ("roles.index", "GET"): GM,
    ("roles.add", "GET"): ADMIN,
    ("roles.add", "POST"): ADMIN,
    ("roles.details", "GET"): GM,
    ("roles.copy", "GET"): ADMIN,
    ("roles.copy", "POST"): ADMIN,
    ("roles.edit", "GET"): ADMIN,
    ("roles.edit", "POST"): ADMIN,
    ("roles.remove", "GET"): ADMIN,
    ("roles.remove", "POST"): ADMIN,
    ("applications.index", "GET"): ADMIN,
    ("applications.add", "GET"): ADMIN,
    ("applications.add", "POST"): ADMIN,
    ("applications.edit", "GET"): ADMIN,
    ("applications.edit", "POST"): ADMIN,
    ("applications.remove", "GET"): ADMIN,
    ("applications.remove", "POST"): ADMIN,
    ("api.enroll", "POST"): PUBLIC,  # the enrolment key in the JSON body is the credential
    ("api.me", "GET"): AGENT,
    ("devices.index", "GET"): GM,
    ("devices.presence", "GET"): USER,
    # The console: every user type whose assignments grant Remote session + View screen on
    # the device (the maker below gives one); without them 403 (tests/integration/test_console_page.py).
    ("console.page", "GET"): USER,
    ("devices.enroll_many", "POST"): GM,
    ("devices.favourites_add", "POST"): GM,
    ("devices.favourites_remove", "POST"): GM,
    ("devices.remove_many", "POST"): ADMIN,
    ("devices.details", "GET"): GM,
    ("devices.edit", "GET"): GM,
    ("devices.edit", "POST"): GM,
    ("devices.enroll", "POST"): GM,
    ("devices.favourite", "POST"): GM,
    ("devices.remove", "GET"): ADMIN,
    ("devices.remove", "POST"): ADMIN,
    ("downloads.index", "GET"): ADMIN,
    ("downloads.add", "GET"): ADMIN,
    ("downloads.add", "POST"): ADMIN,
    ("downloads.link", "GET"): PUBLIC,  # the random link token is the key
    ("downloads.link", "POST"): PUBLIC,
    ("downloads.link_install_linux", "GET"): PUBLIC,
    ("downloads.agent_download", "GET"): PUBLIC,  # the installer fetches it without a session
    ("downloads.details", "GET"): ADMIN,
    ("downloads.edit", "GET"): ADMIN,
    ("downloads.edit", "POST"): ADMIN,
    ("downloads.install_linux", "GET"): ADMIN,
    ("downloads.renew_link", "POST"): ADMIN,
    ("downloads.remove", "GET"): ADMIN,
    ("downloads.remove", "POST"): ADMIN,
    ("downloads.revoke", "GET"): ADMIN,
    ("downloads.revoke", "POST"): ADMIN,
    # An emailed confirm-access link: any signed-in member of the request's account; the signed
    # token in the query (absent here: 400) must name them (tests/integration/test_confirm_access.py).
    ("confirm.answer", "GET"): SIGNED_IN,
    ("confirm.answer_post", "POST"): SIGNED_IN,
    # My sessions (OnDemand): every user type, with OnDemand enabled on the membership and an
    # OnDemand role assignment (ACTOR_SETUP gives both; without them 403, test_ondemand_pages.py).
    ("sessions.mine", "GET"): USER,
    ("sessions.create", "POST"): USER,
    ("sessions.queue", "GET"): USER,
    ("sessions.email", "POST"): USER,
    ("sessions.reject", "POST"): USER,
    # The public OnDemand pages: the key (rate-limited) or the 192-bit link token is the key.
    ("ondemand.entry", "GET"): PUBLIC,
    ("ondemand.check", "POST"): PUBLIC,
    ("ondemand.link", "GET"): PUBLIC,
    ("ondemand.link", "POST"): PUBLIC,
    ("ondemand.download_linux", "GET"): PUBLIC,
    ("relay.agent", "GET"): WEBSOCKET,
    ("relay.view", "GET"): WEBSOCKET,
    ("relay.ondemand_agent", "GET"): WEBSOCKET,
    ("relay.ondemand_view", "GET"): WEBSOCKET,
    # The console of an OnDemand session: its own technician (OnDemand enabled, an OnDemand
    # role), once the visitor connected (tests/integration/test_relay_ondemand.py).
    ("console.ondemand_page", "GET"): USER,
}


# --- URL arguments -------------------------------------------------------------------------------

def _account_id(world: "World", account: Account) -> int:
    return account.id


def _member_user_id(world: "World", account: Account) -> int:
    """A plain user of the account: every type that may manage users may act on them."""
    return world.member(account).id


def _report_id(world: "World", account: Account) -> int:
    from app.audit.reports import generate_report

    report = generate_report(account.id, account.owner, date(2024, 1, 1), date(2024, 1, 31))
    return report.id


def _invited_user_id(world: "World", account: Account) -> int:
    """A user with a pending invitation (sent once), so "resend" has something to resend."""
    from app.users.services import invite_users

    owner = next(m for m in account.owner.memberships if m.account_id == account.id)
    email = f"invited-{account.id}@example.com"
    invite_users(owner, email, UserType.user)
    return world.db.session.scalar(select(User.id).where(User.username == email))


def _user_group_id(world: "World", account: Account) -> int:
    """A local user group with the account's plain user in it."""
    from app.groups.services import attach_users, create_group
    from app.models import GroupKind

    group = create_group(account.id, GroupKind.user, f"Support {account.id}")
    attach_users(group.id, [world.member(account).id], account.id)
    return group.id


def _device_group_id(world: "World", account: Account) -> int:
    from app.groups.services import create_group
    from app.models import GroupKind

    return create_group(account.id, GroupKind.device, f"Servers {account.id}").id


def _custom_role_id(world: "World", account: Account) -> int:
    """A role the account made itself (predefined roles are read-only)."""
    from app.models import RoleType
    from app.roles.services import RoleInput, create_role

    return create_role(account.id, RoleInput(f"Helpdesk {account.id}", RoleType.device,
                                             permissions=["view_screen"], client_types=["browser"])).id


def _application_id(world: "World", account: Account) -> int:
    from app.applications.services import create_application

    return create_application(account.id, name=f"Notepad {account.id}", executable="notepad.exe").id


def _assignment_id(world: "World", account: Account) -> int:
    from app.models import Assignment

    assignment = Assignment(account_id=account.id, name=f"Matrix {account.id}", everyone=True, everything=True)
    world.db.session.add(assignment)
    world.db.session.commit()
    return assignment.id


def _schedule_id(world: "World", account: Account) -> int:
    from app.models import Schedule

    schedule = Schedule(account_id=account.id, name=f"Matrix {account.id}", start_date=date(2024, 1, 1))
    world.db.session.add(schedule)
    world.db.session.commit()
    return schedule.id


def _package_id(world: "World", account: Account) -> int:
    """A deployment package without devices (so it may also be removed)."""
    from app.downloads.services import PackageData, create_package

    return create_package(account.id, PackageData(name=f"Matrix {account.id}")).id


def _device_id(world: "World", account: Account) -> int:
    """A pending device, enrolled through the agent API's service with a package's key."""
    from app.devices.services import EnrolRequest, enrol
    from app.downloads.services import PackageData, create_package

    package = create_package(account.id, PackageData(name=f"Matrix devices {account.id}"))
    return enrol(EnrolRequest(package.enrollment_key, f"host-{account.id}", "Linux", "0.1",
                              f"hw-{account.id}")).device.id


def _viewable_device_id(world: "World", account: Account) -> int:
    """An enrolled device that an Everyone x Everything assignment lets every user view."""
    from app.devices.services import enroll_devices
    from app.models import Assignment, RoleType
    from app.roles.services import RoleInput, create_role

    device_id = _device_id(world, account)
    enroll_devices(account.id, [device_id])
    role = create_role(account.id, RoleInput(f"Console {account.id}", RoleType.device,
                                             permissions=["remote_session", "view_screen"],
                                             client_types=["browser"]))
    world.db.session.add(Assignment(account_id=account.id, name=f"Console {account.id}", role_id=role.id,
                                    everyone=True, everything=True))
    world.db.session.commit()
    return device_id


def _access_request_id(world: "World", account: Account) -> int:
    """A pending confirm-access request for one of the account's devices."""
    from datetime import timedelta

    from app.models import AccessRequest, utcnow

    row = AccessRequest(account_id=account.id, device_id=_device_id(world, account), technician="Tina",
                        username="tina@example.com", device_name="pc", expires_at=utcnow() + timedelta(minutes=5))
    world.db.session.add(row)
    world.db.session.commit()
    return row.id


def _ondemand_session_id(world: "World", account: Account) -> int:
    """An unused OnDemand session of the signed-in actor when they are in ``account`` (a session
    exists only for its own technician), else of the account's owner; either gets OnDemand
    enabled and an OnDemand role assignment."""
    from tests.integration.ondemand_world import new_session

    actor = world.actor
    if actor is None or not any(m.account_id == account.id for m in actor.memberships):
        actor = account.owner
    return new_session(actor, account.id).id


def _waiting_ondemand_session_id(world: "World", account: Account) -> int:
    """Like :func:`_ondemand_session_id`, with the visitor's agent connected (its console opens
    only then)."""
    from app.models.ondemand import OnDemandSession
    from tests.integration.ondemand_world import make_waiting

    session_id = _ondemand_session_id(world, account)
    make_waiting(world.db.session.get(OnDemandSession, session_id))
    return session_id


# URL argument name -> a function giving the id of such an object in ``account``.
ID_MAKERS: dict[str, Callable[["World", Account], int]] = {
    "package_id": _package_id,
    "device_id": _device_id,
    "assignment_id": _assignment_id,
    "schedule_id": _schedule_id,
    "account_id": _account_id,
    "user_id": _member_user_id,
    "report_id": _report_id,
    "group_id": _user_group_id,
    "role_id": _custom_role_id,
    "application_id": _application_id,
    "request_id": _access_request_id,
    "session_id": _ondemand_session_id,
}
# (endpoint, argument) -> a maker for routes that need a particular kind of object.
ID_MAKERS_BY_ENDPOINT: dict[tuple[str, str], Callable[["World", Account], int]] = {
    ("users.resend_invite", "user_id"): _invited_user_id,
    ("groups.add_devices", "group_id"): _device_group_id,
    ("console.page", "device_id"): _viewable_device_id,
    ("console.ondemand_page", "session_id"): _waiting_ondemand_session_id,
}

# Text URL arguments: (endpoint, argument) or just the argument name -> a value to use.
SAMPLE_VALUES: dict[tuple[str, str] | str, str] = {
    "kind": "wide",
    "token": "not-a-real-token",
    "link_token": "not-a-real-link-token",
    "filename": "tessera_agent-0.0.0-py3-none-any.whl",  # not the current build: 404
}

# Routes whose answer to another account's ids is not a 404/403 but a refusal shown some other
# way (a flash and a redirect); the function checks that nothing happened.
# (endpoint, method) -> check(world, actor, own_account, foreign_url_values).
def _still_in_own_account(world: "World", actor, own: Account, values: dict) -> None:
    rows = world.db.session.scalars(select(UserSession).where(UserSession.user_id == actor.id)).all()
    assert rows and all(row.account_id == own.id for row in rows), \
        "switching to an account the user is not a member of must not change the session"


def _invite_not_resent(world: "World", actor, own: Account, values: dict) -> None:
    invite = world.db.session.scalar(
        select(Invite).join(Membership, Invite.membership_id == Membership.id)
        .where(Membership.user_id == values["user_id"]))
    assert invite is not None and invite.sent_count == 1, \
        "another account's invitation must not be sent again"
    resent = world.db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.invite_resent")).all()
    assert resent == [], "another account's invitation must not be sent again"


def _ondemand_technician(world: "World", account: Account, actor) -> None:
    from tests.integration.ondemand_world import enable_ondemand

    enable_ondemand(actor, account.id)


# Endpoint prefix -> what the signed-in actor needs in their own account before the request
# (my sessions: the membership's OnDemand switch and an OnDemand role assignment).
ACTOR_SETUP: dict[str, Callable[["World", Account, object], None]] = {
    "sessions.": _ondemand_technician,
    "console.ondemand_page": _ondemand_technician,
}

FOREIGN_REFUSALS: dict[tuple[str, str], Callable] = {
    ("auth.switch", "POST"): _still_in_own_account,
    ("users.resend_invite", "POST"): _invite_not_resent,
}


# --- the rules, read once at collection time --------------------------------------------------------

def _routes() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(endpoint, method, rule, arguments) of every rule but ``static``."""
    app = create_app(app_config.TestConfig(SQLALCHEMY_DATABASE_URI="sqlite://",
                                INSTANCE_PATH=tempfile.mkdtemp(prefix="tessera-matrix-")))
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule, tuple(sorted(rule.arguments))))
    return sorted(found, key=lambda r: (r[2], r[1]))


ROUTES = _routes()


def _int_args(app, endpoint: str, rule_text: str) -> set[str]:
    from werkzeug.routing import IntegerConverter

    for rule in app.url_map.iter_rules(endpoint):
        if rule.rule == rule_text:
            return {name for name, conv in rule._converters.items() if isinstance(conv, IntegerConverter)}
    return set()


def _is_id_arg(endpoint: str, name: str) -> bool:
    return name in ID_MAKERS or (endpoint, name) in ID_MAKERS_BY_ENDPOINT


def _has_id_args(route) -> bool:
    endpoint, method, rule, args = route
    return any(_is_id_arg(endpoint, a) for a in args)


def _cases():
    for route in ROUTES:
        endpoint, method, rule, args = route
        expectation = EXPECTED.get((endpoint, method))
        label = f"{method} {rule}"
        for who in ("anonymous", *TYPES):
            yield pytest.param(route, who, id=f"{label} as {who}")
        if expectation not in (None, PUBLIC) and _has_id_args(route):
            yield pytest.param(route, "other_account", id=f"{label} with another account's ids")


# --- helpers --------------------------------------------------------------------------------------

class World:
    """Creates the accounts, users and objects a case needs."""

    def __init__(self, app, db, factory):
        self.app, self.db, self.factory = app, db, factory
        self._members: dict[int, object] = {}
        self.actor = None  # the signed-in user, once there is one

    def member(self, account: Account):
        if account.id not in self._members:
            self._members[account.id] = self.factory.user(account, "user")
        return self._members[account.id]

    def url_values(self, route, account: Account) -> dict:
        endpoint, method, rule, args = route
        values = {}
        for name in args:
            if (endpoint, name) in ID_MAKERS_BY_ENDPOINT:
                values[name] = ID_MAKERS_BY_ENDPOINT[(endpoint, name)](self, account)
            elif name in ID_MAKERS:
                values[name] = ID_MAKERS[name](self, account)
            elif (endpoint, name) in SAMPLE_VALUES:
                values[name] = SAMPLE_VALUES[(endpoint, name)]
            elif name in SAMPLE_VALUES:
                values[name] = SAMPLE_VALUES[name]
            else:
                pytest.fail(f"{method} {rule} takes the URL argument {name!r}: add a maker for it to "
                            "ID_MAKERS (ids of an object in the given account) or a value to "
                            "SAMPLE_VALUES in tests/integration/test_authorization_matrix.py")
        return values

    def url(self, route, account: Account) -> tuple[str, dict]:
        endpoint, method, rule, args = route
        values = self.url_values(route, account)
        adapter = self.app.url_map.bind("localhost")
        return adapter.build(endpoint, values, method=method), values


def _csrf_token(client, signed_in: bool) -> str:
    page = client.get("/" if signed_in else "/login", follow_redirects=True)
    match = re.search(r'"X-CSRFToken": "([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF token on the page after {'sign-in' if signed_in else '/login'}"
    return match.group(1)


def _request(client, method: str, url: str, token: str | None, htmx: bool = False):
    headers = {"HX-Request": "true"} if htmx else {}
    if method == "GET":
        return client.get(url, headers=headers)
    headers["X-CSRFToken"] = token or ""
    return client.open(url, method=method, data={"csrf_token": token or ""}, headers=headers)


def _describe(response) -> str:
    text = response.get_data(as_text=True)
    found = re.search(r'<section class="error-page"[^>]*>(.*?)</section>', text, re.S)
    detail = re.sub(r"<[^>]+>", " ", found.group(1)) if found else text[:200]
    return f"{response.status_code} {' '.join(detail.split())}"


def _allowed(expectation: str, who: str) -> bool:
    if expectation in (PUBLIC, SIGNED_IN):
        return True
    return UserType[who].rank >= UserType[expectation].rank


def _check_websocket_route(app, factory, world: "World", own: Account, route, who: str) -> None:
    """Relay endpoints answer a request without a websocket upgrade with 400 and a sentence,
    to everyone: the real checks happen after the upgrade (close codes)."""
    endpoint, method, rule, args = route
    client = app.test_client()
    if who != "anonymous":
        sign_in(client, factory.user(own, OWNER if who == "other_account" else who).username)
    url, _ = world.url(route, factory.account() if who == "other_account" else own)
    response = client.get(url)
    assert response.status_code == 400 and "websocket" in response.get_data(as_text=True), (
        f"GET {url} without an upgrade must answer 400 saying it is a websocket endpoint; "
        f"{who} got {_describe(response)}")


def _check_agent_route(app, factory, world: "World", own: Account, route, who: str) -> None:
    """Agent API routes answer 401 JSON to everyone without a device token, signed in or not."""
    endpoint, method, rule, args = route
    client = app.test_client()
    if who != "anonymous":
        sign_in(client, factory.user(own, OWNER if who == "other_account" else who).username)
    url, _ = world.url(route, own)
    response = _request(client, method, url, None)
    assert response.status_code == 401 and response.is_json and "error" in response.get_json(), (
        f"{method} {url} takes a device token only; {who} without one got {_describe(response)}")


# --- the tests ------------------------------------------------------------------------------------

def test_every_route_has_an_expectation():
    missing = []
    for endpoint, method, rule, args in ROUTES:
        if (endpoint, method) not in EXPECTED:
            missing.append(f"    ({endpoint!r}, {method!r}): ...,  # {method} {rule}")
    assert not missing, (
        "These routes have no entry in EXPECTED in tests/integration/test_authorization_matrix.py. "
        "Add each with 'public', 'signed-in' or the least user type allowed "
        "(PERMISSIONS in app/access.py for its @requires permission):\n" + "\n".join(missing))
    present = {(endpoint, method) for endpoint, method, _, _ in ROUTES}
    stale = sorted(set(EXPECTED) - present)
    assert not stale, f"EXPECTED lists routes that no longer exist; remove them: {stale}"


def test_every_url_argument_can_be_filled():
    unknown = sorted({f"{name!r} (in {method} {rule})" for endpoint, method, rule, args in ROUTES
                      for name in args
                      if not _is_id_arg(endpoint, name) and (endpoint, name) not in SAMPLE_VALUES
                      and name not in SAMPLE_VALUES})
    assert not unknown, ("Add these URL arguments to ID_MAKERS or SAMPLE_VALUES in "
                         "tests/integration/test_authorization_matrix.py: " + ", ".join(unknown))


def test_every_protected_view_declares_its_permission(app):
    problems = []
    for endpoint, method, rule, args in ROUTES:
        expectation = EXPECTED.get((endpoint, method))
        view = app.view_functions[endpoint]
        permission = getattr(view, "required_permission", None)
        if expectation in TYPES:
            if permission is None:
                problems.append(f"{method} {rule} ({endpoint}) is for {expectation} and up but has no "
                                "@requires(...) from app/access.py")
            elif PERMISSIONS[permission].name != expectation:
                problems.append(f"{method} {rule} ({endpoint}) requires {permission!r}, held from "
                                f"{PERMISSIONS[permission].name} up, but EXPECTED says {expectation}")
        elif expectation in (PUBLIC, SIGNED_IN, AGENT, WEBSOCKET) and permission is not None:
            problems.append(f"{method} {rule} ({endpoint}) requires {permission!r} but EXPECTED says "
                            f"{expectation}: give it {PERMISSIONS[permission].name!r}")
    assert not problems, "\n".join(problems)


def test_id_arguments_are_integers_so_ids_cannot_be_guessed_as_paths(app):
    for endpoint, method, rule, args in ROUTES:
        for name in (a for a in args if _is_id_arg(endpoint, a)):
            assert name in _int_args(app, endpoint, rule), f"{rule}: {name} should use <int:{name}>"


@pytest.mark.parametrize("route, who", list(_cases()))
def test_route_access(app, db, factory, route, who):
    endpoint, method, rule, args = route
    expectation = EXPECTED.get((endpoint, method))
    if expectation is None:
        pytest.fail(f"{method} {rule} ({endpoint}) has no entry in EXPECTED: add one "
                    "(see test_every_route_has_an_expectation)")
    world = World(app, db, factory)
    own = factory.account()

    if expectation == AGENT:
        _check_agent_route(app, factory, world, own, route, who)
        return
    if expectation == WEBSOCKET:
        _check_websocket_route(app, factory, world, own, route, who)
        return

    if who == "anonymous":
        client = app.test_client()
        url, _ = world.url(route, own)
        token = _csrf_token(client, signed_in=False) if method != "GET" else None
        response = _request(client, method, url, token)
        if expectation == PUBLIC:
            assert response.status_code not in (401, 403) and response.status_code < 500, \
                f"{method} {url} is public but answered {_describe(response)}"
            return
        assert response.status_code == 302 and "/login" in response.headers.get("Location", ""), \
            f"{method} {url} must send a signed-out visitor to sign in, got {_describe(response)}"
        htmx = _request(client, method, url, token, htmx=True)
        assert htmx.status_code == 401 and "/login" in htmx.headers.get("HX-Redirect", ""), \
            f"HTMX {method} {url} signed out must answer 401 with HX-Redirect, got {htmx.status_code}"
        return

    client = app.test_client()
    actor_type = OWNER if who == "other_account" else who
    actor = factory.user(own, actor_type)
    world.actor = actor
    for prefix, setup in ACTOR_SETUP.items():
        if endpoint.startswith(prefix):
            setup(world, own, actor)
    signed = sign_in(client, actor.username)
    assert signed.status_code == 200, f"could not sign in as {actor_type}"
    token = _csrf_token(client, signed_in=True)

    if who == "other_account":
        other = factory.account()
        url, values = world.url(route, other)
        response = _request(client, method, url, token)
        if (endpoint, method) in FOREIGN_REFUSALS:
            assert response.status_code < 500, f"{method} {url}: {_describe(response)}"
            FOREIGN_REFUSALS[(endpoint, method)](world, actor, own, values)
            return
        assert response.status_code in (403, 404), (
            f"{method} {url} with another account's ids must be 404 (or 403) for an owner of a "
            f"different account, got {_describe(response)}")
        return

    url, _ = world.url(route, own)
    response = _request(client, method, url, token)
    if _allowed(expectation, who):
        assert response.status_code not in (401, 403) and response.status_code < 500, (
            f"{method} {url} is for {expectation} and up; {who} got {_describe(response)}")
        if expectation != PUBLIC and _has_id_args(route):
            assert response.status_code != 404, (
                f"{method} {url} answered 404 with the user's own ids: fix ID_MAKERS so it "
                f"gives an id of the right kind ({_describe(response)})")
    else:
        assert response.status_code == 403, (
            f"{method} {url} is for {expectation} and up; {who} must get 403, got {_describe(response)}")
