"""The sidebar: its groups and items, filtered for the signed-in membership.

``templates/partials/nav.html`` renders :func:`sidebar`, and the dashboard's "Getting started"
panel uses :func:`link_if_allowed`. An item appears only when its page exists (its endpoint is
registered) *and* the current membership passes the very permission its view requires (the
``required_permission`` that :func:`app.access.requires` puts on the view), so the menu grows
as features land and never shows a dead link or a page that would answer 403.

A feature that adds a page listed here registers it under one of the endpoint names below;
nothing else needs to change.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request, url_for

from app.access import can


@dataclass(frozen=True)
class Item:
    label: str
    icon: str  # a symbol id in static/img/icons.svg
    endpoints: tuple[str, ...]  # the first one that exists is linked
    permission: str  # used only when the view does not declare one itself
    section: str = ""  # an endpoint prefix that also marks the item active ("users.")


@dataclass(frozen=True)
class Group:
    label: str  # "" for items shown without a heading
    items: tuple[Item, ...]


SIDEBAR: tuple[Group, ...] = (
    Group("", (Item("Dashboard", "dashboard", ("dashboard.index",), "dashboard.view"),)),
    Group("Access", (
        Item("My sessions", "sessions", ("sessions.mine",), "sessions.mine", "sessions."),
        Item("My devices", "monitor", ("dashboard.my_devices",), "devices.mine"),
        Item("My mobile devices", "phone", ("devices.mobile", "mobile.mine"), "devices.mine", "mobile."),
    )),
    Group("Manage", (
        Item("Users", "users", ("users.index",), "users.view", "users."),
        Item("Devices", "server", ("devices.index",), "devices.view", "devices."),
        Item("Groups", "folders", ("groups.index",), "groups.manage", "groups."),
        Item("Applications", "grid", ("applications.index",), "devices.manage", "applications."),
        Item("Roles", "key", ("roles.index",), "roles.view", "roles."),
        Item("Role assignments", "link", ("roles.assignments", "role_assignments.index"),
             "roles.view", "role_assignments."),
    )),
    Group("", (Item("Downloads", "download", ("downloads.index",), "packages.manage", "downloads."),)),
    Group("Security", (
        Item("Account security", "shield", ("security.account_security",), "security.manage"),
        Item("Authentication", "lock", ("authentication.index", "security.authentication"),
             "authentication.manage", "authentication."),
        Item("Logs", "list", ("audit.index",), "logs.view", "audit."),
    )),
    Group("Account", (
        Item("Configuration", "settings", ("account.configuration",), "account.view", "account.configuration"),
    )),
)


@dataclass(frozen=True)
class Link:
    label: str
    icon: str
    url: str
    active: bool


def allowed_endpoint(endpoints: tuple[str, ...] | str, fallback_permission: str | None = None) -> str | None:
    """The first of ``endpoints`` that is registered and that the current membership may open."""
    if isinstance(endpoints, str):
        endpoints = (endpoints,)
    views = current_app.view_functions
    for endpoint in endpoints:
        view = views.get(endpoint)
        if view is None:
            continue
        permission = getattr(view, "required_permission", None) or fallback_permission
        if permission is None or can(permission):
            return endpoint
        return None
    return None


def link_if_allowed(endpoint: str, **values) -> str | None:
    """``url_for(endpoint)`` when that page exists and is allowed, else ``None``."""
    found = allowed_endpoint(endpoint)
    return url_for(found, **values) if found else None


def _is_active(item: Item, endpoint: str) -> bool:
    current = request.endpoint or ""
    return current == endpoint or bool(item.section and current.startswith(item.section))


def sidebar() -> list[tuple[str, list[Link]]]:
    """The groups with at least one visible item, each as ``(label, links)``."""
    groups = []
    for group in SIDEBAR:
        links = []
        for item in group.items:
            endpoint = allowed_endpoint(item.endpoints, item.permission)
            if endpoint:
                links.append(Link(item.label, item.icon, url_for(endpoint), _is_active(item, endpoint)))
        if links:
            groups.append((group.label, links))
    return groups
