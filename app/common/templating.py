"""Rendering: one template serves the full page and its HTMX partial, plus the values every
page's shell needs (current account, licence counters, account switcher)."""
from __future__ import annotations

from flask import Flask, current_app, g, make_response, request
from flask_login import current_user
from jinja2_fragments.flask import render_block

from app.access import PERMISSIONS, can


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render(template: str, partial: str | None = None, status: int = 200, **context):
    """Render ``template``; when HTMX asks, only its block ``partial``. Always ``Vary: HX-Request``."""
    if partial and is_htmx():
        body = render_block(template, partial, **context)
    else:
        from flask import render_template

        body = render_template(template, **context)
    response = make_response(body, status)
    response.headers["Vary"] = "HX-Request, Cookie"
    return response


def shell_counters():
    """Title bar counters: Users a/b, OnDemand users a/b, Devices a/b."""
    membership = g.get("membership")
    if membership is None:
        return None
    from app.users.services import licence_counters

    return licence_counters(membership.account)


def install_template_helpers(app: Flask) -> None:
    @app.context_processor
    def shell_context():
        membership = g.get("membership")
        return {
            "can": can,
            "membership": membership,
            "account": membership.account if membership is not None else None,
            "memberships": (
                [m for m in current_user.memberships if m.enabled]
                if current_user.is_authenticated
                else []
            ),
            "shell_counters": shell_counters,
        }

    app.jinja_env.globals["PERMISSIONS"] = PERMISSIONS
    app.jinja_env.filters["dt"] = _format_datetime
    app.jinja_env.filters["ago"] = _format_ago


def _format_datetime(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    from zoneinfo import ZoneInfo

    membership = g.get("membership")
    zone = membership.account.timezone if membership is not None else "UTC"
    try:
        return value.astimezone(ZoneInfo(zone)).strftime(fmt)
    except Exception:  # an unknown zone name falls back to UTC
        return value.strftime(fmt) + " UTC"


def _format_ago(value) -> str:
    from app.models import utcnow

    if value is None:
        return "never"
    seconds = int((utcnow() - value).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "less than a minute"


def base_url() -> str:
    return current_app.config["BASE_URL"]
