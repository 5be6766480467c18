"""The Tessera Portal: ``create_app()`` builds the Flask application.

Called by ``wsgi.py``, the ``tessera`` CLI and the test fixtures.
"""
from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

from jinja2.bccache import BytecodeCache

from app.config import Config, ROOT

if TYPE_CHECKING:
    from flask import Flask


class _ProcessBytecodeCache(BytecodeCache):
    """Jinja bytecode kept in memory for the life of the process."""

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = _ProcessBytecodeCache()


def create_app(config: Config | None = None) -> "Flask":
    from flask import Flask

    config = config or Config()
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=config.INSTANCE_PATH,
        instance_relative_config=False,
    )
    app.config.from_object(config)
    # Compiled templates are shared by every app of the process (keyed by name and source
    # checksum, so an edited template compiles again): the test suite builds an app per test,
    # and compiling the same templates each time was a good part of its run time.
    app.jinja_options = {**app.jinja_options, "bytecode_cache": TEMPLATE_CODE}
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    configure_proxy(app)
    configure_extensions(app)
    configure_blueprints(app)
    configure_security(app)
    configure_templates(app)
    configure_errorhandlers(app)
    configure_cli(app)
    return app


def configure_proxy(app: "Flask") -> None:
    """Behind N trusted reverse proxies, take the client address and scheme from their
    X-Forwarded-* headers (throttling and audit need the real address)."""
    hops = app.config["PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def configure_extensions(app: "Flask") -> None:
    from app.extensions import csrf, db, limiter, login_manager, migrate
    from app import models  # noqa: F401  (registers the tables)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "app" / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from app.auth.sessions import configure_login

    configure_login(app, login_manager)


def configure_blueprints(app: "Flask") -> None:
    from app.account.views import bp as account_bp
    from app.audit.views import bp as audit_bp
    from app.auth.views import bp as auth_bp
    from app.dashboard.views import bp as dashboard_bp
    from app.health import bp as health_bp
    from app.security.views import bp as security_bp
    from app.users.views import bp as users_bp, invite_bp

    for bp in (health_bp, auth_bp, dashboard_bp, users_bp, invite_bp, account_bp, security_bp, audit_bp):
        app.register_blueprint(bp)

    from app.assignments.views import bp as role_assignments_bp

    app.register_blueprint(role_assignments_bp)

    from app.applications.views import bp as applications_bp
    from app.groups.views import bp as groups_bp
    from app.roles.views import bp as roles_bp

    for bp in (groups_bp, roles_bp, applications_bp):
        app.register_blueprint(bp)

    from app.api.views import bp as api_bp
    from app.devices.views import bp as devices_bp
    from app.downloads.views import bp as downloads_bp
    from app.extensions import csrf

    csrf.exempt(api_bp)  # agents send a bearer token, never a cookie
    for bp in (downloads_bp, devices_bp, api_bp):
        app.register_blueprint(bp)

    from app.confirm.views import bp as confirm_bp

    app.register_blueprint(confirm_bp)

    from app.ondemand.views import bp as sessions_bp, public_bp as ondemand_bp

    app.register_blueprint(sessions_bp)
    app.register_blueprint(ondemand_bp)

    from app.console.views import bp as console_bp
    from app.relay.views import bp as relay_bp

    app.register_blueprint(relay_bp)
    app.register_blueprint(console_bp)


def configure_security(app: "Flask") -> None:
    from app.common.headers import install_security_headers

    install_security_headers(app)


def configure_templates(app: "Flask") -> None:
    from app.common.templating import install_template_helpers

    install_template_helpers(app)


def configure_errorhandlers(app: "Flask") -> None:
    from app.common.errorpages import install_error_handlers

    install_error_handlers(app)


def configure_cli(app: "Flask") -> None:
    from app.cli import register_commands

    register_commands(app)
